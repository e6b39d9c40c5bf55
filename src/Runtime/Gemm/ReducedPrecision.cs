using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GateLoop.Runtime;

/// <summary>How a module's weight matrices are stored for inference.</summary>
public enum WeightFormat
{
    /// <summary>32-bit floats, as trained (4 bytes a weight).</summary>
    Fp32,

    /// <summary>bfloat16, rounded to nearest even: fp32's exponent, 8 bits of mantissa (2 bytes a weight).</summary>
    Bf16,

    /// <summary>8-bit integers with one fp32 scale per output row, max |w| / 127 (1 byte a weight).</summary>
    Int8,
}

/// <summary>What a training run's matrix products take as inputs (<c>train --precision</c>).</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<GemmPrecision>))]
public enum GemmPrecision
{
    /// <summary>fp32 inputs and sums (TF32 where <see cref="Device.AllowTf32"/> lets cuBLAS).</summary>
    Fp32,

    /// <summary>
    /// Inputs rounded to bfloat16 (to nearest, ties to even), products and sums in fp32: what cuBLAS computes from
    /// bf16 matrices with CUBLAS_COMPUTE_32F, and what PyTorch's bf16 autocast does for a Linear.
    /// </summary>
    Bf16,
}

/// <summary>
/// bfloat16: the upper 16 bits of an fp32 (sign, 8 exponent bits, 7 stored mantissa bits). Rounding is to nearest,
/// ties to even, as a GPU's <c>cvt.rn.bf16.f32</c>: a value past bf16's largest finite one by half a unit or more
/// becomes infinite, subnormals round like any value, and a NaN stays a NaN (quieted).
/// </summary>
public static class Bf16
{
    /// <summary>
    /// The fp32 bit pattern of <paramref name="bits"/> rounded to bf16 (its low 16 bits zero). Integer operations
    /// only, so a GPU kernel computes it exactly as the host does.
    /// </summary>
    public static uint RoundBits(uint bits) =>
        (bits & 0x7FFFFFFFu) > 0x7F800000u ? (bits | 0x00400000u) & 0xFFFF0000u
        : (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;

    /// <summary><paramref name="value"/> rounded to the nearest bf16, as an fp32.</summary>
    public static float Round(float value) => BitConverter.UInt32BitsToSingle(RoundBits(BitConverter.SingleToUInt32Bits(value)));

    /// <summary><paramref name="value"/> rounded to the nearest bf16, stored in 16 bits.</summary>
    public static ushort FromSingle(float value) => (ushort)(RoundBits(BitConverter.SingleToUInt32Bits(value)) >> 16);

    /// <summary>The fp32 a stored bf16 stands for (exact).</summary>
    public static float ToSingle(ushort value) => BitConverter.UInt32BitsToSingle((uint)value << 16);
}

/// <summary>
/// A weight matrix W [rows × cols] (a Linear's [out, in]) in bf16 or int8 on the host, for the matrix–vector products
/// of generation, y = x·Wᵀ over a few rows of x: memory-bound, so the bytes read per product are what count.
/// </summary>
/// <remarks>
/// The values are stored in panels of 16 rows, column after column (the 16 weights of one column of a panel are
/// adjacent), so a multiply-add computes 16 / Count outputs at once from one broadcast input on every tier (one
/// 512-bit register, two 256-bit or four 128-bit ones): no horizontal sums, one pass over the bytes. The stored
/// values are widened to fp32 in registers and accumulated in fp32, so a product computes with the values
/// <see cref="Dequantize"/> gives (int8's row scale applied to the sum), and the activations stay fp32.
/// (.NET 10 exposes VNNI dot products only as AvxVnni/AvxVnniInt8, the VEX forms, which AVX-512-VNNI processors such
/// as AMD Zen 4 do not report.)
/// </remarks>
internal sealed unsafe class QuantizedMatrix
{
    /// <summary>Rows per panel: one 512-bit register of fp32.</summary>
    const int Lanes = 16;

    readonly ushort[]? bf16;
    readonly sbyte[]? int8;
    readonly float[]? scales;

    QuantizedMatrix(WeightFormat format, int rows, int cols, ushort[]? bf16, sbyte[]? int8, float[]? scales)
    {
        Format = format;
        Rows = rows;
        Cols = cols;
        this.bf16 = bf16;
        this.int8 = int8;
        this.scales = scales;
    }

    public WeightFormat Format { get; }

    public int Rows { get; }

    public int Cols { get; }

    int Panels => (Rows + Lanes - 1) / Lanes;

    /// <summary>Bytes one product reads: the stored weights (the last panel padded to 16 rows) and, for int8, the scales.</summary>
    public long Bytes => (long)Panels * Lanes * (Format == WeightFormat.Bf16 ? 2L * Cols : Cols + 4L);

    /// <summary>Where weight (row, col) lives in the panel layout.</summary>
    int Index(int row, int col) => ((row / Lanes) * Cols + col) * Lanes + row % Lanes;

    /// <summary>Stores <paramref name="w"/> (row-major [rows × cols]) in <paramref name="format"/> (bf16 or int8).</summary>
    public static QuantizedMatrix Create(ReadOnlySpan<float> w, int rows, int cols, WeightFormat format)
    {
        long padded = (long)(rows + Lanes - 1) / Lanes * Lanes;
        if (format == WeightFormat.Bf16)
        {
            var matrix = new QuantizedMatrix(format, rows, cols, new ushort[padded * cols], null, null);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                    matrix.bf16![matrix.Index(r, c)] = Bf16.FromSingle(w[r * cols + c]);
            return matrix;
        }
        if (format != WeightFormat.Int8) throw new ArgumentOutOfRangeException(nameof(format), format, "only bf16 and int8 are stored reduced");
        var result = new QuantizedMatrix(format, rows, cols, null, new sbyte[padded * cols], new float[padded]);
        Array.Fill(result.scales!, 1f);
        for (int r = 0; r < rows; r++)
        {
            var row = w.Slice(r * cols, cols);
            float max = 0;
            foreach (float v in row) max = Math.Max(max, Math.Abs(v));
            float scale = result.scales![r] = max > 0 ? max / 127 : 1;
            for (int c = 0; c < cols; c++) result.int8![result.Index(r, c)] = (sbyte)Math.Clamp(MathF.Round(row[c] / scale), -127, 127);
        }
        return result;
    }

    /// <summary>The fp32 values the stored weights stand for, row-major.</summary>
    public void Dequantize(Span<float> w)
    {
        for (int r = 0; r < Rows; r++)
            for (int c = 0; c < Cols; c++)
            {
                int i = Index(r, c);
                w[r * Cols + c] = bf16 is not null ? Bf16.ToSingle(bf16[i]) : int8![i] * scales![r];
            }
    }

    /// <summary>
    /// y[m × Rows] = x[m × Cols]·Wᵀ + β·y over host memory; the panels are spread over the cores when the matrix is
    /// large enough to pay for waking them.
    /// </summary>
    public void Multiply(int m, float* x, float beta, float* y)
    {
        switch (HostTier.Current)
        {
            case SimdTier.Avx512: Multiply<Vector512<float>, Simd512<float>>(m, x, beta, y); break;
            case SimdTier.Avx2: Multiply<Vector256<float>, Simd256<float>>(m, x, beta, y); break;
            default: Multiply<Vector128<float>, Simd128<float>>(m, x, beta, y); break;
        }
    }

    void Multiply<TV, TS>(int m, float* x, float beta, float* y) where TV : struct where TS : struct, ISimd<float, TV>
    {
        int chunks = (long)Rows * Cols < 1 << 16 ? 1 : Math.Min(Panels, Environment.ProcessorCount * 4);
        if (chunks == 1) MultiplyPanels<TV, TS>(0, Panels, m, x, beta, y);
        else Parallel.For(0, chunks, c => MultiplyPanels<TV, TS>(Panels * c / chunks, Panels * (c + 1) / chunks, m, x, beta, y));
    }

    void MultiplyPanels<TV, TS>(int from, int to, int m, float* x, float beta, float* y) where TV : struct where TS : struct, ISimd<float, TV>
    {
        float* sums = stackalloc float[Lanes];
        for (int panel = from; panel < to; panel++)
            for (int r = 0; r < m; r++)
            {
                float* row = x + (long)r * Cols;
                if (bf16 is not null)
                    fixed (ushort* w = &bf16[(long)panel * Cols * Lanes]) Panel<ushort, TV, TS>(w, row, Cols, sums);
                else
                    fixed (sbyte* w = &int8![(long)panel * Cols * Lanes]) Panel<sbyte, TV, TS>(w, row, Cols, sums);
                float* target = y + (long)r * Rows + panel * Lanes;
                for (int lane = 0; lane < Lanes && panel * Lanes + lane < Rows; lane++)
                {
                    float sum = scales is null ? sums[lane] : sums[lane] * scales[panel * Lanes + lane];
                    target[lane] = beta == 0 ? sum : sum + beta * target[lane];
                }
            }
    }

    /// <summary>
    /// sums[0…15] = Σ_c widen(w[c, 0…15])·x[c] over one panel's <paramref name="cols"/> columns. The panel is a run of
    /// vectors, Parts = 16 / Count per column: vector v holds lanes (v mod Parts)·Count… of column v / Parts. Four
    /// accumulators over consecutive vectors hide the multiply-add latency; Parts divides 4, so accumulator i always
    /// holds part i mod Parts and they add up by part at the end. The tier and the format are type parameters, so
    /// the JIT compiles one loop for each with Parts a constant and the widening inlined.
    /// </summary>
    static void Panel<TStored, TV, TS>(TStored* w, float* x, int cols, float* sums)
        where TStored : unmanaged where TV : struct where TS : struct, ISimd<float, TV>
    {
        int count = TS.Count, parts = Lanes / count;
        TV a0 = TS.Zero, a1 = TS.Zero, a2 = TS.Zero, a3 = TS.Zero;
        int vectors = cols * parts, v = 0;
        // x advances 4 / Parts columns a step, so each vector's column offset (i / Parts) is a constant.
        for (; v + 4 <= vectors; v += 4, w += 4 * count, x += 4 / parts)
        {
            a0 = TS.MulAdd(Widen<TStored, TV, TS>(w), TS.Broadcast(x), a0);
            a1 = TS.MulAdd(Widen<TStored, TV, TS>(w + count), TS.Broadcast(x + 1 / parts), a1);
            a2 = TS.MulAdd(Widen<TStored, TV, TS>(w + 2 * count), TS.Broadcast(x + 2 / parts), a2);
            a3 = TS.MulAdd(Widen<TStored, TV, TS>(w + 3 * count), TS.Broadcast(x + 3 / parts), a3);
        }
        // The tail is fewer than 4 vectors, starting at part 0 like a0.
        if (v < vectors) a0 = TS.MulAdd(Widen<TStored, TV, TS>(w), TS.Broadcast(x), a0);
        if (v + 1 < vectors) a1 = TS.MulAdd(Widen<TStored, TV, TS>(w + count), TS.Broadcast(x + 1 / parts), a1);
        if (v + 2 < vectors) a2 = TS.MulAdd(Widen<TStored, TV, TS>(w + 2 * count), TS.Broadcast(x + 2 / parts), a2);
        if (parts == 1) TS.Store(sums, TS.Add(TS.Add(a0, a1), TS.Add(a2, a3)));
        else if (parts == 2)
        {
            TS.Store(sums, TS.Add(a0, a2));
            TS.Store(sums + count, TS.Add(a1, a3));
        }
        else
        {
            TS.Store(sums, a0);
            TS.Store(sums + count, a1);
            TS.Store(sums + 2 * count, a2);
            TS.Store(sums + 3 * count, a3);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static TV Widen<TStored, TV, TS>(TStored* w) where TStored : unmanaged where TV : struct where TS : struct, ISimd<float, TV> =>
        typeof(TStored) == typeof(ushort) ? TS.WidenBf16((ushort*)w) : TS.WidenInt8((sbyte*)w);
}
