using System.Numerics;
using System.Runtime.CompilerServices;
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

    // The weight matrices in reduced precision, by offset, when UseWeights chose a format other than fp32.
    Dictionary<long, QuantizedMatrix>? quantized;

    /// <summary>Above this many rows a Linear runs as a GEMM on the fp32 weights even when reduced copies exist.</summary>
    const int QuantizedRowsAtMost = 8;

    /// <summary>
    /// Makes every Linear on the host compute its rows one by one, reading each weight matrix once for all of them: from
    /// the reduced copy when there is one (at any row count), else from the fp32 matrix in register tiles that add up
    /// every element in one order. A row's result then does not depend on the rows beside it, as a server stepping
    /// independent streams in one batch needs; the GEMM is faster over many rows. No effect on a GPU.
    /// </summary>
    public bool RowByRow { get; set; }

    /// <summary>How the weight matrices are stored for inference (<see cref="UseWeights"/>).</summary>
    public WeightFormat WeightFormat { get; private set; } = WeightFormat.Fp32;

    /// <summary>
    /// Stores every weight matrix (each Linear's [out, in]) in <paramref name="format"/> for inference: the
    /// matrix–vector products of generation on the host backend read bf16 (half the bytes) or int8 with a scale per
    /// output row (a quarter), and the fp32 weights are replaced by the values those stand for, so every other pass
    /// (evaluation, prompts, a GPU) computes with the same weights.
    /// For inference: an optimizer step changes the fp32 weights only, and <see cref="WriteWeights"/> returns to fp32.
    /// </summary>
    /// <exception cref="NotSupportedException">The module is not compiled for float.</exception>
    public void UseWeights(WeightFormat format)
    {
        if (typeof(T) != typeof(float)) throw new NotSupportedException($"reduced-precision weights need a float module, not {typeof(T).Name}");
        if (format == WeightFormat) return;
        if (WeightFormat != WeightFormat.Fp32)
            throw new InvalidOperationException($"the weights are {WeightFormat} already; load the fp32 weights again to choose another format");
        var weights = (float[])(object)ReadWeights();
        var matrices = new Dictionary<long, QuantizedMatrix>();
        foreach (var p in Parameters.Where(p => p.Shape.Length == 2 && p.Init == Init.Uniform))
        {
            var span = weights.AsSpan((int)p.Offset, (int)p.Length);
            var matrix = QuantizedMatrix.Create(span, p.Shape[0], p.Shape[1], format);
            matrix.Dequantize(span);
            // Only the host backend reads the copies; on a GPU the rounded fp32 values alone give the format's
            // results, and a copy would be memory held for nothing.
            if (Device.IsHost) matrices[p.Offset] = matrix;
        }
        WriteWeights((T[])(object)weights);
        (quantized, WeightFormat) = (matrices, format);
    }

    /// <summary>
    /// Bytes of weights one generated token reads: every weight matrix as stored, the other tensors in fp32, and one
    /// row of the embedding table.
    /// </summary>
    public long WeightBytesPerToken => Parameters.Sum(p =>
        quantized?.GetValueOrDefault(p.Offset) is { } q ? q.Bytes
        : p.Init == Init.Normal && p.Shape.Length == 2 ? (long)p.Shape[1] * Unsafe.SizeOf<T>()
        : p.Length * Unsafe.SizeOf<T>());

    /// <summary>
    /// A Linear's forward product for the generated schedules: y = x·Wᵀ + β·y over <paramref name="rows"/> rows, W the
    /// [outs × ins] matrix at <paramref name="offset"/>; from its reduced copy on the host when there is one and the
    /// rows are few (generation), row by row under <see cref="RowByRow"/>, else a GEMM.
    /// </summary>
    protected unsafe void Linear(int rows, int outs, int ins, ArrayView<T> x, long offset, T beta, ArrayView<T> y)
    {
        if ((rows <= QuantizedRowsAtMost || RowByRow) && quantized?.GetValueOrDefault(offset) is { } matrix)
        {
            long start = Device.Start();
            matrix.Multiply(rows, (float*)ArrayViewExtensions.LoadEffectiveAddressAsPtr(x), float.CreateChecked(beta),
                (float*)ArrayViewExtensions.LoadEffectiveAddressAsPtr(y));
            Device.Record("ReducedGemv", start);
            return;
        }
        if (RowByRow && Device.IsHost)
        {
            long start = Device.Start();
            HostGemm.RowsTimesTransposed(rows, outs, ins, (T*)ArrayViewExtensions.LoadEffectiveAddressAsPtr(x),
                (T*)ArrayViewExtensions.LoadEffectiveAddressAsPtr(W(offset, (long)outs * ins)), beta, (T*)ArrayViewExtensions.LoadEffectiveAddressAsPtr(y));
            Device.Record("RowGemv", start);
            return;
        }
        Device.Gemm(false, true, rows, outs, ins, T.One, x, W(offset, (long)outs * ins), beta, y);
    }

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
        // New weights are fp32 weights: reduced copies of the old ones would no longer match them.
        (quantized, WeightFormat) = (null, WeightFormat.Fp32);
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
