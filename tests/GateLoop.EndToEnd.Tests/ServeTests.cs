using System.ClientModel;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using OpenAI;
using OpenAI.Chat;
using Xunit.Abstractions;

namespace GateLoop.EndToEnd.Tests;

/// <summary>A <c>gateloop serve</c> process on a loopback port: its address, its log so far, signals and its end.</summary>
public sealed class ServerProcess : IDisposable
{
    readonly Process process;
    readonly List<string> log = [];
    readonly TaskCompletionSource<string> address = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ServerProcess(string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo(Cli.Host) { WorkingDirectory = workingDirectory, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in (string[])[Cli.DllPath, "serve", "--port", "0", "--device", "cpu", .. args]) info.ArgumentList.Add(arg);
        info.Environment.Remove("GATELOOP_DEBUG");
        process = Process.Start(info)!;
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (log) log.Add(e.Data);
            if (Regex.Match(e.Data, @"on (http://127\.0\.0\.1:\d+)") is { Success: true } m) address.TrySetResult(m.Groups[1].Value);
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        if (!address.Task.Wait(TimeSpan.FromSeconds(60)))
        {
            Dispose();
            throw new InvalidOperationException($"gateloop serve did not start:\n{Log}");
        }
        Client = new HttpClient { BaseAddress = new Uri(address.Task.Result), Timeout = TimeSpan.FromMinutes(2) };
    }

    /// <summary>A client of the server's address.</summary>
    public HttpClient Client { get; }

    public Uri Address => Client.BaseAddress!;

    /// <summary>Every line the server has written to stderr.</summary>
    public string Log
    {
        get { lock (log) return string.Join("\n", log); }
    }

    public int LogLines
    {
        get { lock (log) return log.Count; }
    }

    public int Id => process.Id;

    /// <summary>Waits for the end (after a signal) and returns the exit code, or throws after <paramref name="timeout"/>.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!process.WaitForExit(timeout)) throw new TimeoutException($"the server did not exit within {timeout.TotalSeconds} s\n{Log}");
        process.WaitForExit();
        return process.ExitCode;
    }

    public void Dispose()
    {
        if (!process.HasExited) process.Kill();
        process.WaitForExit();
        process.Dispose();
    }
}

/// <summary>A tiny trained checkpoint and one server over it with 64 streams, shared by the tests of a class.</summary>
public sealed class ServeFixture : IDisposable
{
    public ServeFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), $"gateloop-serve-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(Root);
        var corpus = Path.Combine(Root, "corpus.txt");
        File.WriteAllBytes(corpus, TestCorpus.Make(0, TestCorpus.TrainingLength));
        Checkpoint = Path.Combine(Root, "tiny");
        Cli.Succeed(Root, TrainedModelFixture.TrainArgs(corpus, Checkpoint, steps: 20, validateEvery: 20, checkpointEvery: 20), TimeSpan.FromMinutes(5));
        Server = new ServerProcess(Root, "--checkpoint", Checkpoint, "--max-streams", "64", "--max-queue", "512", "--max-tokens", "100000");
    }

    public string Root { get; }
    public string Checkpoint { get; }
    public ServerProcess Server { get; }

    public void Dispose()
    {
        Server.Dispose();
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>A test that needs Node.js and npm; skipped, saying so, where they are not installed.</summary>
public sealed class NodeFactAttribute : FactAttribute
{
    public NodeFactAttribute()
    {
        if (ServeTests.OnPath("node") is null || ServeTests.OnPath("npm") is null)
            Skip = "Node.js and npm are not installed (no node or npm on PATH): apt-get install nodejs npm, as .ci/run does";
    }
}

/// <summary>
/// <c>gateloop serve</c> against real clients on a loopback port: the official OpenAI .NET library (chat completions,
/// streamed and not), the official <c>openai</c> npm package (text completions, streamed), raw HTTP for what clients do
/// not send (bad requests, disconnects), a bounded load of 64 concurrent streams, a full queue and SIGTERM.
/// </summary>
public sealed class ServeTests(ServeFixture fixture, ITestOutputHelper output) : IClassFixture<ServeFixture>
{
    static readonly string RepositoryRoot = FindRoot();

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "GateLoop.Compiler.sln"))) return dir.FullName;
        throw new InvalidOperationException("GateLoop.Compiler.sln not found above " + AppContext.BaseDirectory);
    }

    internal static string? OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);

    ServerProcess Server => fixture.Server;

    static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    /// <summary>A completion without streaming: its text and finish reason.</summary>
    static async Task<(string Text, string Finish)> Complete(HttpClient client, string prompt, int maxTokens, long seed)
    {
        using var response = await client.PostAsync("/v1/completions", Json(new { prompt, max_tokens = maxTokens, seed }));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        var choice = JsonDocument.Parse(body).RootElement.GetProperty("choices")[0];
        return (choice.GetProperty("text").GetString()!, choice.GetProperty("finish_reason").GetString()!);
    }

    /// <summary>A streamed completion read as server-sent events: its text, the time to its first text, and whether it ended with [DONE].</summary>
    static async Task<(string Text, TimeSpan FirstByte, bool Done)> Stream(HttpClient client, string prompt, int maxTokens, long seed)
    {
        var clock = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = Json(new { prompt, max_tokens = maxTokens, seed, stream = true }) };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var text = new StringBuilder();
        TimeSpan? first = null;
        bool done = false;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length == 0) continue;
            Assert.StartsWith("data: ", line);
            if (line == "data: [DONE]") { done = true; continue; }
            Assert.False(done, "an event after [DONE]");
            var chunk = JsonDocument.Parse(line[6..]).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!;
            if (chunk.Length > 0) first ??= clock.Elapsed;
            text.Append(chunk);
        }
        return (text.ToString(), first ?? clock.Elapsed, done);
    }

    async Task<JsonElement> Health() => JsonDocument.Parse(await Server.Client.GetStringAsync("/health")).RootElement;

    [Fact]
    public async Task The_OpenAI_dotnet_client_gets_chat_completions_streamed_and_not()
    {
        var client = new ChatClient("gateloop-tiny", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(Server.Address, "/v1") });
        ChatMessage[] messages = [new SystemChatMessage("Answer in XML."), new UserChatMessage("<doc>")];
#pragma warning disable OPENAI001 // the seed is an experimental option of the library
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 48, Temperature = 0.8f, Seed = 11 };
#pragma warning restore OPENAI001
        ChatCompletion answer = (await client.CompleteChatAsync(messages, options)).Value;
        Assert.Equal(ChatFinishReason.Length, answer.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, answer.Role);
        string text = answer.Content[0].Text;
        Assert.Equal(48, answer.Usage.OutputTokenCount);

        var streamed = new StringBuilder();
        ChatFinishReason? finish = null;
        int updates = 0;
        await foreach (var update in client.CompleteChatStreamingAsync(messages, options))
        {
            updates++;
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
            finish ??= update.FinishReason;
        }
        Assert.Equal(text, streamed.ToString());
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.True(updates >= 2, $"{updates} updates: the text and the closing chunk at least");

        // The documented template: each message a line "role: content", then "assistant: ".
        var (plain, _) = await Complete(Server.Client, "system: Answer in XML.\nuser: <doc>\nassistant: ", 48, 11);
        var (atTemperature, _) = await CompleteAt(Server.Client, "system: Answer in XML.\nuser: <doc>\nassistant: ", 48, 11, 0.8);
        Assert.NotEqual(plain, atTemperature);
        Assert.Equal(text, atTemperature);
    }

    static async Task<(string Text, string Finish)> CompleteAt(HttpClient client, string prompt, int maxTokens, long seed, double temperature)
    {
        using var response = await client.PostAsync("/v1/completions", Json(new { prompt, max_tokens = maxTokens, seed, temperature }));
        var choice = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("choices")[0];
        return (choice.GetProperty("text").GetString()!, choice.GetProperty("finish_reason").GetString()!);
    }

    /// <summary>
    /// With int8 weights and a prompt of at most 8 bytes, <c>sample</c> runs every product through the same reduced
    /// copies as the server, so a lone stream's bytes are the same by another code path.
    /// </summary>
    [Fact]
    public async Task A_lone_int8_stream_is_what_sample_generates()
    {
        const string weights = "int8";
        using var server = new ServerProcess(fixture.Root, "--checkpoint", fixture.Checkpoint, "--weights", weights);
        const string prompt = "<member ";
        var (text, _) = await Complete(server.Client, prompt, 80, 21);
        var sample = Cli.Succeed(fixture.Root, ["sample", "--checkpoint", fixture.Checkpoint, "--device", "cpu", "--weights", weights, "--prompt", prompt,
            "--length", "80", "--seed", "21", "--echo", "never"]);
        Assert.Equal(Encoding.UTF8.GetString(sample.StdoutBytes[..^1]), text);
    }

    [NodeFact]
    public async Task The_openai_npm_package_streams_text_completions()
    {
        // Installed once into an ignored folder of the repository (npm's registry is the one network access).
        string modules = Path.Combine(RepositoryRoot, "out", "npm-openai");
        if (!File.Exists(Path.Combine(modules, "node_modules", "openai", "package.json")))
        {
            Directory.CreateDirectory(modules);
            var install = Cli.Exec(OnPath("npm")!, modules, ["install", "--no-audit", "--no-fund", "--prefix", modules, "openai@5"], TimeSpan.FromMinutes(5));
            Assert.True(install.ExitCode == 0, $"npm could not install the openai package\n{install}");
        }
        string script = Path.Combine(modules, "stream.mjs");
        File.WriteAllText(script, """
            import OpenAI from "openai";
            const client = new OpenAI({ baseURL: process.argv[2], apiKey: "unused" });
            const stream = await client.completions.create({ model: "gateloop-tiny", prompt: "<member name=", max_tokens: 40, seed: 3, stream: true });
            let text = "", finish = null, chunks = 0;
            for await (const chunk of stream) { chunks++; text += chunk.choices[0]?.text ?? ""; finish = chunk.choices[0]?.finish_reason ?? finish; }
            console.log(JSON.stringify({ text, finish, chunks }));
            """);
        var run = Cli.Exec(OnPath("node")!, modules, [script, new Uri(Server.Address, "/v1").ToString()], TimeSpan.FromMinutes(1));
        Assert.True(run.ExitCode == 0, run.ToString());
        var result = JsonDocument.Parse(run.Stdout).RootElement;
        var (expected, _) = await Complete(Server.Client, "<member name=", 40, 3);
        Assert.Equal(expected, result.GetProperty("text").GetString());
        Assert.Equal("length", result.GetProperty("finish").GetString());
        // Text that is ready together goes out as one chunk, so a fast server may send all 40 bytes in one: at least
        // that and the closing chunk.
        Assert.True(result.GetProperty("chunks").GetInt32() >= 2, run.Stdout);
    }

    /// <summary>
    /// 64 clients stream 256 requests (32 prompt and seed pairs, each sent 8 times) at once; each gets the text the same
    /// request gets alone, none is lost, and the times to first byte and the total rate are reported.
    /// </summary>
    [Fact]
    public async Task Sixty_four_concurrent_streams_each_get_the_bytes_of_a_lone_request()
    {
        const int clients = 64, perClient = 4, distinct = 32, tokens = 40;
        string Prompt(int i) => $"<member name=\"M:{i}";
        var alone = new string[distinct];
        for (int i = 0; i < distinct; i++) alone[i] = (await Stream(Server.Client, Prompt(i), tokens, 1000 + i)).Text;
        Assert.Equal(distinct, alone.Distinct().Count());

        var firstBytes = new List<TimeSpan>();
        var mismatches = new List<string>();
        long bytes = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            for (int r = 0; r < perClient; r++)
            {
                int i = (c * perClient + r) % distinct;
                var (text, first, done) = await Stream(Server.Client, Prompt(i), tokens, 1000 + i);
                lock (mismatches)
                {
                    if (text != alone[i] || !done) mismatches.Add($"request {i} of client {c}: '{text}' against '{alone[i]}' (done: {done})");
                    firstBytes.Add(first);
                    bytes += Encoding.UTF8.GetByteCount(text);
                }
            }
        })));
        double seconds = clock.Elapsed.TotalSeconds;
        Assert.Empty(mismatches);
        Assert.Equal(clients * perClient, firstBytes.Count);
        firstBytes.Sort();
        output.WriteLine($"{firstBytes.Count} streams of {tokens} bytes by {clients} clients in {seconds:F2} s: {bytes / seconds:F0} bytes/s of text; " +
            $"time to first byte p50 {firstBytes[firstBytes.Count / 2].TotalMilliseconds:F0} ms, p99 {firstBytes[firstBytes.Count * 99 / 100].TotalMilliseconds:F0} ms");
        Assert.Equal(0, (await Health()).GetProperty("streams").GetInt32());
    }

    public static TheoryData<string, string, string, int, string> BadRequests() => new()
    {
        { "POST", "/v1/completions", "{\"prompt\":", 400, "invalid_json" },
        { "POST", "/v1/completions", "{\"prompt\":\"x\",\"bogus\":1}", 400, "unknown_parameter" },
        { "POST", "/v1/completions", "{\"prompt\":5}", 400, "invalid_type" },
        { "POST", "/v1/completions", "{\"max_tokens\":5}", 400, "missing_required_parameter" },
        { "POST", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":-3}", 400, "invalid_value" },
        { "POST", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":999999999999}", 400, "invalid_value" },
        { "POST", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":1e3}", 400, "invalid_type" },
        { "POST", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":100001}", 400, "invalid_value" },
        { "POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\"}]}", 400, "missing_required_parameter" },
        { "POST", "/v1/chat/completions", "[]", 400, "invalid_json" },
        { "GET", "/v1/completions", "", 405, "method_not_allowed" },
        { "POST", "/v1/embeddings", "{}", 404, "not_found" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task A_bad_request_gets_a_4xx_with_an_OpenAI_error_object_and_one_log_line(string method, string path, string body, int status, string code)
    {
        int before = Server.LogLines;
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method == "POST") request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        await AssertError(await Server.Client.SendAsync(request), status, code);
        await WaitFor(() => Server.LogLines > before, "the server's log line");
        Assert.Matches($"serve  {status} {method} ", Server.Log.Split('\n')[before]);
    }

    [Fact]
    public async Task Invalid_utf8_and_an_oversized_body_are_refused_and_the_server_stays_up()
    {
        await AssertError(await Server.Client.PostAsync("/v1/completions", new ByteArrayContent([.. "{\"prompt\":\""u8, 0xFF, 0xFE, .. "\"}"u8])), 400, "invalid_encoding");
        var huge = new ByteArrayContent(Encoding.UTF8.GetBytes($"{{\"prompt\":\"{new string('a', 2 << 20)}\"}}"));
        await AssertError(await Server.Client.PostAsync("/v1/completions", huge), 413, "request_too_large");
        Assert.Equal("ok", (await Health()).GetProperty("status").GetString());
        Assert.Equal("length", (await Complete(Server.Client, "a", 3, 1)).Finish);
    }

    static async Task AssertError(HttpResponseMessage response, int status, string code)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == status, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(body).RootElement.GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
    }

    static Task WaitFor(Func<bool> condition, string what, double seconds = 10) => WaitFor(() => Task.FromResult(condition()), what, seconds);

    static async Task WaitFor(Func<Task<bool>> condition, string what, double seconds = 10)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed.TotalSeconds < seconds, $"{what} did not come within {seconds} s");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task A_client_that_disconnects_frees_its_stream_at_once()
    {
        // No draining of the unread response on dispose (the handler would read on for up to 2 s to reuse the
        // connection): disposing closes it, as a client that goes away does.
        using (var client = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = Server.Address })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = Json(new { prompt = "x", max_tokens = 100000, stream = true }) };
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: ", await reader.ReadLineAsync());
            Assert.Equal(1, (await Health()).GetProperty("streams").GetInt32());
        }
        // 100,000 bytes take the tiny model many seconds; the slot is free long before.
        var clock = Stopwatch.StartNew();
        while ((await Health()).GetProperty("streams").GetInt32() != 0)
        {
            Assert.True(clock.Elapsed.TotalSeconds < 2, "the stream of a client that went away still runs");
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task Past_the_streams_and_the_queue_a_request_gets_429_and_SIGTERM_drains_and_exits_0()
    {
        using var server = new ServerProcess(fixture.Root, "--checkpoint", fixture.Checkpoint, "--max-streams", "1", "--max-queue", "1",
            "--max-tokens", "100000", "--drain-seconds", "1");
        // One stream runs (long), one waits; the third is refused.
        using var running = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = Json(new { prompt = "x", max_tokens = 100000, stream = true }) };
        using var response = await server.Client.SendAsync(running, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: ", await reader.ReadLineAsync());
        var waiting = Complete(server.Client, "y", 5, 2);
        await WaitFor(async () => (await Health(server)).GetProperty("waiting").GetInt32() == 1, "the waiting request");
        var refused = await server.Client.PostAsync("/v1/completions", Json(new { prompt = "z", max_tokens = 5 }));
        await AssertError(refused, 429, "rate_limit_exceeded");
        Assert.NotNull(refused.Headers.RetryAfter);

        // SIGTERM: the waiting request is refused, the running stream ends cleanly after the drain time, the process exits 0.
        Assert.Equal(0, kill(server.Id, 15));
        var rest = await reader.ReadToEndAsync();
        Assert.EndsWith("data: [DONE]\n\n", rest);
        Assert.Contains("\"finish_reason\":\"length\"", rest);
        var refusedWaiting = await Assert.ThrowsAnyAsync<Exception>(() => waiting);
        Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.Contains("serve  stopping", server.Log);
        Assert.Contains("serve  stopped", server.Log);
        await Assert.ThrowsAsync<HttpRequestException>(() => server.Client.GetAsync("/health"));
    }

    static async Task<JsonElement> Health(ServerProcess server) => JsonDocument.Parse(await server.Client.GetStringAsync("/health")).RootElement;

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int sig);

    [Fact]
    public void A_host_name_is_refused_since_Kestrel_would_listen_on_every_interface_for_it()
    {
        var run = Cli.Run(fixture.Root, ["serve", "--checkpoint", fixture.Checkpoint, "--host", "myhost", "--port", "0"]);
        Assert.Equal(2, run.ExitCode);
        Assert.Equal("gateloop: --host must be an IP address (127.0.0.1, 0.0.0.0 for every interface, ::1) or localhost, got 'myhost'", run.Stderr.Trim());
    }

    [Fact]
    public void A_model_without_a_recurrent_state_is_refused_at_start_with_one_line()
    {
        var corpus = Path.Combine(fixture.Root, "corpus.txt");
        var attention = Path.Combine(fixture.Root, "attention");
        Cli.Succeed(fixture.Root, ["train", "--device", "cpu", "--model", "attention-small", "--data", corpus, "--out", attention, "--steps", "1",
            "--batch", "1", "--grad-accum", "1", "--seq-len", "16", "--validate-every", "1", "--generate-every", "0", "--checkpoint-every", "1"]);
        var run = Cli.Run(fixture.Root, ["serve", "--checkpoint", attention, "--device", "cpu", "--port", "0"]);
        Assert.Equal(2, run.ExitCode);
        Assert.Equal("gateloop: attention-small has no recurrent state (its attention re-reads the whole text for each byte), so its streams " +
            "cannot share one batched step; serve a gate-looped model (see: gateloop models)", run.Stderr.Trim());
    }
}
