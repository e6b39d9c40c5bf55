namespace GateLoop.Runtime;

/// <summary>
/// Raw counts of one simulated launch (or the sum of several): what a cost model of a GPU needs and a GPU profiler
/// would report. A warp instruction is one instruction issued for a warp's active lanes; the sectors are the
/// distinct 32-byte pieces of memory each warp access touches, so a coalesced float load of 32 lanes is 4 sectors
/// and a strided one up to 32.
/// </summary>
public sealed class LaunchCounters
{
    /// <summary>Launches summed here.</summary>
    public long Launches { get; set; }

    /// <summary>Threads launched (grid × block), including those that return at once past the kernel's length.</summary>
    public long Threads { get; set; }

    /// <summary>Warp instructions issued, by <see cref="InstructionClass"/>.</summary>
    public long[] WarpInstructions { get; } = new long[Enum.GetValues<InstructionClass>().Length];

    /// <summary>Instructions executed summed over threads.</summary>
    public long ThreadInstructions { get; set; }

    /// <summary>Instructions of the thread that executed the most: the launch's serial depth.</summary>
    public long LongestThread { get; set; }

    /// <summary>
    /// Global loads (and atomics) of the thread that issued the most: with <see cref="LongestThread"/>, the serial
    /// chain a cost model charges memory latency for (a column sum walking rows, a scan walking time).
    /// </summary>
    public long MostGlobalLoads { get; set; }

    /// <summary>
    /// Of those, the most any thread issued to a 128-byte line other than the one the same instruction read last: the
    /// loads a cache misses when a thread walks memory (a row walked in order misses once per 32 floats, a column
    /// every row), where the others are hits.
    /// </summary>
    public long MostNewLineLoads { get; set; }

    /// <summary>Warp-level global loads and stores (atomics count as both).</summary>
    public long GlobalAccesses { get; set; }

    /// <summary>Bytes the threads asked for from global memory, loads and stores.</summary>
    public long GlobalBytes { get; set; }

    /// <summary>32-byte sectors the warp accesses touched, summed over accesses.</summary>
    public long GlobalSectors { get; set; }

    /// <summary>Bytes read from and written to shared memory.</summary>
    public long SharedBytes { get; set; }

    /// <summary>
    /// Branches marked <c>.uni</c> (the ISA: all active lanes agree) that diverged. ILGPU 1.5.3 marks branches on
    /// thread-dependent values so; the GPU runs them as ordinary branches, and so does the simulator.
    /// </summary>
    public long DivergentUniformBranches { get; set; }

    /// <summary>
    /// Instructions that ran with operands on which PTX and .NET compute differently, by PTX line (1-based): a
    /// copysign, a NaN into min/max, a negative value into an arithmetic right shift (ILGPU's form of a signed
    /// division by a power of two), a denormal float constant (ILGPU's bool converted to float). The first place to
    /// look when a kernel disagrees with the host.
    /// </summary>
    public SortedDictionary<int, string> Hazards { get; } = [];

    /// <summary>Total warp instructions.</summary>
    public long TotalWarpInstructions => WarpInstructions.Sum();

    /// <summary>
    /// Scales the counts of <paramref name="ran"/> blocks to <paramref name="blocks"/> (a sampled launch); the
    /// longest thread and its loads stay, being per thread.
    /// </summary>
    public void ScaleRuns(long blocks, long ran)
    {
        long Scale(long v) => (long)Math.Round((double)v * blocks / ran);
        for (int i = 0; i < WarpInstructions.Length; i++) WarpInstructions[i] = Scale(WarpInstructions[i]);
        ThreadInstructions = Scale(ThreadInstructions);
        GlobalAccesses = Scale(GlobalAccesses);
        GlobalBytes = Scale(GlobalBytes);
        GlobalSectors = Scale(GlobalSectors);
        SharedBytes = Scale(SharedBytes);
        DivergentUniformBranches = Scale(DivergentUniformBranches);
    }

    /// <summary>Adds <paramref name="other"/> into these counts (the longest thread is the longer one).</summary>
    public void Add(LaunchCounters other)
    {
        Launches += other.Launches;
        Threads += other.Threads;
        for (int i = 0; i < WarpInstructions.Length; i++) WarpInstructions[i] += other.WarpInstructions[i];
        ThreadInstructions += other.ThreadInstructions;
        LongestThread = Math.Max(LongestThread, other.LongestThread);
        MostGlobalLoads = Math.Max(MostGlobalLoads, other.MostGlobalLoads);
        MostNewLineLoads = Math.Max(MostNewLineLoads, other.MostNewLineLoads);
        GlobalAccesses += other.GlobalAccesses;
        GlobalBytes += other.GlobalBytes;
        GlobalSectors += other.GlobalSectors;
        SharedBytes += other.SharedBytes;
        DivergentUniformBranches += other.DivergentUniformBranches;
        foreach (var (line, what) in other.Hazards) Hazards.TryAdd(line, what);
    }
}
