using ILGPU;

namespace GateLoop.Tests.Shared;

/// <summary>
/// One kernel per construct the kernel-safety analyzer (GL0030) refuses, each written as a model kernel might.
/// The generator tests run the analyzer over this file and expect exactly the listed construct in each kernel;
/// the runtime tests compile each to PTX and expect its fingerprint there, which for most of them the PTX audit
/// also reports. Together they prove each check bites.
/// </summary>
public static class PtxProbes
{
    /// <summary>
    /// A probe kernel, the construct the analyzer names for it, a regex its PTX matches (showing the fault, where
    /// the PTX shows it), and whether <c>PtxAudit</c> reports that fingerprint.
    /// </summary>
    public static readonly (string Kernel, string Construct, string? Ptx, bool Audited)[] Expected =
    [
        (nameof(CopySign), "CopySign", @"copysign\.f32", true),
        (nameof(ConditionalInArithmetic), "an integer conditional converted to a floating type", @"selp\.b32\s+%f\d+, 0f00000001, 0f00000000", true),
        (nameof(ConditionalAsArgument), "an integer conditional converted to a floating type", @"0f00000001", true),
        (nameof(ConditionalCompound), "an integer conditional converted to a floating type", @"0f00000001", true),
        (nameof(ConditionalThroughCast), "an integer conditional converted to a floating type", @"0f00000001", true),
        (nameof(ConditionalInHelper), "an integer conditional converted to a floating type", @"0f00000001", true),
        (nameof(ConditionalDouble), "an integer conditional converted to a floating type", @"selp\.b64\s+%fd\d+, 0d0000000000000001", true),
        (nameof(BoolToFloat), "a bool converted to a floating type", @"0f00000001", true),
        (nameof(UnsignedToFloat), "an unsigned integer converted to a floating type", @"cvt\.rn\.f64\.u32", true),
        (nameof(FloatToNarrowInteger), "a floating value cast to sbyte, byte, short or ushort", @"cvt\.rzi\.u8\.f32", true),
        (nameof(Unsupported), "a math method ILGPU cannot compile for CUDA", @"\.extern \.func", true),
        // PTX atom.cas compares with its first operand and stores the second: C# asked to store 5 where 7 is.
        (nameof(CompareExchange), "Interlocked.CompareExchange", @"atom\.cas\.global\.b32\s+%r\d+, \[%rd\d+\], 5, 7;", false),
        // The value atom.add returns (the old one) is stored as it is, with no + 1 after it.
        (nameof(InterlockedResult), "the result of Interlocked.Increment, Decrement or Add", @"atom\.add\.global\.u32\s+(%r\d+), \[%rd\d+\], 1;\s+st\.global\.b32\s+\[%rd\d+\], \1;", false),
        // (ushort)s is sign-extended like a short: the PTX converts from s16 where C# has an unsigned type.
        (nameof(SignedToUnsigned), "a narrow signed integer cast to an unsigned type", @"cvt\.s32\.s16", false),
        // x / 32 becomes an arithmetic shift: right for x ≥ 0, rounding toward −∞ below.
        (nameof(SignedDivision), "a signed division by a power of two of a value not known to be non-negative", @"shr\.s32\s+%r\d+, %r\d+, 5;", false),
        (nameof(FloatMax), "Min or Max of floating-point values", @"max\.f32", true),
    ];

#pragma warning disable GL0030 // every probe holds the construct it proves the analyzer refuses
    public static void CopySign(Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<float> o) => o[i] = MathF.CopySign(x[i], y[i]);

    public static void ConditionalInArithmetic(Index1D i, ArrayView<float> x, ArrayView<int> t, ArrayView<float> o) => o[i] = x[i] - (i.X == t[i] ? 1 : 0);

    public static void ConditionalAsArgument(Index1D i, ArrayView<float> x, ArrayView<float> o) => o[i] = MathF.Exp(x[i] > 0 ? 1 : 0);

    public static void ConditionalCompound(Index1D i, ArrayView<float> x, ArrayView<float> o) => o[i] += x[i] > 0 ? 1 : 0;

    public static void ConditionalThroughCast(Index1D i, ArrayView<float> x, ArrayView<float> o) => o[i] = (float)(int)(x[i] > 0 ? 1 : 0);

    static float Hit(float v, float w) => v > w ? 1 : 0;

    public static void ConditionalInHelper(Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<float> o) => o[i] = Hit(x[i], y[i]);

    public static void ConditionalDouble(Index1D i, ArrayView<double> x, ArrayView<double> o) => o[i] = x[i] < 0 ? 0 : 1;

    public static void BoolToFloat(Index1D i, ArrayView<float> x, ArrayView<float> o) => o[i] = Convert.ToSingle(x[i] > 0);

    public static void UnsignedToFloat(Index1D i, ArrayView<uint> u, ArrayView<float> o) => o[i] = u[i];

    public static void FloatToNarrowInteger(Index1D i, ArrayView<float> x, ArrayView<byte> o) => o[i] = (byte)x[i];

    public static void Unsupported(Index1D i, ArrayView<float> x, ArrayView<float> o) => o[i] = MathF.Log2(x[i]);

    public static void CompareExchange(Index1D i, ArrayView<int> t) => Interlocked.CompareExchange(ref t[0], 5, 7);

    public static void InterlockedResult(Index1D i, ArrayView<int> t) => t[1 + i] = Interlocked.Increment(ref t[0]);

    public static void SignedToUnsigned(Index1D i, ArrayView<short> s, ArrayView<int> o) => o[i] = (ushort)s[i];

    public static void SignedDivision(Index1D i, ArrayView<int> x, ArrayView<int> o) => o[i] = x[i] / 32;

    public static void FloatMax(Index1D i, ArrayView<float> x, ArrayView<float> o) => o[i] = MathF.Max(x[i], 0f);
#pragma warning restore GL0030
}
