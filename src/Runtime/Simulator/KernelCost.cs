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

    readonly Dictionary<LaunchFeatures, long> features = [];
    readonly Dictionary<(long M, long N, long K, int Bytes), long> gemms = [];

    /// <summary>The distinct launches' features and how many times each ran.</summary>
    public IReadOnlyDictionary<LaunchFeatures, long> Features => features;

    /// <summary>The distinct GEMM shapes (m, n, k, bytes per element) and how many times each ran.</summary>
    public IReadOnlyDictionary<(long M, long N, long K, int Bytes), long> Gemms => gemms;

    /// <summary>The bound that took most of the time.</summary>
    public string Bound => SecondsByBound.MaxBy(b => b.Value).Key;

    /// <summary>Adds a kernel launch with these features and its estimate.</summary>
    internal void Add(LaunchFeatures launch, CostEstimate estimate)
    {
        features[launch] = features.GetValueOrDefault(launch) + 1;
        Add(estimate);
    }

    /// <summary>Adds a GEMM of this shape and its estimate.</summary>
    internal void Add((long M, long N, long K, int Bytes) gemm, CostEstimate estimate)
    {
        gemms[gemm] = gemms.GetValueOrDefault(gemm) + 1;
        Add(estimate);
    }

    /// <summary>Adds a device-to-device copy and its estimate.</summary>
    internal void AddCopy(CostEstimate estimate) => Add(estimate);

    void Add(CostEstimate estimate)
    {
        Seconds += estimate.Seconds;
        Launches++;
        SecondsByBound[estimate.Bound] = SecondsByBound.GetValueOrDefault(estimate.Bound) + estimate.Seconds;
    }
}
