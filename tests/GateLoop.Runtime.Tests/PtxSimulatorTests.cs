using System.Runtime.InteropServices;
using GateLoop.Tests.Shared;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// The PTX simulator: each instruction family against the PTX ISA's semantics on hand-written PTX (where .NET
/// differs, the test says so), launches and their faults, the counters, and the H200's observations of 2026-11-30
/// reproduced from the PTX ILGPU emits: CopySign's swapped operands, the bool converted to float as 1.4e-45, and the
/// wrong first gradient norm of the kernels before the fix.
/// </summary>
public sealed class PtxSimulatorTests
{
    // A one-warp kernel: lane i reads a[i] into %rd10 and b[i] into %rd11 (also as %r10/%r11 and %f10/%f11, and
    // %fd10/%fd11 as doubles), runs the body, and stores %rd20 to o[i].
    static ulong[] Lanes(string body, ulong[] a, ulong[]? b = null)
    {
        string ptx = $$"""
            .version 8.0
            .target sm_80
            .address_size 64

            .visible .entry Kernel_Probe(
            	.param .align 8 .b8 _a_1[16],
            	.param .align 8 .b8 _b_2[16],
            	.param .align 8 .b8 _o_3[16]
            )
            {
            	.reg .pred	%p<8>;
            	.reg .b32	%r<32>;
            	.reg .b64	%rd<32>;
            	.reg .f32	%f<32>;
            	.reg .f64	%fd<32>;

            	ld.param.b64	%rd1, [_a_1];
            	ld.param.b64	%rd2, [_b_2];
            	ld.param.b64	%rd3, [_o_3];
            	mov.b32	%r1, %tid.x;
            	mul.wide.u32	%rd4, %r1, 8;
            	add.u64	%rd5, %rd1, %rd4;
            	ld.global.b64	%rd10, [%rd5];
            	add.u64	%rd5, %rd2, %rd4;
            	ld.global.b64	%rd11, [%rd5];
            	cvt.u32.u64	%r10, %rd10;
            	cvt.u32.u64	%r11, %rd11;
            	mov.b32	%f10, %r10;
            	mov.b32	%f11, %r11;
            	mov.b64	%fd10, %rd10;
            	mov.b64	%fd11, %rd11;
            	mov.b64	%rd20, 0;
            {{body}}
            	add.u64	%rd5, %rd3, %rd4;
            	st.global.b64	[%rd5], %rd20;
            	ret;
            }
            """;
        b ??= new ulong[a.Length];
        var o = new ulong[a.Length];
        var kernel = PtxKernel.Parse(ptx);
        Run(kernel, new(1), new(a.Length), [a, b, o]);
        return o;
    }

    // Launches with copies of the arrays in 256-byte aligned memory (as a GPU allocates) as the kernel's view
    // parameters (address, length), copied back.
    static unsafe LaunchCounters Run(PtxKernel kernel, PtxMachine.Dim3 grid, PtxMachine.Dim3 block, ulong[][] arrays)
    {
        var memory = arrays.Select(a => (nint)NativeMemory.AlignedAlloc((nuint)Math.Max(8, a.Length * 8), 256)).ToArray();
        try
        {
            var space = new byte[kernel.ParamBytes];
            var regions = new List<PtxMachine.Region>();
            for (int i = 0; i < arrays.Length; i++)
            {
                arrays[i].CopyTo(new Span<ulong>((void*)memory[i], arrays[i].Length));
                ulong address = (ulong)memory[i];
                BitConverter.TryWriteBytes(space.AsSpan(kernel.Params[i].Offset), address);
                BitConverter.TryWriteBytes(space.AsSpan(kernel.Params[i].Offset + 8), (long)arrays[i].Length);
                regions.Add(new(address, arrays[i].Length * 8L, $"'{(char)('a' + i)}'"));
            }
            try
            {
                return PtxMachine.Launch(kernel, grid, block, space, regions);
            }
            finally
            {
                for (int i = 0; i < arrays.Length; i++) new Span<ulong>((void*)memory[i], arrays[i].Length).CopyTo(arrays[i]);
            }
        }
        finally
        {
            foreach (var m in memory) NativeMemory.AlignedFree((void*)m);
        }
    }

    static ulong F(float v) => BitConverter.SingleToUInt32Bits(v);

    static float F(ulong bits) => BitConverter.UInt32BitsToSingle((uint)bits);

    static ulong I(int v) => (uint)v;

    static int I(ulong bits) => (int)(uint)bits;

    static ulong[] Of(params float[] v) => v.Select(F).ToArray();

    static ulong[] Of(params int[] v) => v.Select(I).ToArray();

    const string Store32 = "\tcvt.u64.u32\t%rd20, %r20;";
    const string StoreF = "\tmov.b32\t%r20, %f20;\n" + Store32;

    static int[] Ints(string body, int[] a, int[]? b = null) =>
        Lanes(body + "\n" + Store32, Of(a), b is null ? null : Of(b)).Select(I).ToArray();

    static float[] Floats(string body, float[] a, float[]? b = null) =>
        Lanes(body + "\n" + StoreF, Of(a), b is null ? null : Of(b)).Select(F).ToArray();

    [Fact]
    public void Signed_division_and_remainder_truncate_toward_zero_and_shifts_round_down()
    {
        int[] x = [-103, -3, 103, 0, int.MinValue, -1];
        Assert.Equal(x.Select(v => v / 32), Ints("\tdiv.s32\t%r20, %r10, 32;", x));
        Assert.Equal(x.Select(v => v % 32), Ints("\trem.s32\t%r20, %r10, 32;", x));
        // The arithmetic shift ILGPU writes for x / 32: floor, not truncation (-103 >> 5 is -4, -103 / 32 is -3).
        Assert.Equal(x.Select(v => v >> 5), Ints("\tshr.s32\t%r20, %r10, 5;", x));
        Assert.Equal(-4, Ints("\tshr.s32\t%r20, %r10, 5;", [-103])[0]);
        // MIN / -1 wraps (no exception on a GPU).
        Assert.Equal(int.MinValue, Ints("\tdiv.s32\t%r20, %r10, %r11;", [int.MinValue], [-1])[0]);
    }

    [Fact]
    public void Shift_amounts_past_the_width_clamp_and_integers_wrap()
    {
        Assert.Equal([0, 0], Ints("\tshl.b32\t%r20, %r10, %r11;", [1, -1], [32, 40]));
        Assert.Equal([0, 0], Ints("\tshr.u32\t%r20, %r10, %r11;", [-1, 5], [32, 99]));
        Assert.Equal([-1, 0], Ints("\tshr.s32\t%r20, %r10, %r11;", [-5, 5], [33, 33]));
        Assert.Equal([int.MinValue], Ints("\tadd.s32\t%r20, %r10, %r11;", [int.MaxValue], [1]));
        Assert.Equal([unchecked((int)0xFFFFFFFE)], Ints("\tmul.lo.s32\t%r20, %r10, %r11;", [int.MaxValue], [2]));
        Assert.Equal([(int)((long)int.MaxValue * int.MinValue >> 32)], Ints("\tmul.hi.s32\t%r20, %r10, %r11;", [int.MaxValue], [int.MinValue]));
        // mul.wide makes the whole 64-bit product of 32-bit operands, signed or not.
        Assert.Equal(unchecked((ulong)(-6L)), Lanes("\tmul.wide.s32\t%rd20, %r10, %r11;", Of(-2), Of(3))[0]);
        Assert.Equal(0xFFFFFFFE00000001UL, Lanes("\tmul.wide.u32\t%rd20, %r10, %r11;", Of(-1), Of(-1))[0]);
        Assert.Equal([7 * 3 + 5], Ints("\tmad.lo.s32\t%r20, %r10, %r11, 5;", [7], [3]));
        Assert.Equal([int.MinValue, 5], Ints("\tabs.s32\t%r20, %r10;", [int.MinValue, -5]));
        Assert.Equal([3, -7], Ints("\tmin.s32\t%r20, %r10, %r11;", [3, -7], [9, 2]));
        Assert.Equal([-1], Ints("\tmax.u32\t%r20, %r10, %r11;", [-1], [5])); // 0xFFFFFFFF is the larger unsigned
    }

    [Fact]
    public void Integer_conversions_extend_by_the_source_and_wrap_or_clamp()
    {
        Assert.Equal(unchecked((ulong)-5L), Lanes("\tcvt.s64.s32\t%rd20, %r10;", Of(-5))[0]);
        Assert.Equal(0xFFFFFFFBUL, Lanes("\tcvt.u64.u32\t%rd20, %r10;", Of(-5))[0]);
        Assert.Equal(0x23456789UL, Lanes("\tcvt.s32.s64\t%r20, %rd10;\n" + Store32, [0x123456789UL])[0]); // wraps
        Assert.Equal([-1, 127], Ints("\tcvt.s32.s8\t%r20, %r10;", [255, 127]));       // sign-extended from 8 bits
        Assert.Equal([127, -128], Ints("\tcvt.sat.s8.s32\t%r20, %r10;\n\tcvt.s32.s8\t%r20, %r20;", [300, -300]));
    }

    [Fact]
    public void Float_min_and_max_return_the_other_operand_of_a_nan_where_dotnet_returns_nan()
    {
        float nan = float.NaN;
        Assert.Equal([1f, 2f, 0f], Floats("\tmax.f32\t%f20, %f10, %f11;", [nan, 2f, -0f], [1f, nan, 0f]));
        Assert.Equal([1f, 2f, -0f], Floats("\tmin.f32\t%f20, %f10, %f11;", [nan, 2f, 0f], [1f, nan, -0f]));
        Assert.True(float.IsNaN(MathF.Max(nan, 1f)));                       // what a host computes
        Assert.True(float.IsNaN(Floats("\tmax.f32\t%f20, %f10, %f11;", [nan], [nan])[0]));
        Assert.True(float.IsNegative(Floats("\tmin.f32\t%f20, %f10, %f11;", [0f], [-0f])[0])); // -0 < +0
    }

    [Fact]
    public void Copysign_takes_the_sign_of_its_first_operand()
    {
        Assert.Equal([-2f, 3f], Floats("\tcopysign.f32\t%f20, %f10, %f11;", [-1f, 1f], [2f, -3f]));
    }

    [Fact]
    public void Float_arithmetic_rounds_as_written()
    {
        float third = 1f / 3; // rounds up: 0.333333343
        Assert.Equal([third], Floats("\tdiv.rn.f32\t%f20, %f10, %f11;", [1f], [3f]));
        Assert.Equal([MathF.BitDecrement(third)], Floats("\tdiv.rz.f32\t%f20, %f10, %f11;", [1f], [3f]));
        Assert.Equal([MathF.BitDecrement(third)], Floats("\tdiv.rm.f32\t%f20, %f10, %f11;", [1f], [3f]));
        Assert.Equal([third], Floats("\tdiv.rp.f32\t%f20, %f10, %f11;", [1f], [3f]));
        float tiny = MathF.ScaleB(1, -30);
        Assert.Equal(1f, Floats("\tadd.rn.f32\t%f20, %f10, %f11;", [1f], [tiny])[0]);
        Assert.Equal(MathF.BitIncrement(1f), Floats("\tadd.rp.f32\t%f20, %f10, %f11;", [1f], [tiny])[0]);
        Assert.Equal(1f, Floats("\tadd.rz.f32\t%f20, %f10, %f11;", [1f], [tiny])[0]);
        Assert.Equal(MathF.BitDecrement(-1f), Floats("\tsub.rm.f32\t%f20, %f10, %f11;", [-1f], [tiny])[0]);
        Assert.Equal(float.MaxValue, Floats("\tmul.rz.f32\t%f20, %f10, %f11;", [float.MaxValue], [2f])[0]);
        Assert.Equal(float.PositiveInfinity, Floats("\tmul.rn.f32\t%f20, %f10, %f11;", [float.MaxValue], [2f])[0]);
        // √2 lies between two floats: .rm and .rz give the lower, .rp the upper, whichever .rn picks.
        double root = Math.Sqrt(2);
        float below = (float)root > root ? MathF.BitDecrement((float)root) : (float)root;
        Assert.Equal(below, Floats("\tsqrt.rz.f32\t%f20, %f10;", [2f])[0]);
        Assert.Equal(below, Floats("\tsqrt.rm.f32\t%f20, %f10;", [2f])[0]);
        Assert.Equal(MathF.BitIncrement(below), Floats("\tsqrt.rp.f32\t%f20, %f10;", [2f])[0]);
        Assert.Equal(MathF.Sqrt(2), Floats("\tsqrt.rn.f32\t%f20, %f10;", [2f])[0]);
        Assert.Equal([1f, 0f, 0f], Floats("\tadd.sat.f32\t%f20, %f10, %f11;", [0.7f, -2f, float.NaN], [0.6f, 1f, 1f]));
        float sub = float.Epsilon * 4;
        Assert.Equal(0f, Floats("\tadd.ftz.f32\t%f20, %f10, %f11;", [sub], [sub])[0]); // subnormals flushed
        Assert.Equal(2 * sub, Floats("\tadd.f32\t%f20, %f10, %f11;", [sub], [sub])[0]);
        Assert.Equal([float.NegativeZero], Floats("\tneg.f32\t%f20, %f10;", [0f]));
    }

    [Fact]
    public void Approximate_functions_are_within_the_isa_bounds()
    {
        float[] x = [-3.5f, -1f, -0.1f, 0f, 0.5f, 2f, 3.1f];
        var ex2 = Floats("\tex2.approx.f32\t%f20, %f10;", x);
        var sin = Floats("\tsin.approx.f32\t%f20, %f10;", x);
        var cos = Floats("\tcos.approx.f32\t%f20, %f10;", x);
        var lg2 = Floats("\tabs.f32\t%f12, %f10;\n\tadd.f32\t%f12, %f12, 0f3F800000;\n\tlg2.approx.f32\t%f20, %f12;", x);
        for (int i = 0; i < x.Length; i++)
        {
            double ulp = MathF.BitIncrement(ex2[i]) - ex2[i];
            Assert.True(Math.Abs(ex2[i] - Math.Pow(2, x[i])) <= 2 * ulp, $"ex2({x[i]})");
            Assert.True(Math.Abs(sin[i] - Math.Sin(x[i])) <= Math.Pow(2, -20.9), $"sin({x[i]})");
            Assert.True(Math.Abs(cos[i] - Math.Cos(x[i])) <= Math.Pow(2, -20.9), $"cos({x[i]})");
            Assert.True(Math.Abs(lg2[i] - Math.Log2(Math.Abs(x[i]) + 1)) <= Math.Pow(2, -22.6), $"lg2({x[i]})");
        }
    }

    [Fact]
    public void Comparisons_are_ordered_or_unordered_as_named_and_selects_and_predicates_combine()
    {
        float nan = float.NaN;
        string compare(string cmp) => $"\tsetp.{cmp}.f32\t%p1, %f10, %f11;\n\tselp.b32\t%r20, 1, 0, %p1;";
        Assert.Equal([0, 1, 0], Ints(compare("lt"), Of(nan, 1f, 2f).Select(I).ToArray(), Of(1f, 2f, 1f).Select(I).ToArray()));
        Assert.Equal([1, 1, 0], Ints(compare("ltu"), Of(nan, 1f, 2f).Select(I).ToArray(), Of(1f, 2f, 1f).Select(I).ToArray()));
        Assert.Equal([0, 1], Ints(compare("ne"), Of(nan, 1f).Select(I).ToArray(), Of(1f, 2f).Select(I).ToArray()));
        Assert.Equal([1, 0], Ints(compare("nan"), Of(nan, 1f).Select(I).ToArray(), Of(1f, 2f).Select(I).ToArray()));
        // lo/hi compare unsigned: -1 is the largest.
        Assert.Equal([0, 1], Ints("\tsetp.lo.u32\t%p1, %r10, %r11;\n\tselp.b32\t%r20, 1, 0, %p1;", [-1, 1], [5, 5]));
        Assert.Equal([1, 1, 0], Ints("\tsetp.lt.s32\t%p1, %r10, 0;\n\tsetp.ge.or.s32\t%p2, %r11, 10, %p1;\n\tselp.b32\t%r20, 1, 0, %p2;", [-1, 1, 1], [0, 10, 9]));
        Assert.Equal([1, 0], Ints("\tsetp.eq.s32\t%p1, %r10, 3;\n\tnot.pred\t%p2, %p1;\n\t@%p2 bra\tL_1;\n\tmov.b32\t%r20, 1;\nL_1:", [3, 4]));
    }

    [Fact]
    public void Float_to_integer_conversions_clamp_and_map_nan_to_zero()
    {
        float[] x = [-3.7f, 2.5f, 3e9f, float.NaN, -3e9f, 3.5f];
        Assert.Equal([-3, 2, int.MaxValue, 0, int.MinValue, 3], Ints("\tcvt.rzi.s32.f32\t%r20, %f10;", x.Select(v => I(F(v))).ToArray()));
        Assert.Equal([-4, 2, int.MaxValue, 0, int.MinValue, 4], Ints("\tcvt.rni.s32.f32\t%r20, %f10;", x.Select(v => I(F(v))).ToArray()));
        Assert.Equal([-4f, 2f], Floats("\tcvt.rmi.f32.f32\t%f20, %f10;", [-3.7f, 2.5f]));
        Assert.Equal(F(16777216f), Lanes("\tcvt.rn.f32.s64\t%f20, %rd10;\n" + StoreF, [16777217UL])[0]); // ties to even
        Assert.Equal(F(0.1f), Lanes("\tcvt.rn.f32.f64\t%f20, %fd10;\n" + StoreF, [BitConverter.DoubleToUInt64Bits(0.1)])[0]);
        Assert.Equal(F(MathF.BitDecrement(0.1f)), Lanes("\tcvt.rz.f32.f64\t%f20, %fd10;\n" + StoreF, [BitConverter.DoubleToUInt64Bits(0.1)])[0]);
    }

    [Fact]
    public void A_diverged_warp_runs_both_paths_and_reconverges()
    {
        // Odd lanes take the branch; all lanes meet at L_2 and add 100.
        var result = Ints("""
            	and.b32	%r12, %r10, 1;
            	setp.eq.s32	%p1, %r12, 1;
            	@%p1 bra	L_1;
            	mul.lo.s32	%r20, %r10, 2;
            	bra.uni	L_2;
            L_1:
            	mul.lo.s32	%r20, %r10, 3;
            L_2:
            	add.s32	%r20, %r20, 100;
            """, Enumerable.Range(0, 32).ToArray());
        Assert.Equal(Enumerable.Range(0, 32).Select(i => (i % 2 == 1 ? 3 * i : 2 * i) + 100), result);
    }

    [Fact]
    public void Shuffles_read_the_lane_the_mode_names_within_the_segment_and_else_their_own()
    {
        int[] lanes = Enumerable.Range(0, 32).Select(i => 100 + i).ToArray();
        int[] Shuffle(string mode, int b, int c) => Ints($"\tshfl.sync.{mode}.b32\t%r20, %r10, {b}, {c}, 4294967295;", lanes);
        // bfly: lane ^ b; down: lane + b up to the segment's last lane (c = 31: the whole warp), else its own value.
        Assert.Equal(Enumerable.Range(0, 32).Select(i => 100 + (i ^ 5)), Shuffle("bfly", 5, 31));
        Assert.Equal(Enumerable.Range(0, 32).Select(i => 100 + (i + 3 < 32 ? i + 3 : i)), Shuffle("down", 3, 31));
        // up: lane − b from the segment's first lane (c = 0) on; idx: lane b of the lane's segment of 8 (c = 0x1807: segment mask 0x18, clamp 7).
        Assert.Equal(Enumerable.Range(0, 32).Select(i => 100 + (i >= 2 ? i - 2 : i)), Shuffle("up", 2, 0));
        Assert.Equal(Enumerable.Range(0, 32).Select(i => 100 + (i & ~7) + 3), Shuffle("idx", 3, 0x1807));
        // A float travels as its bits: a butterfly over the warp sums it in every lane alike.
        var sums = Floats(string.Concat(new[] { 16, 8, 4, 2, 1 }.Select(m =>
            $"\tshfl.sync.bfly.b32\t%f12, %f10, {m}, 31, 4294967295;\n\tadd.f32\t%f10, %f10, %f12;\n")) + "\tmov.f32\t%f20, %f10;",
            Enumerable.Range(0, 32).Select(i => 0.1f * i).ToArray());
        Assert.All(sums, v => Assert.Equal(BitConverter.SingleToUInt32Bits(sums[0]), BitConverter.SingleToUInt32Bits(v)));
        Assert.Equal(Enumerable.Range(0, 32).Sum(i => 0.1 * i), sums[0], 1e-4);
    }

    [Fact]
    public void A_shuffle_whose_member_mask_names_a_lane_that_has_exited_is_a_fault()
    {
        // Lanes 3… exit; the mask still names them.
        var exited = Assert.Throws<PtxFault>(() => Lanes("\tsetp.gt.u32\t%p1, %r1, 2;\n\t@%p1 ret;\n\tshfl.sync.bfly.b32\t%r20, %r10, 1, 31, 4294967295;", new ulong[32]));
        Assert.Contains("names lane 3, which has exited", exited.Message);
        // A partial warp: lanes 8… are not in the block at all.
        Assert.Contains("names lane 8", Assert.Throws<PtxFault>(() => Lanes("\tshfl.sync.down.b32\t%r20, %r10, 1, 31, 4294967295;", new ulong[8])).Message);
        // The mask of the lanes there is fine.
        Assert.Equal(Enumerable.Range(0, 8).Select(i => (ulong)(i ^ 1)), Lanes("\tshfl.sync.bfly.b32\t%r20, %r10, 1, 31, 255;\n\tcvt.u64.u32\t%rd20, %r20;",
            Enumerable.Range(0, 8).Select(i => (ulong)i).ToArray()));
    }

    [Fact]
    public void A_shuffle_waits_for_the_lanes_of_its_mask_that_took_a_detour_laid_out_after_it()
    {
        // Lane 0 branches to a block placed after the shuffle and comes back (as ILGPU lays out an if before a row
        // sum); the others reach the shuffle first and wait there for it, as sm_70 and later do.
        var sums = Ints("""
            	setp.eq.s32	%p1, %r1, 0;
            	@%p1 bra.uni	L_2;
            L_1:
            	shfl.sync.bfly.b32	%r20, %r10, 1, 31, 4294967295;
            	add.s32	%r20, %r20, %r10;
            	bra.uni	L_3;
            L_2:
            	add.s32	%r10, %r10, 1000;
            	bra.uni	L_1;
            L_3:
            """, Enumerable.Range(0, 32).ToArray());
        Assert.Equal(Enumerable.Range(0, 32).Select(i => i < 2 ? 1001 : 2 * i + (i % 2 == 0 ? 1 : -1)), sums);
    }

    [Fact]
    public void Lanes_at_two_shuffles_that_each_wait_for_the_other_are_a_fault()
    {
        var fault = Assert.Throws<PtxFault>(() => Ints("""
            	and.b32	%r12, %r10, 1;
            	setp.eq.s32	%p1, %r12, 1;
            	@%p1 bra.uni	L_1;
            	shfl.sync.bfly.b32	%r20, %r10, 1, 31, 4294967295;
            	bra.uni	L_2;
            L_1:
            	shfl.sync.bfly.b32	%r20, %r10, 2, 31, 4294967295;
            L_2:
            """, Enumerable.Range(0, 32).ToArray()));
        Assert.Contains("never get there", fault.Message);
    }

    [Fact]
    public void An_access_outside_every_buffer_names_the_kernel_the_line_and_the_thread()
    {
        var fault = Assert.Throws<PtxFault>(() => Lanes("\tadd.u64\t%rd5, %rd5, 8;\n\tld.global.b64\t%rd20, [%rd5];", new ulong[4]));
        Assert.Equal("Kernel_Probe", fault.Kernel);
        Assert.Contains("ld.global.b64", fault.Instruction);
        Assert.Contains("thread (3, 0, 0) of block (0, 0, 0)", fault.Message);
        Assert.Contains("outside every buffer of the launch (32 bytes into 'b', which holds 32)", fault.Message);
    }

    [Fact]
    public void A_barrier_that_not_every_thread_reaches_is_a_fault()
    {
        var fault = Assert.Throws<PtxFault>(() => Lanes("\tsetp.gt.u32\t%p1, %r1, 2;\n\t@%p1 ret;\n\tbar.sync\t0;", new ulong[64]));
        Assert.Contains("bar.sync waits for thread (3, 0, 0) of block (0, 0, 0), which has exited", fault.Message);
    }

    [Fact]
    public void What_the_machine_does_not_implement_is_refused_by_name()
    {
        var fault = Assert.Throws<PtxFault>(() => Lanes("\tpopc.b32\t%r20, %r10;", new ulong[1]));
        Assert.Contains("not implemented: the instruction popc.b32", fault.Message);
        Assert.Equal("Kernel_Probe", fault.Kernel);
        Assert.Contains("not implemented: the modifier .rnd", Assert.Throws<PtxFault>(() => Lanes("\tadd.rnd.f32\t%f20, %f10, %f11;", new ulong[1])).Message);
        Assert.Contains("not implemented: the register %clock", Assert.Throws<PtxFault>(() => Lanes("\tmov.b32\t%r20, %clock;", new ulong[1])).Message);
        Assert.Contains("division by zero", Assert.Throws<PtxFault>(() => Lanes("\tdiv.s32\t%r20, %r10, %r11;", new ulong[1])).Message);
    }

    [Fact]
    public void Counters_count_warp_instructions_and_the_sectors_each_access_touches()
    {
        // One warp: 32 consecutive 8-byte loads touch 8 sectors; 32 loads 256 bytes apart touch 32.
        var kernel = PtxKernel.Parse("""
            .visible .entry Kernel_Strided(
            	.param .align 8 .b8 _x_1[16],
            	.param .align 8 .b8 _o_2[16]
            )
            {
            	.reg .b32	%r<4>;
            	.reg .b64	%rd<16>;
            	ld.param.b64	%rd1, [_x_1];
            	ld.param.b64	%rd2, [_o_2];
            	mov.b32	%r1, %tid.x;
            	mul.wide.u32	%rd3, %r1, 8;
            	add.u64	%rd4, %rd1, %rd3;
            	ld.global.b64	%rd5, [%rd4];
            	mul.wide.u32	%rd6, %r1, 256;
            	add.u64	%rd7, %rd1, %rd6;
            	ld.global.b64	%rd8, [%rd7];
            	add.u64	%rd9, %rd5, %rd8;
            	add.u64	%rd10, %rd2, %rd3;
            	st.global.b64	[%rd10], %rd9;
            	ret;
            }
            """);
        var data = new ulong[32 * 32];
        var output = new ulong[32];
        var counts = Run(kernel, new(1), new(32), [data, output]);
        Assert.Equal(32, counts.Threads);
        Assert.Equal(8 + 32 + 8, counts.GlobalSectors); // a coalesced load, a strided load, a coalesced store
        Assert.Equal(3 * 32 * 8, counts.GlobalBytes);
        Assert.Equal(3, counts.GlobalAccesses);
        Assert.Equal(counts.LongestThread * 32, counts.ThreadInstructions);
        Assert.Equal(counts.TotalWarpInstructions, counts.LongestThread); // no divergence: one warp instruction per thread's
        Assert.Equal(5, counts.WarpInstructions[(int)InstructionClass.Memory]); // two parameter loads too
        Assert.Equal(1, counts.WarpInstructions[(int)InstructionClass.Control]);
    }

    // The H200's observations: the probes through cuda-sim give what the GPU gave, the host what .NET gives.

    static float[] OnDevice(string device, Action<Device, ArrayView<float>, ArrayView<float>, ArrayView<float>> launch, float[] x, float[] y)
    {
        using var d = Device.Create(device);
        using var bx = d.Allocate<float>(x.Length);
        using var by = d.Allocate<float>(y.Length);
        using var bo = d.Allocate<float>(x.Length);
        bx.CopyFromCPU(x);
        by.CopyFromCPU(y);
        launch(d, bx.View.AsContiguous(), by.View.AsContiguous(), bo.View.AsContiguous());
        return bo.GetAsArray1D();
    }

    [Fact]
    public void CopySign_on_cuda_sim_gives_what_the_h200_gave()
    {
        float[] x = [-2.5f, -1, -0.3f, 0, 0.3f, 1, 2.5f, 7], y = [1, -1, 2, -3, 0.5f, -0.5f, 4, -4];
        var gpu = OnDevice("cuda-sim", (d, a, b, o) => d.Launch(PtxProbes.CopySign, (_, _, _, _, _) => throw new InvalidOperationException(), x.Length, a, b, o), x, y);
        Assert.Equal([-1f, -1, -2, 3, 0.5f, 0.5f, 4, 4], gpu);
        Assert.Equal([2.5f, -1, 0.3f, -0f, 0.3f, -1, 2.5f, -7], x.Zip(y, MathF.CopySign));
    }

    [Fact]
    public void A_bool_converted_to_float_on_cuda_sim_is_the_bit_pattern_one()
    {
        float[] x = [-1, 2], y = [0, 0];
        var gpu = OnDevice("cuda-sim", (d, a, _, o) => d.Launch(PtxProbes.BoolToFloat, (_, _, _, _) => throw new InvalidOperationException(), x.Length, a, o), x, y);
        Assert.Equal(0f, gpu[0]);
        Assert.Equal(1.401E-45f, gpu[1]);
        Assert.Equal(1u, BitConverter.SingleToUInt32Bits(gpu[1]));
    }

    [Fact]
    public void A_signed_division_by_a_power_of_two_on_cuda_sim_rounds_toward_minus_infinity()
    {
        int[] x = [-103, -33, -32, -1, 0, 31, 103];
        using var d = Device.Create("cuda-sim");
        using var bx = d.Allocate<int>(x.Length);
        using var bo = d.Allocate<int>(x.Length);
        bx.CopyFromCPU(x);
        d.Launch(PtxProbes.SignedDivision, (_, _, _, _) => throw new InvalidOperationException(), x.Length, bx.View.AsContiguous(), bo.View.AsContiguous());
        Assert.Equal([-4, -2, -1, -1, 0, 0, 3], bo.GetAsArray1D());
        Assert.Equal([-3, -1, -1, 0, 0, 0, 3], x.Select(v => v / 32));
    }

    [Fact]
    public void Float_max_on_cuda_sim_drops_a_nan()
    {
        float[] x = [float.NaN, -1, 2], y = [0, 0, 0];
        var gpu = OnDevice("cuda-sim", (d, a, _, o) => d.Launch(PtxProbes.FloatMax, (_, _, _, _) => throw new InvalidOperationException(), x.Length, a, o), x, y);
        Assert.Equal([0f, 0, 2], gpu);
        Assert.True(float.IsNaN(MathF.Max(x[0], 0f)));
    }

    [Fact]
    public void Interlocked_compare_exchange_on_cuda_sim_swaps_the_comparand_and_the_value()
    {
        using var d = Device.Create("cuda-sim");
        using var t = d.Allocate<int>(1);
        t.CopyFromCPU([7]);
        // .NET: t == 7, so 5 is stored. PTX atom.cas compares with 5 and would store 7: nothing changes.
        d.Launch(PtxProbes.CompareExchange, (_, _, _) => throw new InvalidOperationException(), 1, t.View.AsContiguous());
        Assert.Equal(7, t.GetAsArray1D()[0]);
        int host = 7;
        Interlocked.CompareExchange(ref host, 5, 7);
        Assert.Equal(5, host);
    }

    // The warm-up step's gradient norm of `gateloop bench --model gateloop-tiny --batch 1 --grad-accum 1 --seq-len 1`.
    static double FirstGradientNorm(string device, Type? kernels)
    {
        using var d = Device.Create(device);
        if (kernels is not null) ((SimulatedCudaDevice)d).ReplaceKernels(kernels);
        using var net = new ShippedTiny(d);
        net.Initialize(0);
        var report = Benchmark.Model(net, "gateloop-tiny", new BenchOptions(Batch: 1, GradAccum: 1, SeqLen: 1, Steps: 1, Generate: 0), TextWriter.Null);
        return (double)report["grad_norm"]!;
    }

    [Fact]
    public void The_kernels_before_the_fix_give_the_h200s_wrong_gradient_norm_and_todays_the_hosts()
    {
        double host = FirstGradientNorm("cpu", null);
        Assert.Equal(9.818, host, 3);                                                   // as the host gave on 2026-11-30
        Assert.Equal(0.778, FirstGradientNorm("cuda-sim", typeof(UnfixedTinyKernels)), 3); // as the H200 gave
        Assert.Equal(host, FirstGradientNorm("cuda-sim", null), 4);
    }

    [Fact]
    public void Checked_against_the_host_a_faulty_kernel_is_named_with_the_instruction()
    {
        using var d = (SimulatedCudaDevice)Device.Create("cuda-sim");
        d.CompareWithHost = true;
        d.ReplaceKernels(typeof(UnfixedTinyKernels));
        using var net = new ShippedTiny(d);
        net.Initialize(0);
        var tokens = Enumerable.Range(0, 9).ToArray();
        var e = Assert.Throws<KernelMismatchException>(() => net.ForwardAccumulate(tokens, 1, 8, 1, 1));
        Assert.StartsWith("Kernel_BiasGeluForward on cuda-sim disagrees with the host entry in 'z': element ", e.Message);
        Assert.Matches(@"line \d+ 'copysign\.f32\s[^']+': copysign takes the sign from its first operand", e.Message);
    }
}

/// <summary>gateloop-tiny's declaration, as <c>gateloop bench --model gateloop-tiny</c> runs it.</summary>
[GateLoopTransformer(NumTokens = 256, Dim = 64, Depth = 2, PostLayerNorm = true)]
public partial class ShippedTiny;
