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
/// <param name="BucketMegabytes">On several ranks, megabytes of gradients per all-reduce during the backward.</param>
/// <param name="GenerateBatch">Streams generated together, each step one token for each through one session.</param>
public sealed record BenchOptions(int Batch = 4, int GradAccum = 4, int SeqLen = 256, int Steps = 3, int Generate = 128, bool Kernels = false,
    WeightFormat Weights = WeightFormat.Fp32, double BucketMegabytes = 4, int GenerateBatch = 1)
{
    /// <summary>Throws a <see cref="UserInputException"/> naming the first count that is out of range.</summary>
    public void Validate()
    {
        foreach (var (name, value) in new[] { (nameof(Batch), Batch), (nameof(GradAccum), GradAccum), (nameof(SeqLen), SeqLen), (nameof(Steps), Steps), (nameof(GenerateBatch), GenerateBatch) })
            if (value <= 0) throw new UserInputException($"BenchOptions.{name} must be positive, got {value}");
        if (Generate < 0) throw new UserInputException($"BenchOptions.Generate cannot be negative, got {Generate}");
        UserInputException.ThrowIfNotFinite(BucketMegabytes, "BenchOptions.BucketMegabytes");
        if (BucketMegabytes < 0) throw new UserInputException($"BenchOptions.BucketMegabytes cannot be negative, got {BucketMegabytes}");
    }
}

/// <summary>
/// Times what a model or a layer is for, as <c>gateloop bench</c> reports it: after a warm-up, full training steps
/// (forward and backward over the accumulated micro-batches, then the optimizer) and recurrent generation, the time
/// per phase from one profiled step, and peak memory with its parts; a SimpleGateLoop layer forward and backward over
/// one long sequence. Each returns its report under the JSON keys the README documents. On several ranks, each rank's
/// steps take a batch of its own and sum the gradients over the ranks as training does, timed once with the all-reduces
/// during the backward and once after it: the difference is what the overlap hid.
/// </summary>
public static class Benchmark
{
    /// <summary>Benchmarks <paramref name="net"/> (initialized) on random tokens, logging lines as it goes.</summary>
    public static Dictionary<string, object?> Model(TransformerModel<float> net, string name, BenchOptions o, TextWriter log, Communicator? world = null)
    {
        o.Validate();
        world ??= new SingleProcessCommunicator();
        int ranks = world.Size;
        var device = net.Device;
        var rng = new Rng(0);
        var tokens = new int[o.Batch * (o.SeqLen + 1)];
        using var adam = new Adam(net, new AdamOptions());
        using var overlapped = new GradientReducer(net, world, (long)(o.BucketMegabytes * 1024 * 1024));
        using var after = new GradientReducer(net, world, 0);
        var reducer = overlapped;
        var micro = new MicroBatches(net, o.Batch, o.GradAccum, o.SeqLen, ranks);
        (double Loss, double GradNorm) Step()
        {
            net.ZeroGradients();
            micro.Run(_ =>
            {
                for (int t = 0; t < tokens.Length; t++) tokens[t] = rng.NextInt(net.Vocabulary);
                return tokens;
            }, () => reducer.Arm());
            reducer.Finish();
            adam.Update();
            return (world.Sum(net.ReadLoss()), adam.ReadGradientNorm());
        }
        // Seconds per step, and the all-reduce's per step: its time on the communication thread, and the part waited for.
        (double Step, double Reduce, double Wait) Time(GradientReducer use)
        {
            reducer = use;
            world.Barrier();
            double reduce = 0, wait = 0;
            var timer = Stopwatch.StartNew();
            for (int i = 0; i < o.Steps; i++)
            {
                Step();
                (reduce, wait) = (reduce + use.ReduceSeconds, wait + use.WaitSeconds);
            }
            return (timer.Elapsed.TotalSeconds / o.Steps, reduce / o.Steps, wait / o.Steps);
        }

        var (firstLoss, firstNorm) = Step();
        // A fresh model guesses every byte about uniformly, so its loss starts near ln 256: a quick sanity check.
        log.WriteLine($"warm-up step: loss {firstLoss:F6} nats (an untrained model's is near ln {net.Vocabulary} = {Math.Log(net.Vocabulary):F6}, a uniform guess), gradient norm {firstNorm:F6}");
        var clock = Stopwatch.StartNew();
        var timed = Time(overlapped);
        double stepSeconds = timed.Step, trainRate = (double)ranks * o.Batch * o.SeqLen * o.GradAccum / stepSeconds;
        log.WriteLine($"train    {trainRate,10:N0} tokens/s   {stepSeconds * 1000:F0} ms per step of {(ranks > 1 ? $"{ranks} ranks × " : "")}{o.GradAccum} × {o.Batch} × {o.SeqLen} tokens (mean of {o.Steps} steps)");
        Dictionary<string, object?>? distributed = null;
        if (ranks > 1)
        {
            var unoverlapped = Time(after);
            double hidden = unoverlapped.Wait > 0 ? 1 - timed.Wait / unoverlapped.Wait : 0;
            log.WriteLine($"all-reduce {unoverlapped.Wait * 1000,8:F1} ms per step after the backward ({unoverlapped.Step * 1000:F0} ms per step); " +
                $"in buckets of {o.BucketMegabytes:G} MB during it {timed.Wait * 1000:F1} ms waited for ({timed.Reduce * 1000:F1} ms on the communication thread): {hidden:P0} hidden");
            distributed = new()
            {
                ["ranks"] = ranks, ["communicator"] = world.Description, ["bucket_mb"] = o.BucketMegabytes,
                ["allreduce_ms_per_step"] = unoverlapped.Wait * 1000, ["step_ms_reduced_after_backward"] = unoverlapped.Step * 1000,
                ["exposed_allreduce_ms_per_step"] = timed.Wait * 1000, ["overlapped_allreduce_ms_per_step"] = timed.Reduce * 1000,
                ["overlap_hidden"] = hidden,
            };
        }

        var simulator = device as SimulatedCudaDevice;
        simulator?.ResetCounters();
        var profile = device.Profile = new Profile();
        clock.Restart();
        Step();
        double profiledMs = clock.Elapsed.TotalMilliseconds;
        device.Profile = null;
        var stepCounts = simulator is null ? null : Counts(simulator, $"simulated, one training step of {o.GradAccum} × {o.Batch} × {o.SeqLen} tokens", 1, log);
        var stepEstimate = simulator is null ? null : Estimated(simulator, "per training step", 1, log);
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
        net.Inference.UseWeights(o.Weights);
        string weights = o.Weights.ToString().ToLowerInvariant();
        double? generateRate = null;
        Dictionary<string, object>? tokenCounts = null, tokenEstimate = null;
        IReadOnlyDictionary<string, double>? generationKernels = null;
        // Generation involves no other rank: timed in a single process.
        if (o.Generate > 0 && ranks == 1)
        {
            int streams = o.GenerateBatch;
            var prompt = Enumerable.Range(0, o.Generate).Select(_ => rng.NextInt(net.Vocabulary)).ToArray();
            var rngs = Enumerable.Range(0, streams).Select(_ => new Rng((ulong)rng.NextInt(int.MaxValue))).ToArray();
            // Warmed up, then the best of three, as the PyTorch reference reports it.
            Sampling.Generate(net, prompt, 8, 1.0, 0.9, rngs, (_, _) => { });
            for (int run = 0; run < 3; run++)
            {
                clock.Restart();
                Sampling.Generate(net, prompt, o.Generate, 1.0, 0.9, rngs, (_, _) => { });
                generateRate = Math.Max(generateRate ?? 0, (double)streams * o.Generate / clock.Elapsed.TotalSeconds);
            }
            if (o.Kernels)
            {
                var generation = device.Profile = new Profile();
                generationKernels = generation.ByKernel;
                Sampling.Generate(net, prompt, o.Generate, 1.0, 0.9, rngs, (_, _) => { });
                device.Profile = null;
                log.WriteLine($"  generation, per kernel ({o.Generate}-byte prompt and {o.Generate} steps of {streams} streams):");
                ListKernels(generation);
            }
            string of = streams == 1 ? "per generated token" : $"per generation step of {streams} streams (one token each)";
            if (simulator is not null)
            {
                using var session = net.StartGeneration(streams);
                var prompts = Enumerable.Repeat(prompt, streams).SelectMany(p => p).ToArray();
                session.Continue(prompts, prompt.Length);
                simulator.ResetCounters();
                for (int t = 0; t < o.Generate; t++) session.Step(Enumerable.Repeat(prompt[t], streams).ToArray());
                tokenCounts = Counts(simulator, $"simulated, {of} (mean of {o.Generate} steps)", o.Generate, log);
                tokenEstimate = Estimated(simulator, of, o.Generate, log);
                tokenEstimate["streams"] = streams;
                tokenEstimate["tokens_per_s"] = streams / ((double)tokenEstimate["ms"] / 1000);
                log.WriteLine($"  estimated on {simulator.CostModel.Name}, generation: {tokenEstimate["tokens_per_s"]:N0} tokens/s over {streams} stream{(streams == 1 ? "" : "s")} (an estimate, not a measurement)");
            }
            log.WriteLine($"generate {generateRate,10:N1} tokens/s   {o.Generate} bytes in each of {streams} stream{(streams == 1 ? "" : "s")} after a {o.Generate}-byte prompt, " +
                $"prompt included in the time (best of 3), {weights} weights: {net.Inference.BytesPerToken / 1e6:F1} MB read per step, for all streams");
        }
        long peak = Process.GetCurrentProcess().PeakWorkingSet64;
        log.WriteLine($"peak memory {MiB(peak)} (process working set): managed heap {MiB(managedBytes)}; device buffers: " +
            $"weights and gradients {MiB(parameterBytes)}, Adam moments {MiB(optimizerBytes)}, training activations {MiB(activationBytes)}");
        return new()
        {
            ["train_tokens_per_s"] = trainRate,
            ["generate_tokens_per_s"] = generateRate,
            ["weights"] = weights,
            ["weight_bytes_per_token"] = net.Inference.BytesPerToken,
            ["peak_memory_bytes"] = peak,
            ["managed_heap_bytes"] = managedBytes,
            ["parameter_bytes"] = parameterBytes,
            ["optimizer_bytes"] = optimizerBytes,
            ["activation_bytes"] = activationBytes,
            ["step_ms"] = stepSeconds * 1000,
            ["phase_ms"] = profile.ByPhase,
            ["kernel_ms"] = o.Kernels ? profile.ByKernel : null,
            ["generate_kernel_ms"] = generationKernels,
            ["loss"] = firstLoss,
            ["grad_norm"] = firstNorm,
            ["simulated_step"] = stepCounts,
            ["simulated_token"] = tokenCounts,
            ["estimated_step"] = stepEstimate,
            ["estimated_token"] = tokenEstimate,
            ["device"] = device.Name,
            ["gemm"] = device.GemmBackend,
            ["isa"] = HostTier.Name,
            ["lane_bits"] = HostSimd.LaneBits,
            ["tf32"] = device.AllowTf32,
            ["precision"] = device.GemmPrecision.ToString().ToLowerInvariant(),
            ["distributed"] = distributed,
            ["config"] = new Dictionary<string, object>
            {
                ["model"] = name, ["batch"] = o.Batch, ["grad_accum"] = o.GradAccum, ["seq_len"] = o.SeqLen, ["folded"] = micro.Folded,
                ["generate"] = o.Generate, ["generate_batch"] = o.GenerateBatch,
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
        if (seq <= 0) throw new UserInputException($"Benchmark.Layer(seq) must be positive, got {seq}");
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
        Dictionary<string, object>? forwardEstimate = null, backwardEstimate = null;
        if (device is SimulatedCudaDevice simulator)
        {
            simulator.ResetCounters();
            layer.Forward(x.View, y.View, 1, seq);
            forwardEstimate = Estimated(simulator, "forward", 1, log);
            layer.ZeroGradients();
            simulator.ResetCounters();
            layer.Backward(y.View, y.View);
            backwardEstimate = Estimated(simulator, "backward", 1, log);
        }
        long peak = Process.GetCurrentProcess().PeakWorkingSet64;
        log.WriteLine($"forward  {forward,8:F3} s   1 × {seq:N0} × {layer.Width} (best of 3)");
        log.WriteLine($"backward {backward,8:F3} s");
        log.WriteLine($"peak memory {MiB(peak)} (process working set); activations {MiB(layer.ActivationBytes)}");
        return new()
        {
            ["long_forward_s"] = forward,
            ["long_backward_s"] = backward,
            ["estimated_forward"] = forwardEstimate,
            ["estimated_backward"] = backwardEstimate,
            ["peak_memory_bytes"] = peak,
            ["activation_bytes"] = layer.ActivationBytes,
            ["device"] = device.Name,
            ["gemm"] = device.GemmBackend,
            ["isa"] = HostTier.Name,
            ["lane_bits"] = HostSimd.LaneBits,
            ["tf32"] = device.AllowTf32,
            ["precision"] = device.GemmPrecision.ToString().ToLowerInvariant(),
            ["config"] = new Dictionary<string, object> { ["model"] = name, ["batch"] = 1, ["seq_len"] = seq, ["hyperparameters"] = layer.Configuration },
        };
    }

    /// <summary>
    /// The PTX simulator's raw counts since its last reset, per kernel and in total, divided by
    /// <paramref name="per"/> (steps or tokens), as a table in the log and as the JSON report's object.
    /// </summary>
    static Dictionary<string, object> Counts(SimulatedCudaDevice simulator, string title, int per, TextWriter log)
    {
        var total = new LaunchCounters();
        foreach (var c in simulator.Counters.Values) total.Add(c);
        log.WriteLine($"  {title}: {total.Launches / (double)per:N1} launches; per kernel: launches, threads, warp instructions " +
            "(int / fp32 / fp64 / special / memory / control), global bytes asked for and 32-byte sectors touched, shared bytes, longest thread's instructions");
        var kernels = new Dictionary<string, object>();
        foreach (var (name, c) in simulator.Counters.OrderByDescending(k => k.Value.TotalWarpInstructions).Append(new("total", total)))
        {
            string classes = string.Join(" / ", c.WarpInstructions.Select(n => Short(n / (double)per)));
            log.WriteLine($"    {name,-28} {c.Launches / (double)per,7:N1} {Short(c.Threads / (double)per),7} {classes,-44} {Short(c.GlobalBytes / (double)per),7} B {Short(c.GlobalSectors / (double)per),7} sectors {Short(c.SharedBytes / (double)per),7} B {c.LongestThread,9:N0}");
            kernels[name] = new Dictionary<string, object>
            {
                ["launches"] = c.Launches / (double)per,
                ["threads"] = c.Threads / (double)per,
                ["warp_instructions"] = Enum.GetValues<InstructionClass>().ToDictionary(k => k.ToString().ToLowerInvariant(), k => c.WarpInstructions[(int)k] / (double)per),
                ["global_bytes"] = c.GlobalBytes / (double)per,
                ["global_sectors"] = c.GlobalSectors / (double)per,
                ["shared_bytes"] = c.SharedBytes / (double)per,
                ["longest_thread_instructions"] = c.LongestThread,
            };
        }
        return kernels;
    }

    /// <summary>
    /// The simulator's estimate of the GPU's time since its last reset, divided by <paramref name="per"/>: per kernel
    /// (and GEMM) its milliseconds and bound, then the total by phase; in the log and as the JSON report's object,
    /// with each kernel's distinct launches so the cost model can be refitted from the report.
    /// </summary>
    static Dictionary<string, object> Estimated(SimulatedCudaDevice simulator, string title, int per, TextWriter log)
    {
        var costs = simulator.Costs;
        double total = costs.Values.Sum(c => c.Seconds) * 1000 / per;
        long launches = costs.Values.Sum(c => c.Launches);
        var phases = costs.GroupBy(c => Profile.Phase(c.Key)).OrderByDescending(g => g.Sum(c => c.Value.Seconds))
            .ToDictionary(g => g.Key, g => g.Sum(c => c.Value.Seconds) * 1000 / per);
        log.WriteLine($"  estimated on {simulator.CostModel.Name}, {title}: {total:F3} ms, {launches / (double)per:N1} launches (" +
            string.Join(", ", phases.Select(p => $"{p.Key} {p.Value:F3}")) + " ms); per kernel: ms, launches, bound");
        // Materialized now: generation adds to these costs before the report is written.
        var kernels = new Dictionary<string, object>();
        foreach (var (name, c) in costs.OrderByDescending(k => k.Value.Seconds))
        {
            log.WriteLine($"    {name,-36} {c.Seconds * 1000 / per,9:F4} {c.Launches / (double)per,7:N1}  {c.Bound}");
            kernels[name] = new Dictionary<string, object>
            {
                ["ms"] = c.Seconds * 1000 / per,
                ["phase"] = Profile.Phase(name),
                ["launches"] = c.Launches / (double)per,
                ["bound"] = c.Bound,
                ["ms_by_bound"] = c.SecondsByBound.ToDictionary(b => b.Key, b => b.Value * 1000 / per),
                // [count, dram s, issue s, cache s, waves, longest thread's instructions, most global loads, most of them to a
                // new line] per distinct launch
                ["launch_features"] = c.Features.Select(f => new object[]
                {
                    f.Value, f.Key.DramSeconds, f.Key.IssueSeconds, f.Key.CacheSeconds, f.Key.Waves, f.Key.LongestThread, f.Key.MostGlobalLoads,
                    f.Key.MostNewLineLoads,
                }).ToArray(),
                // [count, m, n, k, bytes per element] per distinct GEMM shape
                ["gemm_shapes"] = c.Gemms.Select(g => new object[] { g.Value, g.Key.M, g.Key.N, g.Key.K, g.Key.Bytes }).ToArray(),
            };
        }
        return new()
        {
            ["gpu"] = simulator.CostModel.Name, ["ms"] = total, ["launches"] = launches / (double)per, ["per"] = per,
            ["phase_ms"] = phases, ["kernels"] = kernels,
        };
    }

    // 1234567 → "1.23M": counts span nine orders of magnitude.
    static string Short(double v) => v >= 1e9 ? $"{v / 1e9:F2}G" : v >= 1e6 ? $"{v / 1e6:F2}M" : v >= 1e3 ? $"{v / 1e3:F1}k" : $"{v:F0}";

    static string MiB(long bytes) => $"{bytes / (1024.0 * 1024):N0} MiB";
}
