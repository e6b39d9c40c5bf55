using System.Numerics;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// How a module's Linear products read its weight matrices: as a GEMM on the fp32 weights, from reduced-precision
/// copies (bf16, int8) for generation on the host, or row by row for a server's independent streams. A module has
/// one (<see cref="Module{T}.Inference"/>); training leaves it at fp32 and off.
/// </summary>
/// <typeparam name="T">The module's element type.</typeparam>
public sealed class InferenceWeights<T> where T : unmanaged, IFloatingPoint<T>
{
    readonly Module<T> module;

    // The weight matrices in reduced precision, by offset, when UseWeights chose a format other than fp32.
    Dictionary<long, QuantizedMatrix>? quantized;

    /// <summary>Above this many rows a Linear runs as a GEMM on the fp32 weights even when reduced copies exist.</summary>
    const int QuantizedRowsAtMost = 8;

    internal InferenceWeights(Module<T> module) => this.module = module;

    /// <summary>
    /// Makes every Linear on the host compute its rows one by one, reading each weight matrix once for all of them: from
    /// the reduced copy when there is one (at any row count), else from the fp32 matrix in register tiles that add up
    /// every element in one order. A row's result then does not depend on the rows beside it, as a server stepping
    /// independent streams in one batch needs; the GEMM is faster over many rows. No effect on a GPU.
    /// </summary>
    public bool RowByRow { get; set; }

    /// <summary>How the weight matrices are stored for inference (<see cref="UseWeights"/>).</summary>
    public WeightFormat Format { get; private set; } = WeightFormat.Fp32;

    /// <summary>
    /// Stores every weight matrix (each Linear's [out, in]) in <paramref name="format"/> for inference: the
    /// matrix–vector products of generation on the host backend read bf16 (half the bytes) or int8 with a scale per
    /// output row (a quarter), and the fp32 weights are replaced by the values those stand for, so every other pass
    /// (evaluation, prompts, a GPU) computes with the same weights.
    /// For inference: an optimizer step changes the fp32 weights only, and <see cref="Module{T}.WriteWeights"/> returns to fp32.
    /// </summary>
    /// <exception cref="NotSupportedException">The module is not compiled for float.</exception>
    public void UseWeights(WeightFormat format)
    {
        if (typeof(T) != typeof(float)) throw new NotSupportedException($"reduced-precision weights need a float module, not {typeof(T).Name}");
        if (format == Format) return;
        if (Format != WeightFormat.Fp32)
            throw new InvalidOperationException($"the weights are {Format} already; load the fp32 weights again to choose another format");
        var weights = (float[])(object)module.ReadWeights();
        var matrices = new Dictionary<long, QuantizedMatrix>();
        foreach (var p in module.Parameters.Where(p => p.Shape.Length == 2 && p.Init == Init.Uniform))
        {
            var span = weights.AsSpan((int)p.Offset, (int)p.Length);
            var matrix = QuantizedMatrix.Create(span, p.Shape[0], p.Shape[1], format);
            matrix.Dequantize(span);
            // Only the host backend reads the copies; on a GPU the rounded fp32 values alone give the format's
            // results, and a copy would be memory held for nothing.
            if (module.Device.IsHost) matrices[p.Offset] = matrix;
        }
        module.WriteWeights((T[])(object)weights);
        (quantized, Format) = (matrices, format);
    }

    /// <summary>New weights are fp32 weights: reduced copies of the old ones would no longer match them.</summary>
    internal void Drop() => (quantized, Format) = (null, WeightFormat.Fp32);

    /// <summary>
    /// Bytes of weights one generated token reads: every weight matrix as stored, the other tensors in fp32, and one
    /// row of the embedding table.
    /// </summary>
    public long BytesPerToken => module.Parameters.Sum(p =>
        quantized?.GetValueOrDefault(p.Offset) is { } q ? q.Bytes
        : p.Init == Init.Normal && p.Shape.Length == 2 ? (long)p.Shape[1] * Unsafe.SizeOf<T>()
        : p.Length * Unsafe.SizeOf<T>());

    /// <summary>
    /// A Linear's forward product: y = x·Wᵀ + β·y over <paramref name="rows"/> rows, W the [outs × ins] matrix at
    /// <paramref name="offset"/> of the flat weights; from its reduced copy on the host when there is one and the rows
    /// are few (generation), row by row under <see cref="RowByRow"/>, else a GEMM. An x kept in bf16 is rounded into
    /// its copy first, which the GEMM then reads (and the backward's weight gradient again).
    /// </summary>
    internal unsafe void Linear(int rows, int outs, int ins, GemmInput<T> input, long offset, T beta, ArrayView<T> y)
    {
        var device = module.Device;
        device.KeepBf16(input);
        var x = input.Values;
        var w = module.Weights.SubView(offset, (long)outs * ins);
        if ((rows <= QuantizedRowsAtMost || RowByRow) && quantized?.GetValueOrDefault(offset) is { } matrix)
        {
            long start = device.Start();
            matrix.Multiply(rows, (float*)ArrayViewExtensions.LoadEffectiveAddressAsPtr(x), float.CreateChecked(beta),
                (float*)ArrayViewExtensions.LoadEffectiveAddressAsPtr(y));
            device.Record("ReducedGemv", start);
            return;
        }
        if (RowByRow && device.IsHost)
        {
            long start = device.Start();
            HostGemm.RowsTimesTransposed(rows, outs, ins, (T*)ArrayViewExtensions.LoadEffectiveAddressAsPtr(x),
                (T*)ArrayViewExtensions.LoadEffectiveAddressAsPtr(w), beta, (T*)ArrayViewExtensions.LoadEffectiveAddressAsPtr(y));
            device.Record("RowGemv", start);
            return;
        }
        device.Gemm(false, true, rows, outs, ins, T.One, input, w, beta, y);
    }
}
