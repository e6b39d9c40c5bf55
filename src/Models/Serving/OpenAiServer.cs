using System.Text;
using GateLoop.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace GateLoop.Models.Serving;

/// <summary>What <c>gateloop serve</c> was asked for.</summary>
sealed record ServeOptions(string Checkpoint, string Host, int Port, string Device, string Weights, int MaxStreams, int MaxQueue,
    RequestLimits Limits, TimeSpan Drain);

/// <summary>
/// The HTTP side of <c>gateloop serve</c> on Kestrel: <c>GET /health</c>, <c>GET /v1/models</c>,
/// <c>POST /v1/completions</c> and <c>POST /v1/chat/completions</c> (server-sent events with <c>stream</c>), each request
/// a stream of the <see cref="BatchScheduler"/>. Whatever a client sends is answered: a request the server cannot take
/// gets a 4xx with an OpenAI error object and one log line; a client that goes away cancels its stream. SIGTERM (or
/// Ctrl+C) stops taking connections, lets the running streams finish within the drain time and returns 0.
/// </summary>
static class OpenAiServer
{
    /// <summary>The largest request body: a prompt of the longest allowed length fits with room for JSON escapes.</summary>
    const long MaxBody = 1 << 20;

    public static int Run(ServeOptions o, TextWriter log)
    {
        using var device = Runtime.Device.Create(o.Device);
        var config = Runtime.Checkpoint.ReadConfig(o.Checkpoint);
        var (_, model) = Commands.Common.OpenCheckpoint(o.Checkpoint, device, o.Weights);
        using var __ = model;
        void Log(string line)
        {
            lock (log) log.WriteLine(line);
        }
        using var scheduler = new BatchScheduler(model, config.Model, o.MaxStreams, o.MaxQueue, Log);
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://{(o.Host.Contains(':') ? $"[{o.Host}]" : o.Host)}:{o.Port}");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = MaxBody);
        // Kestrel waits for the drained streams' responses, then a little for the last bytes to go out.
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = o.Drain + TimeSpan.FromSeconds(5));
        var app = builder.Build();
        var handler = new Handler(scheduler, config.Model, created, o.Limits, Log);
        app.Run(handler.Handle);
        app.Lifetime.ApplicationStopping.Register(() =>
        {
            var (active, waiting) = scheduler.Load;
            Log($"serve  stopping: no new requests; {active} stream(s) get up to {o.Drain.TotalSeconds:0.#} s to finish, {waiting} waiting are refused");
            scheduler.Drain(o.Drain);
        });
        try
        {
            app.Start();
        }
        catch (IOException e)
        {
            throw new UserInputException($"cannot listen on {o.Host}:{o.Port} ({e.Message.TrimEnd('.')}); choose another ServeOptions.Port or ServeOptions.Host", e);
        }
        Log($"serve  {config.Model} ({o.Weights}, {device.Name}) on {string.Join(", ", app.Urls)}: up to {o.MaxStreams} streams in one batched step, " +
            $"{o.MaxQueue} waiting; {scheduler.StateBytesPerStream / 1024.0:0.#} KiB of state per stream");
        app.WaitForShutdown();
        scheduler.Drained.Wait(o.Drain + TimeSpan.FromSeconds(5));
        Log("serve  stopped");
        return 0;
    }

    sealed class Handler(BatchScheduler scheduler, string model, long created, RequestLimits limits, Action<string> log)
    {
        public async Task Handle(HttpContext context)
        {
            var (method, path) = (context.Request.Method, context.Request.Path.Value ?? "");
            try
            {
                switch (path)
                {
                    case "/health" when method is "GET" or "HEAD":
                        await Health(context);
                        break;
                    case "/v1/models" when method is "GET" or "HEAD":
                        await Json(context, 200, OpenAiJson.Models(model, created));
                        break;
                    case "/v1/completions" when method == "POST":
                        await Generate(context, RequestKind.Completion);
                        break;
                    case "/v1/chat/completions" when method == "POST":
                        await Generate(context, RequestKind.Chat);
                        break;
                    case "/health" or "/v1/models" or "/v1/completions" or "/v1/chat/completions":
                        throw new RequestException(405, $"{method} is not allowed on {path}", null, "method_not_allowed");
                    default:
                        throw new RequestException(404, $"no endpoint {Printable(path)}; this server has GET /health, GET /v1/models, " +
                            "POST /v1/completions and POST /v1/chat/completions", null, "not_found");
                }
            }
            catch (RequestException e)
            {
                log($"serve  {e.Status} {method} {Printable(path)}: {e.Message}");
                if (!context.Response.HasStarted) await Json(context, e.Status, OpenAiJson.Error(e));
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
            {
                // The client went away; its stream was cancelled with it.
            }
        }

        async Task Health(HttpContext context)
        {
            var (active, waiting) = scheduler.Load;
            bool stopping = scheduler.Drained.IsCompleted || context.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested;
            var body = $"{{\"status\":\"{(stopping ? "stopping" : "ok")}\",\"model\":\"{model}\",\"streams\":{active},\"waiting\":{waiting}," +
                $"\"state_bytes_per_stream\":{scheduler.StateBytesPerStream},\"step_bytes_per_stream\":{scheduler.StepBytesPerStream}}}";
            await Json(context, stopping ? 503 : 200, Encoding.UTF8.GetBytes(body));
        }

        async Task Generate(HttpContext context, RequestKind kind)
        {
            var request = RequestParser.Parse(kind, await Body(context), limits, Random.Shared.NextInt64());
            var stream = scheduler.Submit(request);
            await using var _ = context.RequestAborted.Register(stream.Cancel);
            try
            {
                await Answer(context, request, stream);
            }
            finally
            {
                // However the answer ended (a write to a closed connection throws before the abort is noticed), the
                // stream stops; after its end this does nothing.
                stream.Cancel();
            }
        }

        async Task Answer(HttpContext context, GenerationRequest request, ServedStream stream)
        {
            var output = stream.Output;
            if (!request.Stream)
            {
                var text = new StringBuilder();
                await foreach (var chunk in Read(output, context.RequestAborted)) text.Append(chunk);
                await Json(context, 200, OpenAiJson.Answer(stream, model, created, text.ToString()));
                return;
            }
            // Headers go out with the first text, so a request refused while it waited still gets its status.
            bool first = true;
            var response = context.Response;
            try
            {
                while (await output.WaitToReadAsync(context.RequestAborted))
                {
                    var text = new StringBuilder();
                    while (output.TryRead(out var chunk)) text.Append(chunk);
                    if (first)
                    {
                        response.StatusCode = 200;
                        response.ContentType = "text/event-stream";
                        response.Headers.CacheControl = "no-cache";
                    }
                    await Event(response, OpenAiJson.Chunk(stream, model, created, text.ToString(), first, null));
                    first = false;
                }
            }
            catch (RequestException e) when (response.HasStarted)
            {
                log($"serve  {e.Status} during stream {stream.Number}: {e.Message}");
                await Event(response, OpenAiJson.Error(e));
                return;
            }
            if (first)
            {
                response.ContentType = "text/event-stream";
                response.Headers.CacheControl = "no-cache";
            }
            await Event(response, OpenAiJson.Chunk(stream, model, created, "", first, stream.FinishReason));
            if (request.IncludeUsage) await Event(response, OpenAiJson.UsageChunk(stream, model, created));
            await response.Body.WriteAsync("data: [DONE]\n\n"u8.ToArray());
            await response.Body.FlushAsync();
        }

        // The chunks of a stream; a failure of the stream comes out as its RequestException.
        static async IAsyncEnumerable<string> Read(System.Threading.Channels.ChannelReader<string> output,
            [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancel)
        {
            while (await output.WaitToReadAsync(cancel))
                while (output.TryRead(out var chunk))
                    yield return chunk;
        }

        static async Task Event(HttpResponse response, byte[] json)
        {
            await response.Body.WriteAsync("data: "u8.ToArray());
            await response.Body.WriteAsync(json);
            await response.Body.WriteAsync("\n\n"u8.ToArray());
            await response.Body.FlushAsync();
        }

        static async Task<byte[]> Body(HttpContext context)
        {
            if (context.Request.ContentLength > MaxBody) throw TooLarge();
            using var buffer = new MemoryStream();
            try
            {
                await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
            }
            catch (BadHttpRequestException e) when (e.StatusCode == 413)
            {
                throw TooLarge();
            }
            return buffer.ToArray();
        }

        static RequestException TooLarge() => new(413, $"the body is larger than {MaxBody / 1024} KiB; send a shorter prompt", null, "request_too_large");

        static async Task Json(HttpContext context, int status, byte[] body)
        {
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json";
            if (status == 429) context.Response.Headers.RetryAfter = "1";
            await context.Response.Body.WriteAsync(body);
        }

        static string Printable(string path) => new([.. path.Take(80).Select(c => char.IsControl(c) ? '?' : c)]);
    }
}
