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

/// <summary>
/// A weight matrix W [rows × cols] (a Linear's [out, in]) in bf16 or int8 on the host, for the matrix–vector products
/// of generation, y = x·Wᵀ over a few rows of x: memory-bound, so the bytes read per product are what count. The
/// products widen the stored values to fp32 in registers and accumulate in fp32 (AVX-512 where the machine has it,
/// a scalar loop elsewhere), so they compute with exactly the values <see cref="Dequantize"/> gives.
/// </summary>
/// <remarks>
/// .NET 10 exposes VNNI dot products only as AvxVnni/AvxVnniInt8 (the VEX forms), which AVX-512-VNNI processors such
/// as AMD Zen 4 do not report; weights are widened instead, which keeps activations in fp32.
/// </remarks>
internal sealed unsafe class QuantizedMatrix
{
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

    /// <summary>Bytes one product reads: the stored weights and, for int8, the scales.</summary>
    public long Bytes => Format == WeightFormat.Bf16 ? 2L * Rows * Cols : (long)Rows * Cols + 4L * Rows;

    /// <summary>Stores <paramref name="w"/> (row-major [rows × cols]) in <paramref name="format"/> (bf16 or int8).</summary>
    public static QuantizedMatrix Create(ReadOnlySpan<float> w, int rows, int cols, WeightFormat format)
    {
        if (format == WeightFormat.Bf16)
        {
            var stored = new ushort[w.Length];
            for (int i = 0; i < w.Length; i++)
            {
                uint bits = BitConverter.SingleToUInt32Bits(w[i]);
                stored[i] = (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16); // round to nearest, ties to even
            }
            return new(format, rows, cols, stored, null, null);
        }
        if (format != WeightFormat.Int8) throw new ArgumentOutOfRangeException(nameof(format), format, "only bf16 and int8 are stored reduced");
        var q = new sbyte[w.Length];
        var scale = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            var row = w.Slice(r * cols, cols);
            float max = 0;
            foreach (float v in row) max = Math.Max(max, Math.Abs(v));
            scale[r] = max > 0 ? max / 127 : 1;
            for (int c = 0; c < cols; c++) q[r * cols + c] = (sbyte)Math.Clamp(MathF.Round(row[c] / scale[r]), -127, 127);
        }
        return new(format, rows, cols, null, q, scale);
    }

    /// <summary>The fp32 values the stored weights stand for, row-major.</summary>
    public void Dequantize(Span<float> w)
    {
        for (int r = 0; r < Rows; r++)
            for (int c = 0; c < Cols; c++)
            {
                int i = r * Cols + c;
                w[i] = bf16 is not null ? BitConverter.UInt32BitsToSingle((uint)bf16[i] << 16) : int8![i] * scales![r];
            }
    }

    /// <summary>
    /// y[m × Rows] = x[m × Cols]·Wᵀ + β·y over host memory; the output rows are spread over the cores when the
    /// matrix is large enough to pay for waking them.
    /// </summary>
    public void Multiply(int m, float* x, float beta, float* y)
    {
        int chunks = (long)Rows * Cols < 1 << 16 ? 1 : Math.Min(Rows, Environment.ProcessorCount * 4);
        if (chunks == 1) MultiplyRows(0, Rows, m, x, beta, y);
        else Parallel.For(0, chunks, c => MultiplyRows((int)((long)Rows * c / chunks), (int)((long)Rows * (c + 1) / chunks), m, x, beta, y));
    }

    void MultiplyRows(int from, int to, int m, float* x, float beta, float* y)
    {
        for (int j = from; j < to; j++)
            for (int r = 0; r < m; r++)
            {
                float dot = bf16 is not null ? DotBf16(j, x + (long)r * Cols) : DotInt8(j, x + (long)r * Cols) * scales![j];
                float* target = y + (long)r * Rows + j;
                *target = beta == 0 ? dot : dot + beta * *target;
            }
    }

    float DotBf16(int row, float* x)
    {
        fixed (ushort* stored = &bf16![(long)row * Cols])
        {
            int c = 0;
            float sum = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                Vector512<float> even = default, odd = default;
                for (; c + 32 <= Cols; c += 32)
                {
                    var w = Vector512.Load(stored + c);
                    even = Vector512.FusedMultiplyAdd(Widen(Vector512.WidenLower(w)), Vector512.Load(x + c), even);
                    odd = Vector512.FusedMultiplyAdd(Widen(Vector512.WidenUpper(w)), Vector512.Load(x + c + 16), odd);
                }
                sum = Vector512.Sum(even + odd);
            }
            for (; c < Cols; c++) sum += BitConverter.UInt32BitsToSingle((uint)stored[c] << 16) * x[c];
            return sum;
        }
    }

    // A bf16 is the upper half of the fp32 with the same bits.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Widen(Vector512<uint> halves) => Vector512.ShiftLeft(halves, 16).AsSingle();

    float DotInt8(int row, float* x)
    {
        fixed (sbyte* stored = &int8![(long)row * Cols])
        {
            int c = 0;
            float sum = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (; c + 64 <= Cols; c += 64)
                {
                    var w = Vector512.Load(stored + c);
                    Vector512<short> lo = Vector512.WidenLower(w), hi = Vector512.WidenUpper(w);
                    a0 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Vector512.WidenLower(lo)), Vector512.Load(x + c), a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Vector512.WidenUpper(lo)), Vector512.Load(x + c + 16), a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Vector512.WidenLower(hi)), Vector512.Load(x + c + 32), a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Vector512.WidenUpper(hi)), Vector512.Load(x + c + 48), a3);
                }
                sum = Vector512.Sum(a0 + a1 + a2 + a3);
            }
            for (; c < Cols; c++) sum += stored[c] * x[c];
            return sum;
        }
    }
}
