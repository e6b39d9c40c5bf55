using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GateLoop.Runtime;

/// <summary>
/// A register of float lanes of one width, with the operators and functions the lane formulas use, so that the
/// host's SIMD code is written once and instantiated per width: <see cref="LaneVector512"/> (AVX-512),
/// <see cref="LaneVector256"/> (AVX2) and <see cref="LaneVector128"/> (SSE, NEON, and the software floor).
/// <see cref="HostSimd.LaneBits"/> says which one this machine runs. Each is one vector in a struct, so the JIT
/// keeps it in a register and inlines every member.
/// </summary>
/// <typeparam name="TV">The register type itself.</typeparam>
public unsafe interface ILaneVector<TV> where TV : struct, ILaneVector<TV>
{
    /// <summary>Lanes per register.</summary>
    static abstract int Count { get; }

    /// <summary>Every lane <paramref name="value"/>.</summary>
    static abstract TV Create(float value);

    /// <summary>The lanes at <paramref name="p"/>.</summary>
    static abstract TV Load(float* p);

    /// <summary>The lanes from <paramref name="p"/> on.</summary>
    static abstract TV Load(ref float p);

    /// <summary>Writes the lanes at <paramref name="p"/>.</summary>
    void Store(float* p);

    /// <summary>Writes the lanes from <paramref name="p"/> on.</summary>
    void Store(ref float p);

    /// <summary>Lane by lane.</summary>
    static abstract TV operator +(TV a, TV b);

    /// <summary>Lane by lane.</summary>
    static abstract TV operator -(TV a, TV b);

    /// <summary>Lane by lane.</summary>
    static abstract TV operator *(TV a, TV b);

    /// <summary>Lane by lane.</summary>
    static abstract TV operator /(TV a, TV b);

    /// <summary>Lane by lane.</summary>
    static abstract TV operator -(TV a);

    /// <summary>Lane by lane.</summary>
    static abstract TV Abs(TV x);

    /// <summary>Lane by lane.</summary>
    static abstract TV Sqrt(TV x);

    /// <summary>Lane by lane.</summary>
    static abstract TV Min(TV a, TV b);

    /// <summary>Lane by lane.</summary>
    static abstract TV Max(TV a, TV b);

    /// <summary>Each lane rounded to the nearest integer (ties to even).</summary>
    static abstract TV Round(TV x);

    /// <summary>a·b + c with one rounding.</summary>
    static abstract TV FusedMultiplyAdd(TV a, TV b, TV c);

    /// <summary>2^n for lanes holding integers n in [−126, 127], written into the exponent bits.</summary>
    static abstract TV Pow2(TV n);

    /// <summary>a &lt; b ? ifLess : otherwise, lane by lane.</summary>
    static abstract TV IfLess(TV a, TV b, TV ifLess, TV otherwise);

    /// <summary>x == 0 ? ifZero : otherwise, lane by lane.</summary>
    static abstract TV IfZero(TV x, TV ifZero, TV otherwise);

    /// <summary>Over interleaved complex pairs (re, im): x + y of each pair, in both of its lanes.</summary>
    static abstract TV PairSum(TV v);

    /// <summary>Over interleaved complex pairs: the real lanes (even) of <paramref name="re"/>, the imaginary lanes (odd) of <paramref name="im"/>.</summary>
    static abstract TV Pair(TV re, TV im);

    /// <summary>The sum of the lanes.</summary>
    static abstract float Sum(TV v);
}

// The three widths, member for member: each is its width's System.Runtime.Intrinsics call, documented on the
// interface. The pair lanes' index vectors are spelled out per width.
#pragma warning disable CS1591

/// <summary>512-bit lanes (16 floats).</summary>
public readonly unsafe struct LaneVector512 : ILaneVector<LaneVector512>
{
    readonly Vector512<float> v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)] LaneVector512(Vector512<float> v) => this.v = v;

    static readonly Vector512<int> SwapPairs = Vector512.Create(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    static readonly Vector512<float> RealMask = Vector512.Create(-1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0).AsSingle();

    public static int Count => Vector512<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 Create(float value) => new(Vector512.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 Load(float* p) => new(Vector512.Load(p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 Load(ref float p) => new(Vector512.LoadUnsafe(ref p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public void Store(float* p) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public void Store(ref float p) => v.StoreUnsafe(ref p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 operator +(LaneVector512 a, LaneVector512 b) => new(a.v + b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 operator -(LaneVector512 a, LaneVector512 b) => new(a.v - b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 operator *(LaneVector512 a, LaneVector512 b) => new(a.v * b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 operator /(LaneVector512 a, LaneVector512 b) => new(a.v / b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 operator -(LaneVector512 a) => new(-a.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 Abs(LaneVector512 x) => new(Vector512.Abs(x.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 Sqrt(LaneVector512 x) => new(Vector512.Sqrt(x.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 Min(LaneVector512 a, LaneVector512 b) => new(Vector512.Min(a.v, b.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 Max(LaneVector512 a, LaneVector512 b) => new(Vector512.Max(a.v, b.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 Round(LaneVector512 x) => new(Vector512.Round(x.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 FusedMultiplyAdd(LaneVector512 a, LaneVector512 b, LaneVector512 c) => new(Vector512.FusedMultiplyAdd(a.v, b.v, c.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 Pow2(LaneVector512 n) => new((Vector512.ConvertToInt32(n.v) + Vector512.Create(127) << 23).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 IfLess(LaneVector512 a, LaneVector512 b, LaneVector512 ifLess, LaneVector512 otherwise) => new(Vector512.ConditionalSelect(Vector512.LessThan(a.v, b.v), ifLess.v, otherwise.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 IfZero(LaneVector512 x, LaneVector512 ifZero, LaneVector512 otherwise) => new(Vector512.ConditionalSelect(Vector512.Equals(x.v, Vector512<float>.Zero), ifZero.v, otherwise.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 PairSum(LaneVector512 x) => new(x.v + Vector512.Shuffle(x.v, SwapPairs));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector512 Pair(LaneVector512 re, LaneVector512 im) => new(Vector512.ConditionalSelect(RealMask, re.v, im.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(LaneVector512 x) => Vector512.Sum(x.v);
}

/// <summary>256-bit lanes (8 floats).</summary>
public readonly unsafe struct LaneVector256 : ILaneVector<LaneVector256>
{
    readonly Vector256<float> v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)] internal LaneVector256(Vector256<float> v) => this.v = v;

    /// <summary>The register, for the host code that shuffles lanes of this width (the complex scans).</summary>
    internal Vector256<float> Value => v;

    static readonly Vector256<int> SwapPairs = Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6);
    static readonly Vector256<float> RealMask = Vector256.Create(-1, 0, -1, 0, -1, 0, -1, 0).AsSingle();

    public static int Count => Vector256<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 Create(float value) => new(Vector256.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 Load(float* p) => new(Vector256.Load(p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 Load(ref float p) => new(Vector256.LoadUnsafe(ref p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public void Store(float* p) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public void Store(ref float p) => v.StoreUnsafe(ref p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 operator +(LaneVector256 a, LaneVector256 b) => new(a.v + b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 operator -(LaneVector256 a, LaneVector256 b) => new(a.v - b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 operator *(LaneVector256 a, LaneVector256 b) => new(a.v * b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 operator /(LaneVector256 a, LaneVector256 b) => new(a.v / b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 operator -(LaneVector256 a) => new(-a.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 Abs(LaneVector256 x) => new(Vector256.Abs(x.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 Sqrt(LaneVector256 x) => new(Vector256.Sqrt(x.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 Min(LaneVector256 a, LaneVector256 b) => new(Vector256.Min(a.v, b.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 Max(LaneVector256 a, LaneVector256 b) => new(Vector256.Max(a.v, b.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 Round(LaneVector256 x) => new(Vector256.Round(x.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 FusedMultiplyAdd(LaneVector256 a, LaneVector256 b, LaneVector256 c) => new(Vector256.FusedMultiplyAdd(a.v, b.v, c.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 Pow2(LaneVector256 n) => new((Vector256.ConvertToInt32(n.v) + Vector256.Create(127) << 23).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 IfLess(LaneVector256 a, LaneVector256 b, LaneVector256 ifLess, LaneVector256 otherwise) => new(Vector256.ConditionalSelect(Vector256.LessThan(a.v, b.v), ifLess.v, otherwise.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 IfZero(LaneVector256 x, LaneVector256 ifZero, LaneVector256 otherwise) => new(Vector256.ConditionalSelect(Vector256.Equals(x.v, Vector256<float>.Zero), ifZero.v, otherwise.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 PairSum(LaneVector256 x) => new(x.v + Vector256.Shuffle(x.v, SwapPairs));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector256 Pair(LaneVector256 re, LaneVector256 im) => new(Vector256.ConditionalSelect(RealMask, re.v, im.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(LaneVector256 x) => Vector256.Sum(x.v);
}

/// <summary>128-bit lanes (4 floats).</summary>
public readonly unsafe struct LaneVector128 : ILaneVector<LaneVector128>
{
    readonly Vector128<float> v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)] LaneVector128(Vector128<float> v) => this.v = v;

    static readonly Vector128<int> SwapPairs = Vector128.Create(1, 0, 3, 2);
    static readonly Vector128<float> RealMask = Vector128.Create(-1, 0, -1, 0).AsSingle();

    public static int Count => Vector128<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 Create(float value) => new(Vector128.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 Load(float* p) => new(Vector128.Load(p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 Load(ref float p) => new(Vector128.LoadUnsafe(ref p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public void Store(float* p) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public void Store(ref float p) => v.StoreUnsafe(ref p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 operator +(LaneVector128 a, LaneVector128 b) => new(a.v + b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 operator -(LaneVector128 a, LaneVector128 b) => new(a.v - b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 operator *(LaneVector128 a, LaneVector128 b) => new(a.v * b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 operator /(LaneVector128 a, LaneVector128 b) => new(a.v / b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 operator -(LaneVector128 a) => new(-a.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 Abs(LaneVector128 x) => new(Vector128.Abs(x.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 Sqrt(LaneVector128 x) => new(Vector128.Sqrt(x.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 Min(LaneVector128 a, LaneVector128 b) => new(Vector128.Min(a.v, b.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 Max(LaneVector128 a, LaneVector128 b) => new(Vector128.Max(a.v, b.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 Round(LaneVector128 x) => new(Vector128.Round(x.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 FusedMultiplyAdd(LaneVector128 a, LaneVector128 b, LaneVector128 c) => new(Vector128.FusedMultiplyAdd(a.v, b.v, c.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 Pow2(LaneVector128 n) => new((Vector128.ConvertToInt32(n.v) + Vector128.Create(127) << 23).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 IfLess(LaneVector128 a, LaneVector128 b, LaneVector128 ifLess, LaneVector128 otherwise) => new(Vector128.ConditionalSelect(Vector128.LessThan(a.v, b.v), ifLess.v, otherwise.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 IfZero(LaneVector128 x, LaneVector128 ifZero, LaneVector128 otherwise) => new(Vector128.ConditionalSelect(Vector128.Equals(x.v, Vector128<float>.Zero), ifZero.v, otherwise.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 PairSum(LaneVector128 x) => new(x.v + Vector128.Shuffle(x.v, SwapPairs));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static LaneVector128 Pair(LaneVector128 re, LaneVector128 im) => new(Vector128.ConditionalSelect(RealMask, re.v, im.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(LaneVector128 x) => Vector128.Sum(x.v);
}
#pragma warning restore CS1591
