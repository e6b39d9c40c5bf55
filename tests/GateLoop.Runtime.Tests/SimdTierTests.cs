using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using GateLoop.Runtime;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// The tier the host kernels dispatch on, and the runtime switches CI uses to run the SIMD-sensitive tests on every
/// tier of one machine: each must really turn its tier off, or those runs would test the native tier again.
/// </summary>
public sealed class SimdTierTests
{
    static bool SwitchedOff(string name) => Environment.GetEnvironmentVariable("DOTNET_" + name) == "0";

    /// <summary>What the processor itself reports (CPUID leaf 7: EBX bit 5 is AVX2, bit 16 AVX-512F), switches aside.</summary>
    static (bool Avx2, bool Avx512) Hardware()
    {
        if (!X86Base.IsSupported) return (false, false);
        int ebx = X86Base.CpuId(7, 0).Ebx;
        return ((ebx & 1 << 5) != 0, (ebx & 1 << 16) != 0);
    }

    /// <summary>Each tier's vectors are accelerated, with the instructions its loops use, and no wider ones are.</summary>
    [Fact]
    public void The_tier_is_the_widest_vector_the_JIT_accelerates()
    {
        bool arm = RuntimeInformation.ProcessArchitecture == Architecture.Arm64;
        var (widest, instructions) = HostTier.Current switch
        {
            SimdTier.Avx512 => (Vector512.IsHardwareAccelerated, Avx512F.IsSupported),
            SimdTier.Avx2 => (Vector256.IsHardwareAccelerated && !Vector512.IsHardwareAccelerated, Avx2.IsSupported && Fma.IsSupported),
            SimdTier.Neon => (Vector128.IsHardwareAccelerated && !Vector256.IsHardwareAccelerated, arm && AdvSimd.IsSupported),
            SimdTier.Sse => (Vector128.IsHardwareAccelerated && !Vector256.IsHardwareAccelerated, !arm && Sse2.IsSupported),
            _ => (!Vector128.IsHardwareAccelerated, true),
        };
        Assert.True(widest, $"{HostTier.Name} is not the widest accelerated vector");
        Assert.True(instructions, $"{HostTier.Name} without its instructions");
        Assert.Equal(HostTier.Current.ToString().ToLowerInvariant(), HostTier.Name);
    }

    /// <summary>
    /// DOTNET_EnableAVX512=0 (.NET 10's name; the older DOTNET_EnableAVX512F is ignored) turns off AVX-512 alone:
    /// AVX2 stays where the processor has it, so the run tests the AVX2 tier.
    /// </summary>
    [Fact]
    public void EnableAVX512_0_leaves_the_AVX2_tier()
    {
        if (!SwitchedOff("EnableAVX512") || SwitchedOff("EnableAVX2") || SwitchedOff("EnableHWIntrinsic")) return;
        Assert.False(Vector512.IsHardwareAccelerated);
        Assert.False(Avx512F.IsSupported);
        if (Hardware().Avx2) Assert.Equal(SimdTier.Avx2, HostTier.Current);
    }

    [Fact]
    public void EnableAVX2_0_leaves_128_bit_vectors()
    {
        if (!SwitchedOff("EnableAVX2") || SwitchedOff("EnableHWIntrinsic")) return;
        Assert.False(Vector256.IsHardwareAccelerated);
        Assert.False(Avx2.IsSupported || Fma.IsSupported);
        Assert.Equal(SimdTier.Sse, HostTier.Current);
    }

    [Fact]
    public void EnableHWIntrinsic_0_leaves_scalar_code()
    {
        if (!SwitchedOff("EnableHWIntrinsic")) return;
        Assert.False(Vector128.IsHardwareAccelerated);
        Assert.Equal(SimdTier.Scalar, HostTier.Current);
    }

    /// <summary>Without switches an x64 processor with AVX2 runs at least the AVX2 tier.</summary>
    [Fact]
    public void Without_switches_AVX2_hardware_gets_at_least_the_AVX2_tier()
    {
        if (SwitchedOff("EnableAVX512") || SwitchedOff("EnableAVX2") || SwitchedOff("EnableHWIntrinsic")) return;
        if (Hardware().Avx2) Assert.True(HostTier.Current >= SimdTier.Avx2, $"tier {HostTier.Name} on a processor with AVX2");
    }

    /// <summary>
    /// The lane formulas run in the tier's widest registers (the 128-bit ones at sse, neon and scalar), or at the
    /// width GATELOOP_LANE_BITS sets, which CI uses to run the 512-bit code on a machine without AVX-512.
    /// </summary>
    [Fact]
    public void The_lane_formulas_run_at_the_tiers_width_or_the_one_set()
    {
        int expected = Environment.GetEnvironmentVariable("GATELOOP_LANE_BITS") is { Length: > 0 } set ? int.Parse(set)
            : HostTier.Current switch { SimdTier.Avx512 => 512, SimdTier.Avx2 => 256, _ => 128 };
        Assert.Equal(expected, HostSimd.LaneBits);
    }
}
