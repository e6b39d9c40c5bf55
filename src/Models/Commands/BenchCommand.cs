using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using GateLoop.Runtime;

namespace GateLoop.Models.Commands;

/// <summary>
/// <c>gateloop bench</c>: after a warm-up, times full training steps (forward and backward over the accumulated
/// micro-batches, then the optimizer) and recurrent generation, reports the time per phase and peak memory.
/// </summary>
static class BenchCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "a declared model, or a SimpleGateLoop layer (long-context-mixer: 1 × 65,536 × 512)", DefaultValueFactory = _ => Catalog.Default };
        var batch = new Option<int>("--batch") { Description = "sequences per micro-batch", DefaultValueFactory = _ => 4 };
        var accum = new Option<int>("--grad-accum") { Description = "micro-batches per step", DefaultValueFactory = _ => 4 };
        var seq = new Option<int>("--seq-len") { Description = "sequence length", DefaultValueFactory = _ => 256 };
        var steps = new Option<int>("--steps") { Description = "timed training steps after one warm-up step", DefaultValueFactory = _ => 3 };
        var generate = new Option<int>("--generate") { Description = "bytes generated after a prompt of the same length (0: skip)", DefaultValueFactory = _ => 128 };
        var json = new Option<bool>("--json") { Description = "print one JSON object" };
        var kernels = new Option<bool>("--kernels") { Description = "also list the time of every kernel" };
        var device = Common.Device();
        var tf32 = Common.Tf32();
        var noCheck = Common.NoDeviceCheck();
        var command = new Command("bench", "time training steps and generation of a model; report tokens/s, time per phase and peak memory")
        {
            model, batch, accum, seq, steps, generate, json, kernels, device, tf32, noCheck,
        };
        command.SetAction(parse =>
        {
            int b = parse.GetValue(batch), a = parse.GetValue(accum), n = parse.GetValue(seq), count = parse.GetValue(steps), g = parse.GetValue(generate);
            foreach (var (name, value) in new[] { ("--batch", b), ("--grad-accum", a), ("--seq-len", n), ("--steps", count) })
                if (value <= 0) throw new UserInputException($"{name} must be positive, got {value}");
            if (g < 0) throw new UserInputException($"--generate cannot be negative, got {g}");
            bool asJson = parse.GetValue(json);
            var log = asJson ? TextWriter.Null : Console.Out;
            if (Catalog.Layers.FirstOrDefault(l => l.Name == parse.GetValue(model)) is { } layer)
                return BenchLayer(layer, parse.GetValue(device)!, parse.GetValue(tf32), parse.GetValue(noCheck), Common.Given(parse, seq) ? n : 65_536, asJson, log);
            var entry = Catalog.Find(parse.GetValue(model)!);
            using var dev = Device.Create(parse.GetValue(device)!);
            dev.AllowTf32 = parse.GetValue(tf32);
            using var net = entry.Create(dev);
            net.Initialize(0);
            log.WriteLine($"model  {entry.Name}: {entry.Description}, {net.ParameterCount:N0} parameters");
            log.WriteLine($"device {dev.Name}, GEMM {dev.GemmBackend}{(dev.AllowTf32 ? ", TF32 allowed" : "")}");
            if (!parse.GetValue(noCheck))
                Common.CheckDevice(net, entry.Name, entry.Create, DeviceCheck.Model, "bench", log);

            var rng = new Rng(0);
            var tokens = new int[b * (n + 1)];
            using var adam = new Adam(net, new AdamOptions());
            (double Loss, double GradNorm) Step()
            {
                net.ZeroGradients();
                for (int i = 0; i < a; i++)
                {
                    for (int t = 0; t < tokens.Length; t++) tokens[t] = rng.NextInt(net.Vocabulary);
                    net.ForwardAccumulate(tokens, b, n, gradScale: 1.0 / a, lossWeight: 1.0 / a);
                    net.Backward();
                }
                adam.Update();
                return (net.ReadLoss(), adam.ReadGradientNorm());
            }

            var (firstLoss, firstNorm) = Step();
            log.WriteLine($"warm-up step: loss {firstLoss:F6} (ln 256 = {Math.Log(256):F6}), gradient norm {firstNorm:F6}");
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < count; i++) Step();
            double stepSeconds = clock.Elapsed.TotalSeconds / count, trainRate = (double)b * n * a / stepSeconds;
            log.WriteLine($"train    {trainRate,10:N0} tokens/s   {stepSeconds * 1000:F0} ms per step of {a} × {b} × {n} tokens");

            var profile = dev.Profile = new Profile();
            Step();
            dev.Profile = null;
            // What a training step holds, before generation re-plans the activations for one sequence.
            long activationBytes = net.ActivationBytes, managedBytes = GC.GetTotalMemory(forceFullCollection: false);
            long parameterBytes = 2 * net.ParameterCount * sizeof(float), optimizerBytes = 2 * net.ParameterCount * sizeof(float);
            double total = profile.ByPhase.Values.Sum();
            foreach (var (phase, ms) in profile.ByPhase.OrderByDescending(p => p.Value))
                log.WriteLine($"  {phase,-12} {ms,8:F1} ms  {ms / total,6:P1}");
            if (parse.GetValue(kernels))
                foreach (var (kernel, ms) in profile.ByKernel.OrderByDescending(p => p.Value))
                    log.WriteLine($"    {kernel,-36} {ms,8:F1} ms");

            double? generateRate = null;
            if (g > 0)
            {
                var prompt = Enumerable.Range(0, g).Select(_ => rng.NextInt(net.Vocabulary)).ToArray();
                // Warmed up, then the best of three, as the PyTorch reference reports it.
                Sampling.Generate(net, prompt, 8, 1.0, 0.9, rng, _ => { });
                for (int run = 0; run < 3; run++)
                {
                    clock.Restart();
                    Sampling.Generate(net, prompt, g, 1.0, 0.9, rng, _ => { });
                    generateRate = Math.Max(generateRate ?? 0, g / clock.Elapsed.TotalSeconds);
                }
                log.WriteLine($"generate {generateRate,10:N1} tokens/s   {g} bytes after a {g}-byte prompt, prompt included in the time (best of 3)");
            }
            long peak = Process.GetCurrentProcess().PeakWorkingSet64;
            static string MiB(long bytes) => $"{bytes / (1024.0 * 1024):N0} MiB";
            log.WriteLine($"peak memory {MiB(peak)} (process working set): managed heap {MiB(managedBytes)}; device buffers: " +
                $"weights and gradients {MiB(parameterBytes)}, Adam moments {MiB(optimizerBytes)}, training activations {MiB(activationBytes)}");

            if (asJson)
                Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
                {
                    ["train_tokens_per_s"] = trainRate,
                    ["generate_tokens_per_s"] = generateRate,
                    ["peak_memory_bytes"] = peak,
                    ["managed_heap_bytes"] = managedBytes,
                    ["parameter_bytes"] = parameterBytes,
                    ["optimizer_bytes"] = optimizerBytes,
                    ["activation_bytes"] = activationBytes,
                    ["step_ms"] = stepSeconds * 1000,
                    ["phase_ms"] = profile.ByPhase,
                    ["loss"] = firstLoss,
                    ["grad_norm"] = firstNorm,
                    ["device"] = dev.Name,
                    ["gemm"] = dev.GemmBackend,
                    ["tf32"] = dev.AllowTf32,
                    ["config"] = new Dictionary<string, object>
                    {
                        ["model"] = entry.Name, ["batch"] = b, ["grad_accum"] = a, ["seq_len"] = n,
                        ["parameters"] = net.ParameterCount, ["hyperparameters"] = net.Configuration,
                    },
                }));
            return 0;
        });
        return command;
    }

    // A SimpleGateLoop layer on one long sequence: the workload it exists for.
    static int BenchLayer(Catalog.Layer entry, string deviceName, bool tf32, bool noCheck, int seq, bool asJson, TextWriter log)
    {
        using var dev = Device.Create(deviceName);
        dev.AllowTf32 = tf32;
        using var layer = entry.Create(dev);
        layer.Initialize(0);
        log.WriteLine($"layer  {entry.Name}: {entry.Description}, {layer.ParameterCount:N0} parameters");
        log.WriteLine($"device {dev.Name}");
        if (!noCheck)
            Common.CheckDevice(layer, entry.Name, entry.Create, DeviceCheck.Layer, "bench", log);
        long length = (long)seq * layer.Width;
        using var x = dev.Allocate<float>(length);
        using var y = dev.Allocate<float>(length);
        var rng = new Rng(0);
        var host = new float[length];
        for (long i = 0; i < length; i++) host[i] = (float)(2 * rng.NextDouble() - 1);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(x.View.AsContiguous(), host);

        // The first pass plans activations and compiles kernels; then the best of three, as the PyTorch reference reports it.
        layer.Forward(x.View, y.View, 1, seq);
        double forward = double.MaxValue, backward = double.MaxValue;
        for (int run = 0; run < 3; run++)
        {
            var clock = Stopwatch.StartNew();
            layer.Forward(x.View, y.View, 1, seq);
            dev.Synchronize();
            forward = Math.Min(forward, clock.Elapsed.TotalSeconds);
            layer.ZeroGradients();
            clock.Restart();
            layer.Backward(y.View, y.View);
            dev.Synchronize();
            backward = Math.Min(backward, clock.Elapsed.TotalSeconds);
        }
        long peak = Process.GetCurrentProcess().PeakWorkingSet64;
        log.WriteLine($"forward  {forward,8:F3} s   1 × {seq:N0} × {layer.Width} (best of 3)");
        log.WriteLine($"backward {backward,8:F3} s");
        log.WriteLine($"peak memory {peak / (1024.0 * 1024):N0} MiB (process working set); activations {layer.ActivationBytes / (1024.0 * 1024):N0} MiB");
        if (asJson)
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["long_forward_s"] = forward,
                ["long_backward_s"] = backward,
                ["peak_memory_bytes"] = peak,
                ["activation_bytes"] = layer.ActivationBytes,
                ["device"] = dev.Name,
                ["gemm"] = dev.GemmBackend,
                ["tf32"] = dev.AllowTf32,
                ["config"] = new Dictionary<string, object> { ["model"] = entry.Name, ["batch"] = 1, ["seq_len"] = seq, ["hyperparameters"] = layer.Configuration },
            }));
        return 0;
    }
}
