using System.Runtime.InteropServices;
using GateLoop.Tests.Shared;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// bf16 GEMM inputs (<c>train --precision bf16</c>): the rounding against a reference computed in double, on the host
/// and in the PTX of the GPU's rounding kernels; a GEMM on cuda-sim and on cpu that rounds its inputs and nothing
/// else; the cublasGemmEx call's arguments, checked against CUDA's values and by computing what cuBLAS would compute
/// from them. (The GEMM shapes and transposes against double are <see cref="GemmTests"/>' bf16 cases.) A plan for bf16
/// products keeps the activations only products read in 16 bits, and trains to the same numbers as products that round
/// them on reading.
/// </summary>
public sealed unsafe class MixedPrecisionTests
{
    /// <summary>
    /// Round to nearest, ties to even, on a bf16 grid computed in double: 7 stored mantissa bits below the leading one,
    /// a spacing of 2^(e−7) for |x| in [2^e, 2^(e+1)) and 2^−133 below 2^−126 (subnormals); past the largest finite bf16
    /// by half a spacing or more, infinity. Nothing here is the bit trick under test.
    /// </summary>
    static double Reference(float x)
    {
        if (float.IsNaN(x) || float.IsInfinity(x) || x == 0) return x;
        double v = x, spacing = Math.ScaleB(1.0, Math.Max(Math.ILogB(v), -126) - 7);
        double rounded = Math.Round(v / spacing, MidpointRounding.ToEven) * spacing;
        return Math.Abs(rounded) >= Math.ScaleB(1.0, 128) ? double.CopySign(double.PositiveInfinity, v) : rounded;
    }

    static uint Bits(float x) => BitConverter.SingleToUInt32Bits(x);

    static float Float(uint bits) => BitConverter.UInt32BitsToSingle(bits);

    /// <summary>Every kind of value: ties on both sides of even, at the top and bottom of the range, subnormals, NaNs, then random bit patterns.</summary>
    static float[] Inputs()
    {
        float maxBf16 = Float(0x7F7F0000);
        var special = new List<float>
        {
            0f, -0f, 1f, -1f, 1f + 1f / 256, 1f + 3f / 256, 1f + 1f / 256 + 1f / 65536, 1f + 1f / 256 - 1f / 65536, -(1f + 3f / 256),
            maxBf16, Float(0x7F7F7FFF), Float(0x7F7F8000), Float(0x7F7FFFFF), float.MaxValue, -float.MaxValue, float.PositiveInfinity,
            float.NegativeInfinity, float.NaN, Float(0x7F800001), Float(0xFF800001), Float(0x7FFFFFFF), Float(0x7FC00000),
            float.Epsilon, Float(0x00008000), Float(0x00018000), Float(0x00007FFF), Float(0x007FFFFF), Float(0x00800000), Float(0x807F8000),
        };
        var random = new Random(20);
        return [.. special, .. Enumerable.Range(0, 1 << 16).Select(_ => Float((uint)random.NextInt64(0, 1L << 32)))];
    }

    static void AssertRounded(float input, uint got, string what)
    {
        double expected = Reference(input);
        if (double.IsNaN(expected))
            Assert.True(float.IsNaN(Float(got)), $"{what}: NaN 0x{Bits(input):X8} became 0x{got:X8}");
        else
            Assert.True(Bits((float)expected) == got, $"{what}: 0x{Bits(input):X8} ({input:R}) became 0x{got:X8} ({Float(got):R}), expected {expected:R}");
    }

    [Fact]
    public void The_host_rounds_every_kind_of_value_to_nearest_even()
    {
        foreach (float x in Inputs())
        {
            AssertRounded(x, Bits(Bf16.Round(x)), "Round");
            AssertRounded(x, (uint)Bf16.FromSingle(x) << 16, "FromSingle");
            Assert.Equal(Bits(Bf16.Round(x)), Bits(Bf16.ToSingle(Bf16.FromSingle(x))));
        }
    }

    /// <summary>The two rounding kernels a GPU runs before its bf16 GEMM, as ILGPU compiles them for sm_90, executed by the PTX simulator.</summary>
    [Fact]
    public void The_gpu_rounding_kernels_round_every_kind_of_value_in_the_ptx_simulator()
    {
        var inputs = Inputs();
        using var compiler = new PtxCompiler();
        var rounded = Simulate<float>(compiler, IlgpuGemm.RoundToBf16Method, inputs);
        var narrowed = Simulate<ushort>(compiler, IlgpuGemm.NarrowToBf16Method, inputs);
        for (int i = 0; i < inputs.Length; i++)
        {
            AssertRounded(inputs[i], Bits(rounded[i]), "RoundToBf16 on cuda-sim");
            AssertRounded(inputs[i], (uint)narrowed[i] << 16, "NarrowToBf16 on cuda-sim");
        }
    }

    // One launch of an explicitly grouped kernel (src, dst) over src, in groups of 256, with the parameter space ILGPU's
    // launcher writes: each view as its address and length.
    static TOut[] Simulate<TOut>(PtxCompiler compiler, System.Reflection.MethodInfo method, float[] src) where TOut : unmanaged
    {
        var kernel = PtxKernel.Parse(compiler.CompileGrouped(method));
        var dst = new TOut[src.Length];
        fixed (float* s = src)
        fixed (TOut* d = dst)
        {
            var space = new byte[kernel.ParamBytes];
            var views = new (ulong Address, long Length, long Bytes)[] { ((ulong)s, src.Length, src.Length * 4L), ((ulong)d, dst.Length, dst.Length * (long)sizeof(TOut)) };
            for (int i = 0; i < views.Length; i++)
            {
                BitConverter.TryWriteBytes(space.AsSpan(kernel.Params[i].Offset), views[i].Address);
                BitConverter.TryWriteBytes(space.AsSpan(kernel.Params[i].Offset + 8), views[i].Length);
            }
            PtxMachine.Launch(kernel, new((src.Length + 255) / 256), new(256), space,
                [new(views[0].Address, views[0].Bytes, "'src'"), new(views[1].Address, views[1].Bytes, "'dst'")]);
        }
        return dst;
    }

    /// <summary>
    /// On cuda-sim a bf16 GEMM runs the rounding kernel and the tiled kernel in PTX: times the identity it gives
    /// exactly the host's rounding of A (one exact product per element), and a random product is the double sum of the
    /// rounded operands to fp32 accuracy. The same on cpu; and column sums stay exact on both.
    /// </summary>
    [Theory]
    [InlineData("cuda-sim")]
    [InlineData("cpu")]
    public void A_bf16_gemm_on_a_device_rounds_its_inputs_and_column_sums_stay_fp32(string name)
    {
        using var device = Device.Create(name);
        device.GemmPrecision = GemmPrecision.Bf16;
        const int m = 7, k = 40;
        var random = new Random(3);
        // Finite values of every magnitude, subnormals and ties included (infinities times the identity's zeros would be NaN).
        var a = Inputs().Where(float.IsFinite).Where(v => Math.Abs(v) < 1e30f).Take(m * k).ToArray();
        var identity = new float[k * k];
        for (int i = 0; i < k; i++) identity[i * k + i] = 1;
        using var da = device.Allocate<float>(a.Length);
        using var db = device.Allocate<float>(identity.Length);
        using var dc = device.Allocate<float>(m * k);
        da.CopyFromCPU(a);
        db.CopyFromCPU(identity);
        device.Gemm(false, false, m, k, k, 1f, da.View, db.View, 0f, dc.View);
        var c = dc.GetAsArray1D();
        // Compared as values: a sum that starts at +0 turns −0 into +0.
        for (int i = 0; i < a.Length; i++) Assert.True(Bf16.Round(a[i]) == c[i], $"{name}: A[{i}] = {a[i]:R} times I gave {c[i]:R}, not {Bf16.Round(a[i]):R}");
        if (device is SimulatedCudaDevice simulated) Assert.True(simulated.Counters["RoundToBf16"].Launches == 2, "the rounding kernel did not run in the simulator for A and B");

        var problem = new GemmTests.Problem<float>(true, false, 17, 13, 21, pad: 0, bf16Inputs: true);
        using var pa = device.Allocate<float>(problem.A.Length);
        using var pb = device.Allocate<float>(problem.B.Length);
        using var pc = device.Allocate<float>(17 * 13);
        pa.CopyFromCPU(problem.A);
        pb.CopyFromCPU(problem.B);
        device.Gemm(true, false, 17, 13, 21, 1.5f, pa.View, pb.View, 0f, pc.View);
        var product = pc.GetAsArray1D();
        problem.AssertClose(product, problem.Expected(1.5, 0, product), $"{name} {problem}");
        problem.AssertRoundingShows(product, 1.5, 0);

        // Bias gradients: Σ over rows of values bf16 cannot hold, exactly as with fp32 GEMMs.
        var rows = Enumerable.Range(0, 5 * 3).Select(_ => 1 + (float)random.NextDouble() / 1000).ToArray();
        using var dm = device.Allocate<float>(rows.Length);
        using var sum = device.Allocate<float>(3);
        dm.CopyFromCPU(rows);
        device.ColumnSum<float>(5, 3, dm.View, sum.View);
        var sums = sum.GetAsArray1D();
        for (int j = 0; j < 3; j++)
        {
            double exact = Enumerable.Range(0, 5).Sum(r => (double)rows[r * 3 + j]);
            Assert.True(Math.Abs(sums[j] - exact) < 1e-6, $"{name}: column sum {j} is {sums[j]:R}, exactly {exact:R}");
        }
    }

    /// <summary>The enum values cublasGemmEx is called with, as CUDA's headers define them (cublas_api.h, library_types.h).</summary>
    [Fact]
    public void The_cublasGemmEx_constants_are_the_headers_values()
    {
        Assert.Equal((0, 1), (GemmExArguments.OpN, GemmExArguments.OpT));             // CUBLAS_OP_N, CUBLAS_OP_T
        Assert.Equal((0, 14), (GemmExArguments.Fp32, GemmExArguments.Bf16));          // CUDA_R_32F, CUDA_R_16BF
        Assert.Equal(68, GemmExArguments.Compute32F);                                  // CUBLAS_COMPUTE_32F
        Assert.Equal(-1, GemmExArguments.GemmDefault);                                 // CUBLAS_GEMM_DEFAULT
        // The binding's function pointer takes them as the C prototype's 19 arguments: handle, 5 ints, alpha, A, Atype,
        // lda, B, Btype, ldb, beta, C, Ctype, ldc, computeType, algo.
        var field = typeof(CuBlasLibrary).GetField("gemmEx", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!;
        var signature = field.FieldType.GetFunctionPointerParameterTypes().Select(t => t.Name);
        Assert.Equal(["IntPtr", "Int32", "Int32", "Int32", "Int32", "Int32", "Single*", "IntPtr", "Int32", "Int32", "IntPtr", "Int32", "Int32",
            "Single*", "IntPtr", "Int32", "Int32", "Int32", "Int32"], signature);
        Assert.Equal(typeof(int), field.FieldType.GetFunctionPointerReturnType());
    }

    /// <summary>
    /// What cuBLAS computes from the arguments of <see cref="GemmExArguments.RowMajorBf16"/>, by its column-major
    /// definition (element (i, j) of a matrix with leading dimension ld at i + j·ld; op T transposes), with the views
    /// as the binding passes them (cuBLAS's A is our B), equals our row-major product in every transpose and with
    /// padded leading dimensions.
    /// </summary>
    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void The_cublasGemmEx_arguments_compute_the_row_major_product(bool transA, bool transB)
    {
        var p = new GemmTests.Problem<float>(transA, transB, 9, 5, 7, pad: 2, bf16Inputs: true);
        var call = GemmExArguments.RowMajorBf16(transA, transB, p.M, p.N, p.K, p.Lda, p.Ldb, p.Ldc);
        Assert.Equal((GemmExArguments.Bf16, GemmExArguments.Bf16, GemmExArguments.Fp32, GemmExArguments.Compute32F, GemmExArguments.GemmDefault),
            (call.AType, call.BType, call.CType, call.ComputeType, call.Algo));
        ushort[] first = p.B.Select(Bf16.FromSingle).ToArray(), second = p.A.Select(Bf16.FromSingle).ToArray();
        var c = p.NewC(0);
        double Op(ushort[] x, int trans, int ld, int row, int col) => Bf16.ToSingle(trans == GemmExArguments.OpN ? x[row + col * ld] : x[col + row * ld]);
        for (int i = 0; i < call.M; i++)
            for (int j = 0; j < call.N; j++)
            {
                double sum = 0;
                for (int q = 0; q < call.K; q++) sum += Op(first, call.TransA, call.Lda, i, q) * Op(second, call.TransB, call.Ldb, q, j);
                c[i + j * call.Ldc] = (float)(1.5 * sum);
            }
        p.AssertClose(c, p.Expected(1.5, 0, c), $"cublasGemmEx as called for {p}");
    }

    /// <summary>The kernel that widens a kept bf16 copy for the tiled GEMM gives back exactly the fp32 each 16 bits stand for.</summary>
    [Fact]
    public void The_gpu_widening_kernel_gives_the_values_a_bf16_copy_stands_for_in_the_ptx_simulator()
    {
        var bits = Enumerable.Range(0, 1 << 16).Select(i => (ushort)i).ToArray();
        using var compiler = new PtxCompiler();
        var kernel = PtxKernel.Parse(compiler.CompileGrouped(IlgpuGemm.WidenBf16Method));
        var wide = new float[bits.Length];
        fixed (ushort* s = bits)
        fixed (float* d = wide)
        {
            var space = new byte[kernel.ParamBytes];
            var views = new (ulong Address, long Length)[] { ((ulong)s, bits.Length), ((ulong)d, wide.Length) };
            for (int i = 0; i < views.Length; i++)
            {
                BitConverter.TryWriteBytes(space.AsSpan(kernel.Params[i].Offset), views[i].Address);
                BitConverter.TryWriteBytes(space.AsSpan(kernel.Params[i].Offset + 8), views[i].Length);
            }
            PtxMachine.Launch(kernel, new(bits.Length / 256), new(256), space,
                [new(views[0].Address, bits.Length * 2L, "'src'"), new(views[1].Address, wide.Length * 4L, "'dst'")]);
        }
        for (int i = 0; i < bits.Length; i++) Assert.Equal((uint)bits[i] << 16, Bits(wide[i]));
    }

    /// <summary>
    /// Under bf16 products the plan holds the GELU outputs and the gated mixer outputs (read only by their Linear and its
    /// weight gradient) as one bf16 copy a layer beside one fp32 buffer the layers share, and says so in its size; under
    /// fp32 it holds no 16-bit buffer.
    /// </summary>
    [Fact]
    public void A_bf16_plan_holds_the_activations_only_products_read_in_16_bits()
    {
        using var device = Device.Create("cpu");
        using var model = new PreMaxHeads(device);
        const int batch = 2, seq = 5;
        var tokens = new int[batch * (seq + 1)];
        model.Forward(tokens, batch, seq);
        Assert.DoesNotContain(model.PlannedBuffers!.Buffers, b => b.ElementSize == 2);
        long fp32 = model.ActivationBytes;
        Assert.Equal(model.PlanBytes(batch, seq, bf16: false), fp32);

        device.GemmPrecision = GemmPrecision.Bf16;
        model.Forward(tokens, batch, seq);
        var named = model.PlannedBuffers!.Named.Where(n => n.Buffer.ElementSize == 2).Select(n => n.Name).ToList();
        Assert.Equal(["Gated[0]", "Gated[1]", "FfAct[0]", "FfAct[1]"], named);
        Assert.Equal(model.PlanBytes(batch, seq), model.ActivationBytes);
        // Each of the Depth layers' copies takes 2 bytes an element where it took 4, less the one fp32 buffer they share.
        long rows = batch * seq, saved = (2L * PreMaxHeads.Depth - 4) * rows * (PreMaxHeads.DimInner + PreMaxHeads.Hidden);
        Assert.Equal(fp32 - saved, model.ActivationBytes);
    }

    /// <summary>
    /// A training step under bf16 products gives the same loss and gradients, bit for bit, with the activations kept as
    /// bf16 copies as with products that round them from fp32 as they read them: the same numbers go into every product.
    /// On cuda-sim the step's GEMMs round two operands fewer per layer (the weight gradients read the kept copies).
    /// </summary>
    [Theory]
    [InlineData("cpu")]
    [InlineData("ilgpu-cpu")]
    [InlineData("cuda-sim")]
    public void Keeping_bf16_copies_trains_to_the_numbers_of_rounding_on_reading(string name)
    {
        const int batch = 2, seq = 6;
        var random = new Random(5);
        var tokens = Enumerable.Range(0, batch * (seq + 1)).Select(_ => random.Next(PreMaxHeads.NumTokens)).ToArray();
        (double Loss, float[] Gradients, long Roundings) Step(bool keep)
        {
            using var device = Device.Create(name);
            using var model = new PreMaxHeads(device) { KeepsBf16Copies = keep };
            model.Initialize(seed: 3);
            device.GemmPrecision = GemmPrecision.Bf16;
            model.ZeroGradients();
            double loss = model.Forward(tokens, batch, seq);
            model.Backward();
            long roundings = device is SimulatedCudaDevice sim ? sim.Counters["RoundToBf16"].Launches : 0;
            if (device is SimulatedCudaDevice widened && keep) Assert.Equal(4 * PreMaxHeads.Depth, widened.Counters["WidenBf16"].Launches);
            return (loss, model.ReadGradients(), roundings);
        }
        var kept = Step(keep: true);
        var rounded = Step(keep: false);
        Assert.Equal(rounded.Loss, kept.Loss);
        Assert.Equal(rounded.Gradients.Select(Bits), kept.Gradients.Select(Bits));
        // Per layer: the two forward products' inputs are rounded into the kept copies (KeepBf16) and the two weight
        // gradients read the copies, so four operand roundings go; the tiled kernel widens the four copies it reads
        // (cuBLAS would take them as they are).
        if (name == "cuda-sim") Assert.Equal(rounded.Roundings - 4 * PreMaxHeads.Depth, kept.Roundings);
    }
}
