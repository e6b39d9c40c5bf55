using System.Diagnostics;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>What <see cref="Benchmark.Model"/> times.</summary>
/// <param name="Batch">Sequences per micro-batch.</param>
/// <param name="GradAccum">Micro-batches per training step.</param>
/// <param name="SeqLen">Predicted positions per sequence.</param>
/// <param name="Steps">Timed training steps after one warm-up step.</param>
/// <param name="Generate">Bytes generated after a prompt of the same length (0: no generation).</param>
/// <param name="Kernels">Whether the log lists the time of every kernel as well as every phase.</param>
/// <param name="Weights">How the weight matrices are held for generation (training always runs in fp32).</param>
public sealed record BenchOptions(int Batch = 4, int GradAccum = 4, int SeqLen = 256, int Steps = 3, int Generate = 128, bool Kernels = false,
    WeightFormat Weights = WeightFormat.Fp32)
{
    /// <summary>Throws a <see cref="UserInputException"/> naming the first count that is out of range.</summary>
    public void Validate()
    {
        foreach (var (name, value) in new[] { ("--batch", Batch), ("--grad-accum", GradAccum), ("--seq-len", SeqLen), ("--steps", Steps) })
            if (value <= 0) throw new UserInputException($"{name} must be positive, got {value}");
        if (Generate < 0) throw new UserInputException($"--generate cannot be negative, got {Generate}");
    }
}

/// <summary>
/// Times what a model or a layer is for, as <c>gateloop bench</c> reports it: after a warm-up, full training steps
/// (forward and backward over the accumulated micro-batches, then the optimizer) and recurrent generation, the time
/// per phase from one profiled step, and peak memory with its parts; a SimpleGateLoop layer forward and backward over
/// one long sequence. Each returns its report under the JSON keys the README documents.
/// </summary>
public static class Benchmark
{
    /// <summary>Benchmarks <paramref name="net"/> (initialized) on random tokens, logging lines as it goes.</summary>
    public static Dictionary<string, object?> Model(TransformerModel<float> net, string name, BenchOptions o, TextWriter log)
    {
        o.Validate();
        var device = net.Device;
        var rng = new Rng(0);
        var tokens = new int[o.Batch * (o.SeqLen + 1)];
        using var adam = new Adam(net, new AdamOptions());
        (double Loss, double GradNorm) Step()
        {
            net.ZeroGradients();
            for (int i = 0; i < o.GradAccum; i++)
            {
                for (int t = 0; t < tokens.Length; t++) tokens[t] = rng.NextInt(net.Vocabulary);
                net.ForwardAccumulate(tokens, o.Batch, o.SeqLen, gradScale: 1.0 / o.GradAccum, lossWeight: 1.0 / o.GradAccum);
                net.Backward();
            }
            adam.Update();
            return (net.ReadLoss(), adam.ReadGradientNorm());
        }

        var (firstLoss, firstNorm) = Step();
        // A fresh model guesses every byte about uniformly, so its loss starts near ln 256: a quick sanity check.
        log.WriteLine($"warm-up step: loss {firstLoss:F6} nats (an untrained model's is near ln {net.Vocabulary} = {Math.Log(net.Vocabulary):F6}, a uniform guess), gradient norm {firstNorm:F6}");
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < o.Steps; i++) Step();
        double stepSeconds = clock.Elapsed.TotalSeconds / o.Steps, trainRate = (double)o.Batch * o.SeqLen * o.GradAccum / stepSeconds;
        log.WriteLine($"train    {trainRate,10:N0} tokens/s   {stepSeconds * 1000:F0} ms per step of {o.GradAccum} × {o.Batch} × {o.SeqLen} tokens (mean of {o.Steps} steps)");

        var profile = device.Profile = new Profile();
        clock.Restart();
        Step();
        double profiledMs = clock.Elapsed.TotalMilliseconds;
        device.Profile = null;
        // What a training step holds, before generation re-plans the activations for one sequence.
        long activationBytes = net.ActivationBytes, managedBytes = GC.GetTotalMemory(forceFullCollection: false);
        long parameterBytes = 2 * net.ParameterCount * sizeof(float), optimizerBytes = 2 * net.ParameterCount * sizeof(float);
        // Shares of the whole profiled step (slower than the timed ones: profiling waits for every kernel), so what no
        // phase accounts for (launches, the host's work between kernels) shows as its own line.
        log.WriteLine($"one profiled step, {profiledMs:F0} ms (profiling waits for each kernel), by phase:");
        foreach (var (phase, ms) in profile.ByPhase.OrderByDescending(p => p.Value).Append(new("outside phases", profiledMs - profile.ByPhase.Values.Sum())))
            log.WriteLine($"  {phase,-14} {ms,8:F1} ms  {ms / profiledMs,6:P1} of the step");
        void ListKernels(Profile of)
        {
            foreach (var (kernel, ms) in of.ByKernel.OrderByDescending(p => p.Value))
                log.WriteLine($"    {kernel,-36} {ms,8:F1} ms");
        }
        if (o.Kernels) ListKernels(profile);

        // Training ran in fp32; generation reads the weights as inference will hold them.
        net.UseWeights(o.Weights);
        string weights = o.Weights.ToString().ToLowerInvariant();
        double? generateRate = null;
        if (o.Generate > 0)
        {
            var prompt = Enumerable.Range(0, o.Generate).Select(_ => rng.NextInt(net.Vocabulary)).ToArray();
            // Warmed up, then the best of three, as the PyTorch reference reports it.
            Sampling.Generate(net, prompt, 8, 1.0, 0.9, rng, _ => { });
            for (int run = 0; run < 3; run++)
            {
                clock.Restart();
                Sampling.Generate(net, prompt, o.Generate, 1.0, 0.9, rng, _ => { });
                generateRate = Math.Max(generateRate ?? 0, o.Generate / clock.Elapsed.TotalSeconds);
            }
            if (o.Kernels)
            {
                var generation = device.Profile = new Profile();
                Sampling.Generate(net, prompt, o.Generate, 1.0, 0.9, rng, _ => { });
                device.Profile = null;
                log.WriteLine($"  generation, per kernel ({o.Generate}-byte prompt and {o.Generate} steps):");
                ListKernels(generation);
            }
            log.WriteLine($"generate {generateRate,10:N1} tokens/s   {o.Generate} bytes after a {o.Generate}-byte prompt, prompt included in the time (best of 3), " +
                $"{weights} weights: {net.WeightBytesPerToken / 1e6:F1} MB read per token");
        }
        long peak = Process.GetCurrentProcess().PeakWorkingSet64;
        log.WriteLine($"peak memory {MiB(peak)} (process working set): managed heap {MiB(managedBytes)}; device buffers: " +
            $"weights and gradients {MiB(parameterBytes)}, Adam moments {MiB(optimizerBytes)}, training activations {MiB(activationBytes)}");
        return new()
        {
            ["train_tokens_per_s"] = trainRate,
            ["generate_tokens_per_s"] = generateRate,
            ["weights"] = weights,
            ["weight_bytes_per_token"] = net.WeightBytesPerToken,
            ["peak_memory_bytes"] = peak,
            ["managed_heap_bytes"] = managedBytes,
            ["parameter_bytes"] = parameterBytes,
            ["optimizer_bytes"] = optimizerBytes,
            ["activation_bytes"] = activationBytes,
            ["step_ms"] = stepSeconds * 1000,
            ["phase_ms"] = profile.ByPhase,
            ["loss"] = firstLoss,
            ["grad_norm"] = firstNorm,
            ["device"] = device.Name,
            ["gemm"] = device.GemmBackend,
            ["tf32"] = device.AllowTf32,
            ["config"] = new Dictionary<string, object>
            {
                ["model"] = name, ["batch"] = o.Batch, ["grad_accum"] = o.GradAccum, ["seq_len"] = o.SeqLen,
                ["parameters"] = net.ParameterCount, ["hyperparameters"] = net.Configuration,
            },
        };
    }

    /// <summary>
    /// Benchmarks <paramref name="layer"/> (initialized) forward and backward over one sequence of
    /// <paramref name="seq"/> random positions: the first pass plans and compiles, then the best of three.
    /// </summary>
    public static Dictionary<string, object?> Layer(SimpleGateLoopLayer<float> layer, string name, int seq, TextWriter log)
    {
        if (seq <= 0) throw new UserInputException($"--seq-len must be positive, got {seq}");
        var device = layer.Device;
        long length = (long)seq * layer.Width;
        using var x = device.Allocate<float>(length);
        using var y = device.Allocate<float>(length);
        var rng = new Rng(0);
        var host = new float[length];
        for (long i = 0; i < length; i++) host[i] = (float)(2 * rng.NextDouble() - 1);
        x.View.AsContiguous().CopyFromCPU(host);

        layer.Forward(x.View, y.View, 1, seq);
        double forward = double.MaxValue, backward = double.MaxValue;
        for (int run = 0; run < 3; run++)
        {
            var clock = Stopwatch.StartNew();
            layer.Forward(x.View, y.View, 1, seq);
            device.Synchronize();
            forward = Math.Min(forward, clock.Elapsed.TotalSeconds);
            layer.ZeroGradients();
            clock.Restart();
            layer.Backward(y.View, y.View);
            device.Synchronize();
            backward = Math.Min(backward, clock.Elapsed.TotalSeconds);
        }
        long peak = Process.GetCurrentProcess().PeakWorkingSet64;
        log.WriteLine($"forward  {forward,8:F3} s   1 × {seq:N0} × {layer.Width} (best of 3)");
        log.WriteLine($"backward {backward,8:F3} s");
        log.WriteLine($"peak memory {MiB(peak)} (process working set); activations {MiB(layer.ActivationBytes)}");
        return new()
        {
            ["long_forward_s"] = forward,
            ["long_backward_s"] = backward,
            ["peak_memory_bytes"] = peak,
            ["activation_bytes"] = layer.ActivationBytes,
            ["device"] = device.Name,
            ["gemm"] = device.GemmBackend,
            ["tf32"] = device.AllowTf32,
            ["config"] = new Dictionary<string, object> { ["model"] = name, ["batch"] = 1, ["seq_len"] = seq, ["hyperparameters"] = layer.Configuration },
        };
    }

    static string MiB(long bytes) => $"{bytes / (1024.0 * 1024):N0} MiB";
}
