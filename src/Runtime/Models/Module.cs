using System.Numerics;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// What every generated model and layer shares: its device and one flat buffer for all parameters and one for
/// their gradients, laid out by the generated parameter table, with PyTorch's default initialization.
/// </summary>
/// <typeparam name="T">The element type the class was compiled for (float, or double for verification).</typeparam>
public abstract class Module<T> : IDisposable where T : unmanaged, IFloatingPoint<T>
{
    readonly MemoryBuffer1D<T, Stride1D.Dense> weights, gradients;

    /// <summary>Creates zeroed weight and gradient buffers for <paramref name="parameters"/> on <paramref name="device"/>.</summary>
    protected Module(Device device, IReadOnlyList<ParameterInfo> parameters)
    {
        Device = device;
        Parameters = parameters;
        ParameterCount = parameters.Sum(p => p.Length);
        weights = device.Allocate<T>(ParameterCount);
        gradients = device.Allocate<T>(ParameterCount);
        Inference = new InferenceWeights<T>(this);
    }

    /// <summary>The device the buffers live on and the kernels run on.</summary>
    public Device Device { get; }

    /// <summary>Every tensor with its PyTorch name, shape and offset.</summary>
    public IReadOnlyList<ParameterInfo> Parameters { get; }

    /// <summary>Total number of parameters.</summary>
    public long ParameterCount { get; }

    /// <summary>The declaration's attribute values (resolved), for checkpoints and reports.</summary>
    public abstract IReadOnlyDictionary<string, object> Configuration { get; }

    /// <summary>The flat parameter buffer.</summary>
    public ArrayView<T> Weights => weights.View;

    /// <summary>The flat gradient buffer (same layout); backward passes add into it.</summary>
    public ArrayView<T> Gradients => gradients.View;

    /// <summary>One tensor of the flat parameter buffer, for the generated schedules.</summary>
    protected ArrayView<T> W(long offset, long length) => Weights.SubView(offset, length);

    /// <summary>One tensor of the flat gradient buffer, for the generated schedules.</summary>
    protected ArrayView<T> G(long offset, long length) => Gradients.SubView(offset, length);

    /// <summary>How the Linear products read the weight matrices: reduced-precision copies, row by row (for inference).</summary>
    public InferenceWeights<T> Inference { get; }

    /// <summary>A Linear's forward product for the generated schedules (<see cref="InferenceWeights{T}"/> says how it reads W).</summary>
    protected void Linear(int rows, int outs, int ins, GemmInput<T> x, long offset, T beta, ArrayView<T> y) =>
        Inference.Linear(rows, outs, ins, x, offset, beta, y);

    /// <summary>Fills the weights with PyTorch's default initialization from <paramref name="seed"/>.</summary>
    public void Initialize(int seed)
    {
        var random = new Random(seed);
        var host = new T[ParameterCount];
        foreach (var p in Parameters)
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
        WriteWeights(host);
    }

    static double Normal(Random random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Copies all weights to the host, in <see cref="Parameters"/> layout.</summary>
    public T[] ReadWeights() => Read(Weights.SubView(0, ParameterCount));

    /// <summary>Replaces all weights (<see cref="ParameterCount"/> values in <see cref="Parameters"/> layout).</summary>
    public void WriteWeights(ReadOnlySpan<T> values)
    {
        if (values.Length != ParameterCount)
            throw new ArgumentException($"expected {ParameterCount} weights, got {values.Length}", nameof(values));
        Weights.SubView(0, ParameterCount).CopyFromCPU(values);
        Inference.Drop();
    }

    /// <summary>Copies the accumulated gradients to the host.</summary>
    public T[] ReadGradients() => Read(Gradients.SubView(0, ParameterCount));

    /// <summary>Replaces all gradients (<see cref="ParameterCount"/> values in <see cref="Parameters"/> layout).</summary>
    internal void WriteGradients(ReadOnlySpan<T> values) => Gradients.SubView(0, ParameterCount).CopyFromCPU(values);

    /// <summary>Sets all gradients to zero (start of an accumulation window).</summary>
    public void ZeroGradients() => gradients.MemSetToZero();

    /// <summary>Copies a device view to a new host array.</summary>
    internal static T[] Read(ArrayView<T> view)
    {
        var host = new T[view.Length];
        view.CopyToCPU(host);
        return host;
    }

    /// <summary>Frees what a subclass holds besides the parameters (activation workspaces).</summary>
    protected virtual void DisposeActivations() { }

    /// <inheritdoc />
    public void Dispose()
    {
        DisposeActivations();
        weights.Dispose();
        gradients.Dispose();
        GC.SuppressFinalize(this);
    }
}
