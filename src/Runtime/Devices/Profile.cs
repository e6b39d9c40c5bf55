namespace GateLoop.Runtime;

/// <summary>Time spent per kernel while <see cref="Device.Profile"/> is set, grouped into the phases a step consists of.</summary>
public sealed class Profile
{
    readonly Dictionary<string, double> milliseconds = [];

    /// <summary>Adds <paramref name="ms"/> to <paramref name="kernel"/>'s total.</summary>
    public void Add(string kernel, double ms) =>
        milliseconds[kernel] = milliseconds.GetValueOrDefault(kernel) + ms;

    /// <summary>Milliseconds per kernel name.</summary>
    public IReadOnlyDictionary<string, double> ByKernel => milliseconds;

    /// <summary>Milliseconds per phase: gemm, scan, attention, optimizer, elementwise (norms, activations, loss, …).</summary>
    public IReadOnlyDictionary<string, double> ByPhase =>
        milliseconds.GroupBy(p => Phase(p.Key)).ToDictionary(g => g.Key, g => g.Sum(p => p.Value));

    /// <summary>The phase a kernel (or <c>Gemm</c>, <c>ColumnSum</c>) belongs to.</summary>
    public static string Phase(string kernel) =>
        kernel is "Gemm" or "ReducedGemv" ? "gemm"
        : kernel.StartsWith("Scan", StringComparison.Ordinal) ? "scan"
        : kernel.StartsWith("Attention", StringComparison.Ordinal) || kernel is "Rotate" || kernel.StartsWith("RelPos", StringComparison.Ordinal) ? "attention"
        : kernel is "AdamStep" or "SquaredNormPartials" or "ClipScale" ? "optimizer"
        : "elementwise";
}
