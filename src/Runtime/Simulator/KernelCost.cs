namespace GateLoop.Runtime;

/// <summary>
/// The estimated cost of one kernel's launches (or one GEMM name's calls) under a <see cref="GpuCostModel"/>: their
/// total, what bounded each, and the distinct launches with how often each ran, so the model's constants can be
/// refitted from a report without simulating again.
/// </summary>
public sealed class KernelCost
{
    /// <summary>Estimated seconds, summed over launches.</summary>
    public double Seconds { get; private set; }

    /// <summary>Launches (or GEMM calls) summed here.</summary>
    public long Launches { get; private set; }

    /// <summary>Estimated seconds by what bounded the launch (see <see cref="CostEstimate.Bound"/>).</summary>
    public Dictionary<string, double> SecondsByBound { get; } = [];

    /// <summary>The distinct launches' features and how many times each ran.</summary>
    public Dictionary<LaunchFeatures, long> Features { get; } = [];

    /// <summary>The distinct GEMM shapes (m, n, k, bytes per element) and how many times each ran.</summary>
    public Dictionary<(long M, long N, long K, int Bytes), long> Gemms { get; } = [];

    /// <summary>The bound that took most of the time.</summary>
    public string Bound => SecondsByBound.MaxBy(b => b.Value).Key;

    internal void Add(CostEstimate estimate)
    {
        Seconds += estimate.Seconds;
        Launches++;
        SecondsByBound[estimate.Bound] = SecondsByBound.GetValueOrDefault(estimate.Bound) + estimate.Seconds;
    }
}
