using System.CommandLine;
using System.Diagnostics;
using GateLoop.Runtime;

namespace GateLoop.Models.Commands;

/// <summary><c>gateloop step</c>: times forward and backward passes of a model on random bytes.</summary>
static class StepCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "a declared model", DefaultValueFactory = _ => Catalog.Default };
        var batch = new Option<int>("--batch") { Description = "sequences per pass", DefaultValueFactory = _ => 4 };
        var seq = new Option<int>("--seq-len") { Description = "sequence length", DefaultValueFactory = _ => 256 };
        var steps = new Option<int>("--steps") { Description = "timed passes after one warm-up", DefaultValueFactory = _ => 3 };
        var device = Common.Device();
        var seed = Common.Seed();
        var command = new Command("step", "time forward + backward passes of a model on random bytes; print loss and gradient norm")
        {
            model, batch, seq, steps, device, seed,
        };
        command.SetAction(parse =>
        {
            int b = parse.GetValue(batch), n = parse.GetValue(seq), count = parse.GetValue(steps), s = parse.GetValue(seed);
            foreach (var (name, value) in new[] { ("--batch", b), ("--seq-len", n), ("--steps", count) })
                if (value <= 0) throw new UserInputException($"{name} must be positive, got {value}");
            var entry = Catalog.Find(parse.GetValue(model)!);
            using var dev = Device.Create(parse.GetValue(device)!);
            using var net = entry.Create(dev);
            net.Initialize(s);
            Console.WriteLine($"model  {entry.Name}: {entry.Description}, {net.ParameterCount:N0} parameters");
            Console.WriteLine($"device {dev.Name}, GEMM {dev.GemmBackend}");

            var rng = new Rng(s);
            var tokens = new int[b * (n + 1)];
            for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.NextInt(net.Vocabulary);
            for (int step = 0; step <= count; step++)
            {
                net.ZeroGradients();
                var clock = Stopwatch.StartNew();
                double loss = net.Forward(tokens, b, n);
                double forward = clock.Elapsed.TotalMilliseconds;
                net.Backward();
                double backward = clock.Elapsed.TotalMilliseconds - forward;
                double norm = Math.Sqrt(net.ReadGradients().Sum(g => (double)g * g));
                Console.WriteLine($"{(step == 0 ? "warm-up" : $"step {step}"),-8} loss {loss:F6}  grad-norm {norm:F6}  forward {forward,8:F1} ms  " +
                                  $"backward {backward,8:F1} ms  {b * n / ((forward + backward) / 1000):N0} tokens/s");
            }
            Console.WriteLine($"activations {net.ActivationBytes / (1024.0 * 1024):F1} MiB for batch {b} × seq {n}");
            return 0;
        });
        return command;
    }
}
