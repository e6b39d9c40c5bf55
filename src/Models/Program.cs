using System.Diagnostics;
using GateLoop.Runtime;

namespace GateLoop.Models;

/// <summary>
/// The <c>gateloop</c> command. For now one job: time forward and backward passes of a declared model on
/// random bytes and report the loss and gradient norm.
/// </summary>
static class Program
{
    static int Main(string[] args)
    {
        try
        {
            var options = Options.Parse(args);
            if (options is null)
            {
                Console.WriteLine(Options.Usage);
                return 0;
            }
            return Step(options);
        }
        catch (Exception e) when (e is ArgumentException or DeviceUnavailableException or FormatException)
        {
            Console.Error.WriteLine($"gateloop: {e.Message}");
            return 2;
        }
    }

    static int Step(Options o)
    {
        var entry = Catalog.Find(o.Model);
        using var device = Device.Create(o.Device);
        using var model = entry.Create(device);
        model.Initialize(o.Seed);
        Console.WriteLine($"model  {entry.Name}: {entry.Description}, {model.ParameterCount:N0} parameters");
        Console.WriteLine($"device {device.Name}, GEMM {device.GemmBackend}");

        var random = new Random(o.Seed);
        var tokens = new int[o.Batch * (o.Seq + 1)];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = random.Next(model.Vocabulary);

        for (int step = 0; step <= o.Steps; step++)
        {
            model.ZeroGradients();
            var clock = Stopwatch.StartNew();
            double loss = model.Forward(tokens, o.Batch, o.Seq);
            double forward = clock.Elapsed.TotalMilliseconds;
            model.Backward();
            double backward = clock.Elapsed.TotalMilliseconds - forward;
            double norm = Math.Sqrt(model.ReadGradients().Sum(g => (double)g * g));
            string label = step == 0 ? "warm-up" : $"step {step}";
            Console.WriteLine($"{label,-8} loss {loss:F6}  grad-norm {norm:F6}  forward {forward,8:F1} ms  backward {backward,8:F1} ms  " +
                              $"{o.Batch * o.Seq / ((forward + backward) / 1000):N0} tokens/s");
        }
        Console.WriteLine($"activations {model.ActivationBytes / (1024.0 * 1024):F1} MiB for batch {o.Batch} × seq {o.Seq}");
        return 0;
    }

    sealed record Options(string Model, string Device, int Batch, int Seq, int Steps, int Seed)
    {
        public const string Usage = """
            gateloop step [--model NAME] [--device cpu|ilgpu-cpu|cuda|auto] [--batch 4] [--seq 256] [--steps 3] [--seed 0]
              Runs forward and backward passes of a declared model on random bytes and prints loss, gradient norm and timings.
            """;

        public static Options? Parse(string[] args)
        {
            if (args.Length == 0 || args[0] is "-h" or "--help" || args[0] != "step") return null;
            var o = new Options(Catalog.Default, "auto", 4, 256, 3, 0);
            for (int i = 1; i < args.Length; i += 2)
            {
                if (i + 1 >= args.Length) throw new ArgumentException($"option {args[i]} needs a value");
                string v = args[i + 1];
                o = args[i] switch
                {
                    "--model" => o with { Model = v },
                    "--device" => o with { Device = v },
                    "--batch" => o with { Batch = Positive(args[i], v) },
                    "--seq" => o with { Seq = Positive(args[i], v) },
                    "--steps" => o with { Steps = Positive(args[i], v) },
                    "--seed" => o with { Seed = int.Parse(v) },
                    _ => throw new ArgumentException($"unknown option {args[i]}\n{Usage}"),
                };
            }
            return o;
        }

        static int Positive(string name, string value) =>
            int.TryParse(value, out int n) && n > 0 ? n : throw new ArgumentException($"{name} must be a positive integer, got '{value}'");
    }
}
