using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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

/// <summary>
/// A weight matrix W [rows × cols] (a Linear's [out, in]) in bf16 or int8 on the host, for the matrix–vector products
/// of generation, y = x·Wᵀ over a few rows of x: memory-bound, so the bytes read per product are what count.
/// </summary>
/// <remarks>
/// The values are stored in panels of 16 rows, column after column (the 16 weights of one column of a panel are
/// adjacent), so one AVX-512 multiply-add computes 16 outputs at once from one broadcast input: no horizontal sums,
/// one pass over the bytes. The stored values are widened to fp32 in registers and accumulated in fp32, so a
/// product computes with the values <see cref="Dequantize"/> gives (int8's row scale applied to the sum), and the
/// activations stay fp32.
/// Where AVX-512 is missing (<see cref="IsSupported"/>), callers multiply those values in fp32 instead. (.NET 10
/// exposes VNNI dot products only as AvxVnni/AvxVnniInt8, the VEX forms, which AVX-512-VNNI processors such as
/// AMD Zen 4 do not report.)
/// </remarks>
internal sealed unsafe class QuantizedMatrix
{
    /// <summary>Rows per panel: one AVX-512 register of fp32.</summary>
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

    /// <summary>Whether this machine runs the products (AVX-512).</summary>
    public static bool IsSupported => Avx512F.IsSupported;

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
                {
                    uint bits = BitConverter.SingleToUInt32Bits(w[r * cols + c]);
                    matrix.bf16![matrix.Index(r, c)] = (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16); // round to nearest, ties to even
                }
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
                w[r * Cols + c] = bf16 is not null ? BitConverter.UInt32BitsToSingle((uint)bf16[i] << 16) : int8![i] * scales![r];
            }
    }

    /// <summary>
    /// y[m × Rows] = x[m × Cols]·Wᵀ + β·y over host memory; the panels are spread over the cores when the matrix is
    /// large enough to pay for waking them.
    /// </summary>
    /// <exception cref="PlatformNotSupportedException">The machine lacks AVX-512 (<see cref="IsSupported"/>).</exception>
    public void Multiply(int m, float* x, float beta, float* y)
    {
        if (!IsSupported) throw new PlatformNotSupportedException("bf16 and int8 products need AVX-512; multiply the dequantized weights instead");
        int chunks = (long)Rows * Cols < 1 << 16 ? 1 : Math.Min(Panels, Environment.ProcessorCount * 4);
        if (chunks == 1) MultiplyPanels(0, Panels, m, x, beta, y);
        else Parallel.For(0, chunks, c => MultiplyPanels(Panels * c / chunks, Panels * (c + 1) / chunks, m, x, beta, y));
    }

    void MultiplyPanels(int from, int to, int m, float* x, float beta, float* y)
    {
        float* sums = stackalloc float[Lanes];
        for (int panel = from; panel < to; panel++)
            for (int r = 0; r < m; r++)
            {
                var sum = bf16 is not null ? PanelBf16(panel, x + (long)r * Cols) : PanelInt8(panel, x + (long)r * Cols);
                sum.Store(sums);
                float* target = y + (long)r * Rows + panel * Lanes;
                for (int lane = 0; lane < Lanes && panel * Lanes + lane < Rows; lane++)
                    target[lane] = beta == 0 ? sums[lane] : sums[lane] + beta * target[lane];
            }
    }

    Vector512<float> PanelBf16(int panel, float* x)
    {
        fixed (ushort* w = &bf16![(long)panel * Cols * Lanes]) return Panel<ushort, Bf16>(w, x, Cols);
    }

    Vector512<float> PanelInt8(int panel, float* x)
    {
        fixed (sbyte* w = &int8![(long)panel * Cols * Lanes])
        fixed (float* scale = &scales![panel * Lanes])
            return Panel<sbyte, Int8>(w, x, Cols) * Vector512.Load(scale);
    }

    /// <summary>
    /// Σ_c widen(w[c, 0…15])·x[c] over one panel's <paramref name="cols"/> columns; four accumulators over
    /// consecutive columns hide the multiply-add latency. <typeparamref name="TWiden"/> is a struct, so the JIT
    /// compiles one loop per format with its widening inlined.
    /// </summary>
    static Vector512<float> Panel<TStored, TWiden>(TStored* w, float* x, int cols)
        where TStored : unmanaged where TWiden : struct, IWiden<TStored>
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        float* end = x + cols;
        for (; x + 4 <= end; x += 4, w += 4 * Lanes)
        {
            a0 = Avx512F.FusedMultiplyAdd(TWiden.Widen(w), Vector512.Create(x[0]), a0);
            a1 = Avx512F.FusedMultiplyAdd(TWiden.Widen(w + Lanes), Vector512.Create(x[1]), a1);
            a2 = Avx512F.FusedMultiplyAdd(TWiden.Widen(w + 2 * Lanes), Vector512.Create(x[2]), a2);
            a3 = Avx512F.FusedMultiplyAdd(TWiden.Widen(w + 3 * Lanes), Vector512.Create(x[3]), a3);
        }
        for (; x < end; x++, w += Lanes) a0 = Avx512F.FusedMultiplyAdd(TWiden.Widen(w), Vector512.Create(*x), a0);
        return (a0 + a1) + (a2 + a3);
    }

    /// <summary>16 stored weights, adjacent, as fp32.</summary>
    interface IWiden<TStored> where TStored : unmanaged
    {
        static abstract Vector512<float> Widen(TStored* w);
    }

    // A bf16 is the upper half of the fp32 with the same bits.
    readonly struct Bf16 : IWiden<ushort>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Widen(ushort* w) => Vector512.ShiftLeft(Avx512F.ConvertToVector512UInt32(Vector256.Load(w)), 16).AsSingle();
    }

    readonly struct Int8 : IWiden<sbyte>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Widen(sbyte* w) => Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(w)));
    }
}
