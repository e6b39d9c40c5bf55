using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// An activation that only matrix products read: a Linear's input, read again by its weight gradient's product. In a
/// plan for bf16 products (<see cref="GemmPrecision.Bf16"/>) a layer keeps it as the bf16 copy its forward product
/// rounds it to, and <see cref="Values"/> is fp32 scratch the layers share; every product then reads the copy, which
/// loses nothing, since each would round the fp32 values to the same numbers. Otherwise <see cref="Bf16"/> is empty.
/// </summary>
/// <param name="Values">The activation as its op computed it (fp32 scratch once a bf16 copy is kept).</param>
/// <param name="Bf16">The kept bf16 copy, empty in a plan for fp32 products.</param>
public readonly record struct GemmInput<T>(ArrayView<T> Values, ArrayView<ushort> Bf16) where T : unmanaged
{
    /// <summary>Whether the plan keeps the activation as its bf16 copy.</summary>
    public bool KeptInBf16 => Bf16.Length > 0;

    /// <summary>An operand held in its values alone (a weight, a gradient, an activation others read too).</summary>
    public static implicit operator GemmInput<T>(ArrayView<T> values) => new(values, default);
}

/// <summary>The launch that keeps a <see cref="GemmInput{T}"/> in bf16: its values rounded to nearest even, 16 bits each.</summary>
internal static class Bf16Copy
{
    /// <summary>dst[i] = src[i] rounded to bf16, its 16 bits (<see cref="Bf16.RoundBits"/>, as every GEMM rounds).</summary>
    public static void KeepBf16(Index1D index, ArrayView<float> src, ArrayView<ushort> dst) =>
        dst[index] = (ushort)(Bf16.RoundBits(Interop.FloatAsInt(src[index])) >> 16);

    /// <summary>The host entry of <see cref="KeepBf16"/>, over indices from…to−1.</summary>
    public static unsafe void Host(int from, int to, ArrayView<float> src, ArrayView<ushort> dst)
    {
        float* s = (float*)src.LoadEffectiveAddressAsPtr();
        ushort* d = (ushort*)dst.LoadEffectiveAddressAsPtr();
        for (int i = from; i < to; i++) d[i] = Bf16.FromSingle(s[i]);
    }
}
