using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GateLoop.Runtime;

/// <summary>
/// The SIMD tier the host's vector loops run on: the widest vector the JIT accelerates on this machine, as the
/// runtime's switches leave it (<c>DOTNET_EnableAVX512=0</c>, <c>DOTNET_EnableAVX2=0</c>,
/// <c>DOTNET_EnableHWIntrinsic=0</c> turn tiers off).
/// </summary>
public enum SimdTier
{
    /// <summary>No vector acceleration: the 128-bit loops run in software.</summary>
    Scalar,

    /// <summary>128-bit vectors on x64 (SSE4).</summary>
    Sse,

    /// <summary>128-bit vectors on ARM64 (AdvSimd).</summary>
    Neon,

    /// <summary>256-bit vectors with FMA on x64.</summary>
    Avx2,

    /// <summary>512-bit vectors on x64.</summary>
    Avx512,
}

/// <summary>What the host's GEMM and reduced-precision products dispatch on.</summary>
public static class HostTier
{
    /// <summary>This machine's tier (fixed for the process: the JIT reads the switches at start-up).</summary>
    public static SimdTier Current { get; } =
        Vector512.IsHardwareAccelerated ? SimdTier.Avx512
        : Vector256.IsHardwareAccelerated ? SimdTier.Avx2
        : !Vector128.IsHardwareAccelerated ? SimdTier.Scalar
        : RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? SimdTier.Neon : SimdTier.Sse;

    /// <summary>The tier's name as <c>gateloop bench</c> prints it: avx512, avx2, sse, neon or scalar.</summary>
    public static string Name => Current.ToString().ToLowerInvariant();
}

/// <summary>The vector operations the host kernels need, so one loop body serves every tier and element type.</summary>
internal unsafe interface ISimd<T, TV> where T : unmanaged where TV : struct
{
    static abstract int Count { get; }
    static abstract TV Zero { get; }
    static abstract TV Load(T* p);
    static abstract void Store(T* p, TV v);
    static abstract TV Broadcast(T* p);
    static abstract TV Add(TV a, TV b);

    /// <summary>a·b + c, fused where the hardware has FMA (every AVX2, AVX-512 and ARM64 machine).</summary>
    static abstract TV MulAdd(TV a, TV b, TV c);

    /// <summary>Count adjacent bf16 values (the upper halves of fp32s) as fp32.</summary>
    static abstract TV WidenBf16(ushort* p);

    /// <summary>Count adjacent int8 values as fp32.</summary>
    static abstract TV WidenInt8(sbyte* p);
}

// typeof(T) tests below are JIT-time constants, so each instantiation keeps only its own branch. The widenings are
// used with T = float only; the 512- and 256-bit ones call the x64 instructions directly (one load-and-widen each),
// since those tiers exist only on x64, and the 128-bit ones are portable (NEON's ushll/sshll, SSE4's pmovzx/pmovsx).

internal readonly unsafe struct Simd512<T> : ISimd<T, Vector512<T>> where T : unmanaged
{
    public static int Count => Vector512<T>.Count;
    public static Vector512<T> Zero => Vector512<T>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> Load(T* p) => Vector512.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(T* p, Vector512<T> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> Broadcast(T* p) => Vector512.Create(*p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> Add(Vector512<T> a, Vector512<T> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> MulAdd(Vector512<T> a, Vector512<T> b, Vector512<T> c) => typeof(T) == typeof(float)
        ? Vector512.MultiplyAddEstimate(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
        : Vector512.MultiplyAddEstimate(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> WidenBf16(ushort* p) => (Avx512F.ConvertToVector512UInt32(Vector256.Load(p)) << 16).As<uint, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> WidenInt8(sbyte* p) => Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(p))).As<float, T>();
}

internal readonly unsafe struct Simd256<T> : ISimd<T, Vector256<T>> where T : unmanaged
{
    public static int Count => Vector256<T>.Count;
    public static Vector256<T> Zero => Vector256<T>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> Load(T* p) => Vector256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(T* p, Vector256<T> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> Broadcast(T* p) => Vector256.Create(*p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> Add(Vector256<T> a, Vector256<T> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> MulAdd(Vector256<T> a, Vector256<T> b, Vector256<T> c) => typeof(T) == typeof(float)
        ? Vector256.MultiplyAddEstimate(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
        : Vector256.MultiplyAddEstimate(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> WidenBf16(ushort* p) => (Avx2.ConvertToVector256Int32(p) << 16).As<int, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> WidenInt8(sbyte* p) => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(p)).As<float, T>();
}

/// <summary>128-bit vectors: ARM64, x64 without AVX2, and in software where nothing is accelerated.</summary>
internal readonly unsafe struct Simd128<T> : ISimd<T, Vector128<T>> where T : unmanaged
{
    public static int Count => Vector128<T>.Count;
    public static Vector128<T> Zero => Vector128<T>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<T> Load(T* p) => Vector128.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(T* p, Vector128<T> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<T> Broadcast(T* p) => Vector128.Create(*p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<T> Add(Vector128<T> a, Vector128<T> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> MulAdd(Vector128<T> a, Vector128<T> b, Vector128<T> c) => typeof(T) == typeof(float)
        ? Vector128.MultiplyAddEstimate(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
        : Vector128.MultiplyAddEstimate(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> WidenBf16(ushort* p) => (Vector128.WidenLower(Vector128.Create(Vector64.Load(p), default)) << 16).As<uint, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> WidenInt8(sbyte* p) =>
        Vector128.ConvertToSingle(Vector128.WidenLower(Vector128.WidenLower(Vector128.CreateScalar(*(int*)p).AsSByte()))).As<float, T>();
}
