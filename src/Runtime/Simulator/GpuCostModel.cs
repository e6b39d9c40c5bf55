namespace GateLoop.Runtime;

/// <summary>
/// The time a GPU would take for a kernel launch, from the simulator's counts of it, and for a cuBLAS GEMM, from its
/// shape: an estimate, never a measurement. A launch costs its overhead plus the largest of four bounds:
/// <list type="bullet">
/// <item><b>dram</b>: the 32-byte sectors its warps touched, at the memory's bandwidth (caches ignored);</item>
/// <item><b>issue</b>: its warp instructions over the schedulers of the multiprocessors its blocks occupy, one per
/// cycle;</item>
/// <item><b>cache</b>: the same sectors through those multiprocessors' L1, a few per cycle each: what a warp whose
/// lanes each read another row costs when a small grid leaves most of the chip idle;</item>
/// <item><b>latency</b>: the longest thread's instructions and global loads, each waiting for the one before it,
/// once per wave of resident threads: what serial loops and too few threads cost. A load of a line the same
/// instruction read last waits for the cache, any other for memory.</item>
/// </list>
/// A GEMM costs a call's overhead plus the larger of its FLOPs at the rate cuBLAS reaches and its operands' bytes.
/// The hardware figures are the chip's; the overheads, latencies and GEMM rate are fitted to measured steps
/// (<c>bench/cost-model.py</c>).
/// </summary>
public sealed record GpuCostModel(
    string Name,
    int Multiprocessors,
    double ClockHz,
    int SchedulersPerMultiprocessor,
    int ResidentThreadsPerMultiprocessor,
    double DramBytesPerSecond,
    double L1SectorsPerCycle,
    double LaunchSeconds,
    double SecondsPerDependentInstruction,
    double SecondsPerCachedLoad,
    double SecondsPerMissedLoad,
    double GemmFlopsPerSecond,
    double GemmCallSeconds)
{
    /// <summary>
    /// An NVIDIA H200 (132 SMs at up to 1.98 GHz, 4 schedulers, 2,048 resident threads and 128 bytes of L1 a cycle
    /// each; HBM3e moved 4.3 TB/s measured with PyTorch), with the fitted constants of
    /// <c>bench/results/cost-model-20261203</c>.
    /// </summary>
    public static readonly GpuCostModel H200 = new("NVIDIA H200 (fitted 2026-12-03)", 132, 1.98e9, 4, 2048, 4.3e12, 4,
        LaunchSeconds: 13.8e-6, SecondsPerDependentInstruction: 5e-9, SecondsPerCachedLoad: 35.1e-9, SecondsPerMissedLoad: 292e-9,
        GemmFlopsPerSecond: 36.1e12, GemmCallSeconds: 18.6e-6);

    /// <summary>What a launch with these features would cost.</summary>
    public CostEstimate Launch(LaunchFeatures f)
    {
        double latency = f.Waves * (f.LongestThread * SecondsPerDependentInstruction
            + (f.MostGlobalLoads - f.MostNewLineLoads) * SecondsPerCachedLoad + f.MostNewLineLoads * SecondsPerMissedLoad);
        var (bound, seconds) = Largest(("dram", f.DramSeconds), ("issue", f.IssueSeconds), ("cache", f.CacheSeconds), ("latency", latency));
        return new(LaunchSeconds + seconds, seconds < LaunchSeconds ? "launch" : bound);
    }

    /// <summary>What cuBLAS would take for C[m×n] = op(A)·op(B) (+ C) in elements of <paramref name="elementBytes"/>.</summary>
    public CostEstimate Gemm(long m, long n, long k, int elementBytes)
    {
        double flops = 2.0 * m * n * k, bytes = (double)elementBytes * (m * k + k * n + 2 * m * n);
        var (bound, seconds) = Largest(("flops", flops / GemmFlopsPerSecond), ("dram", bytes / DramBytesPerSecond));
        return new(GemmCallSeconds + seconds, seconds < GemmCallSeconds ? "launch" : bound);
    }

    /// <summary>What a device-to-device copy of <paramref name="bytes"/> would take: a launch, its bytes read and written.</summary>
    public CostEstimate Copy(long bytes)
    {
        double seconds = 2.0 * bytes / DramBytesPerSecond;
        return new(LaunchSeconds + seconds, seconds < LaunchSeconds ? "launch" : "dram");
    }

    static (string, double) Largest(params (string Bound, double Seconds)[] terms) =>
        terms.Aggregate((a, b) => b.Seconds > a.Seconds ? b : a);
}

/// <summary>An estimated time and what bounds it: <c>launch</c>, <c>dram</c>, <c>issue</c>, <c>cache</c>, <c>latency</c> or <c>flops</c>.</summary>
public readonly record struct CostEstimate(double Seconds, string Bound);

/// <summary>
/// The parts of a launch's cost that do not depend on the fitted constants: its memory, issue and cache times at the
/// chip's own rates, its waves of resident threads, and its longest serial chain. What a fit of the constants reads.
/// </summary>
public readonly record struct LaunchFeatures(double DramSeconds, double IssueSeconds, double CacheSeconds, long Waves, long LongestThread,
    long MostGlobalLoads, long MostNewLineLoads)
{
    /// <summary>
    /// The features of a launch of <paramref name="blocks"/> blocks of <paramref name="threadsPerBlock"/> threads with
    /// these counts, on <paramref name="gpu"/>; blocks go one to a multiprocessor until every one has one.
    /// </summary>
    public static LaunchFeatures Of(LaunchCounters c, long blocks, int threadsPerBlock, GpuCostModel gpu)
    {
        long resident = (long)gpu.Multiprocessors * gpu.ResidentThreadsPerMultiprocessor, threads = blocks * threadsPerBlock;
        double busy = Math.Min(gpu.Multiprocessors, Math.Max(1, blocks)) * gpu.ClockHz;
        return new(c.GlobalSectors * 32.0 / gpu.DramBytesPerSecond, c.TotalWarpInstructions / (busy * gpu.SchedulersPerMultiprocessor),
            c.GlobalSectors / (busy * gpu.L1SectorsPerCycle), Math.Max(1, (threads + resident - 1) / resident), c.LongestThread,
            c.MostGlobalLoads, c.MostNewLineLoads);
    }
}
