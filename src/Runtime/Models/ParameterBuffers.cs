using System.Numerics;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// One flat parameter buffer and its gradient buffer, laid out by a parameter table: PyTorch's default
/// initialization, host read-back and upload. Shared by every generated class that owns parameters.
/// </summary>
internal sealed class ParameterBuffers<T> : IDisposable where T : unmanaged, IFloatingPoint<T>
{
    readonly MemoryBuffer1D<T, Stride1D.Dense> weights, gradients;

    public ParameterBuffers(Device device, IReadOnlyList<ParameterInfo> table)
    {
        Table = table;
        Count = table.Sum(p => p.Length);
        weights = device.Allocate<T>(Count);
        gradients = device.Allocate<T>(Count);
    }

    public IReadOnlyList<ParameterInfo> Table { get; }

    public long Count { get; }

    public ArrayView<T> Weights => weights.View;

    public ArrayView<T> Gradients => gradients.View;

    /// <summary>Fills the weights with PyTorch's default initialization from <paramref name="seed"/>.</summary>
    public void Initialize(int seed)
    {
        var random = new Random(seed);
        var host = new T[Count];
        foreach (var p in Table)
        {
            var span = host.AsSpan((int)p.Offset, (int)p.Length);
            double bound = 1.0 / Math.Sqrt(Math.Max(p.FanIn, 1));
            for (int i = 0; i < span.Length; i++)
                span[i] = T.CreateChecked(p.Init switch
                {
                    Init.Zeros => 0.0,
                    Init.Ones => 1.0,
                    Init.Normal => Normal(random),
                    // As rotary_embedding_torch computes them in float32: 1 / 10000^(2i / head width).
                    Init.RotaryFrequencies => 1.0 / Math.Pow(10000, (float)(2 * i) / (2 * span.Length)),
                    _ => (2 * random.NextDouble() - 1) * bound,
                });
        }
        Write(host);
    }

    static double Normal(Random random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    public T[] ReadWeights() => Read(Weights.SubView(0, Count));

    public void Write(ReadOnlySpan<T> values)
    {
        if (values.Length != Count)
            throw new ArgumentException($"expected {Count} weights, got {values.Length}", nameof(values));
        Weights.SubView(0, Count).CopyFromCPU(values);
    }

    public T[] ReadGradients() => Read(Gradients.SubView(0, Count));

    public void ZeroGradients() => gradients.MemSetToZero();

    public static T[] Read(ArrayView<T> view)
    {
        var host = new T[view.Length];
        view.CopyToCPU(host);
        return host;
    }

    public void Dispose()
    {
        weights.Dispose();
        gradients.Dispose();
    }
}
