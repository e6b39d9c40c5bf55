using System.CommandLine;
using GateLoop.Models.Serving;
using GateLoop.Runtime;

namespace GateLoop.Models.Commands;

/// <summary><c>gateloop serve</c>: an OpenAI-compatible HTTP server over a checkpoint, every stream in one batched step.</summary>
static class ServeCommand
{
    public static Command Create()
    {
        var checkpoint = Common.Checkpoint();
        var host = new Option<string>("--host") { Description = "address to listen on (0.0.0.0: every interface)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0: any free one, printed at start)", DefaultValueFactory = _ => 8080 };
        var device = Common.Device();
        var weights = Common.Weights();
        var maxStreams = new Option<int>("--max-streams") { Description = "streams generated together, one row each of a batched step", DefaultValueFactory = _ => 64 };
        var maxQueue = new Option<int>("--max-queue") { Description = "requests that wait for a stream before more are refused with 429", DefaultValueFactory = _ => 64 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "the largest max_tokens a request may ask (bytes)", DefaultValueFactory = _ => 4096 };
        var maxPrompt = new Option<int>("--max-prompt") { Description = "the longest prompt a request may send (bytes)", DefaultValueFactory = _ => 65536 };
        var drain = new Option<double>("--drain-seconds")
        {
            Description = "on SIGTERM or Ctrl+C, how long running streams may go on before they are ended (finish reason length)",
            DefaultValueFactory = _ => 10,
        };
        var command = new Command("serve", "answer OpenAI-style completion and chat requests over HTTP, every stream advancing in one batched " +
            "recurrent step (gate-looped models only)")
        {
            checkpoint, host, port, device, weights, maxStreams, maxQueue, maxTokens, maxPrompt, drain,
        };
        command.SetAction(parse =>
        {
            int p = parse.GetValue(port), streams = parse.GetValue(maxStreams), queue = parse.GetValue(maxQueue);
            int tokens = parse.GetValue(maxTokens), prompt = parse.GetValue(maxPrompt);
            double seconds = parse.GetValue(drain);
            UserInputException.ThrowIfNotFinite(seconds, "--drain-seconds");
            if (p is < 0 or > 65535) throw new UserInputException($"--port must lie in [0, 65535], got {p}");
            // Kestrel binds every interface for a host name it cannot use, so only addresses and localhost are taken.
            string address = parse.GetValue(host)!;
            if (address != "localhost" && !System.Net.IPAddress.TryParse(address, out _))
                throw new UserInputException($"--host must be an IP address (127.0.0.1, 0.0.0.0 for every interface, ::1) or localhost, got '{address}'");
            if (streams is < 1 or > 4096) throw new UserInputException($"--max-streams must lie in [1, 4096], got {streams}");
            if (queue < 0) throw new UserInputException($"--max-queue cannot be negative, got {queue}");
            if (tokens < 1) throw new UserInputException($"--max-tokens must be at least 1, got {tokens}");
            // The body limit (1 MiB) holds a prompt of this length even with every byte escaped as \u00XX in JSON.
            if (prompt is < 1 or > 131072) throw new UserInputException($"--max-prompt must lie in [1, 131072], got {prompt}");
            if (seconds < 0) throw new UserInputException($"--drain-seconds cannot be negative, got {seconds}");
            return OpenAiServer.Run(new ServeOptions(parse.GetValue(checkpoint)!, address, p, parse.GetValue(device)!,
                parse.GetValue(weights)!, streams, queue, new RequestLimits(tokens, prompt), TimeSpan.FromSeconds(seconds)), Console.Error);
        });
        return command;
    }
}
