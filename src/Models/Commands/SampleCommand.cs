using System.CommandLine;
using System.Text;
using GateLoop.Runtime;

namespace GateLoop.Models.Commands;

/// <summary><c>gateloop sample</c>: continue a prompt from a checkpoint, streaming bytes as they are drawn.</summary>
static class SampleCommand
{
    public static Command Create()
    {
        var checkpoint = Common.Checkpoint();
        var prompt = new Option<string>("--prompt") { Description = "text to continue (UTF-8 bytes are the tokens)", DefaultValueFactory = _ => "\n" };
        var length = new Option<int>("--length") { Description = "bytes to generate", DefaultValueFactory = _ => 512 };
        var temperature = new Option<double>("--temperature") { Description = "sampling temperature", DefaultValueFactory = _ => 1.0 };
        var topK = new Option<double>("--top-k-thres") { Description = "keep the top (1 − thres) of the vocabulary", DefaultValueFactory = _ => 0.9 };
        var device = Common.Device();
        var seed = Common.Seed();
        var weights = Common.Weights();
        var command = new Command("sample", "generate text from a checkpoint (recurrent: O(1) work per new byte)")
        {
            checkpoint, prompt, length, temperature, topK, device, seed, weights,
        };
        command.SetAction(parse =>
        {
            int n = parse.GetValue(length);
            double t = parse.GetValue(temperature), thres = parse.GetValue(topK);
            UserInputException.ThrowIfNotFinite(t, "--temperature");
            UserInputException.ThrowIfNotFinite(thres, "--top-k-thres");
            if (n < 0) throw new UserInputException($"--length cannot be negative, got {n}");
            if (t < 0) throw new UserInputException($"--temperature cannot be negative, got {t}");
            if (thres is < 0 or >= 1) throw new UserInputException($"--top-k-thres must lie in [0, 1), got {thres}");
            using var dev = Device.Create(parse.GetValue(device)!);
            var (_, model) = Common.OpenCheckpoint(parse.GetValue(checkpoint)!, dev, parse.GetValue(weights)!);
            using var __ = model;
            var tokens = Encoding.UTF8.GetBytes(parse.GetValue(prompt)!).Select(b => (int)b).ToArray();
            using var stdout = Console.OpenStandardOutput();
            using var stop = Common.StopOnSignals();
            Sampling.Generate(model, tokens, n, t, thres, new Rng(parse.GetValue(seed)), token =>
            {
                stdout.WriteByte((byte)token);
                stdout.Flush();
            }, stop.Token);
            stdout.WriteByte((byte)'\n');
            return 0;
        });
        return command;
    }
}
