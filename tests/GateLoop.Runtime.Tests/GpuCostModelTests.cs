using ILGPU;
using ILGPU.Runtime;
using System.Runtime.InteropServices;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// The GPU cost estimate: a sampled launch counts what the whole grid would and writes nothing, the cost model names
/// the bound that sets each time, and a sampled cuda-sim run computes the host's values while estimating every
/// launch and GEMM under the names a profile uses.
/// </summary>
public sealed class GpuCostModelTests
{
    // o[i] = x[i] + 1 over a grid of 32-thread blocks, one load and one store per thread.
    static readonly PtxKernel Increment = PtxKernel.Parse("""
        .visible .entry Kernel_Increment(
        	.param .align 8 .b8 _x_1[16],
        	.param .align 8 .b8 _o_2[16]
        )
        {
        	.reg .b32	%r<8>;
        	.reg .b64	%rd<16>;
        	ld.param.b64	%rd1, [_x_1];
        	ld.param.b64	%rd2, [_o_2];
        	mov.b32	%r1, %tid.x;
        	mov.b32	%r2, %ctaid.x;
        	mov.b32	%r3, %ntid.x;
        	mad.lo.s32	%r4, %r2, %r3, %r1;
        	mul.wide.s32	%rd3, %r4, 8;
        	add.u64	%rd4, %rd1, %rd3;
        	ld.global.b64	%rd5, [%rd4];
        	add.u64	%rd6, %rd5, 1;
        	add.u64	%rd7, %rd2, %rd3;
        	st.global.b64	[%rd7], %rd6;
        	ret;
        }
        """);

    // Thread t of one warp sums 32 elements of x: x[32t + i] (its row, in order) or x[32i + t] (its column).
    static PtxKernel Walk(string index) => PtxKernel.Parse($$"""
        .visible .entry Kernel_Walk(
        	.param .align 8 .b8 _x_1[16],
        	.param .align 8 .b8 _o_2[16]
        )
        {
        	.reg .pred	%p<4>;
        	.reg .b32	%r<16>;
        	.reg .b64	%rd<16>;
        	ld.param.b64	%rd1, [_x_1];
        	ld.param.b64	%rd2, [_o_2];
        	mov.b32	%r1, %tid.x;
        	mov.b32	%r2, 0;
        	mov.b64	%rd9, 0;
        LOOP:
        	{{index}}
        	mul.wide.s32	%rd3, %r5, 8;
        	add.u64	%rd4, %rd1, %rd3;
        	ld.global.b64	%rd5, [%rd4];
        	add.u64	%rd9, %rd9, %rd5;
        	add.s32	%r2, %r2, 1;
        	setp.lt.s32	%p2, %r2, 32;
        	@%p2 bra	LOOP;
        	mul.wide.u32	%rd6, %r1, 8;
        	add.u64	%rd7, %rd2, %rd6;
        	st.global.b64	[%rd7], %rd9;
        	ret;
        }
        """);

    static unsafe (LaunchCounters Counts, ulong[] Output) Launch(int blocks, long[]? sample) => Launch(Increment, blocks, blocks * 32, sample);

    static unsafe (LaunchCounters Counts, ulong[] Output) Launch(PtxKernel kernel, int blocks, int n, long[]? sample)
    {
        var x = (ulong*)NativeMemory.AlignedAlloc((nuint)n * 8, 256);
        var o = (ulong*)NativeMemory.AlignedAlloc((nuint)n * 8, 256);
        try
        {
            for (int i = 0; i < n; i++) (x[i], o[i]) = ((ulong)i, 0);
            var space = new byte[kernel.ParamBytes];
            BitConverter.TryWriteBytes(space.AsSpan(kernel.Params[0].Offset), (ulong)x);
            BitConverter.TryWriteBytes(space.AsSpan(kernel.Params[0].Offset + 8), (long)n);
            BitConverter.TryWriteBytes(space.AsSpan(kernel.Params[1].Offset), (ulong)o);
            BitConverter.TryWriteBytes(space.AsSpan(kernel.Params[1].Offset + 8), (long)n);
            var counts = PtxMachine.Launch(kernel, new(blocks), new(32), space, [new((ulong)x, n * 8L, "'x'"), new((ulong)o, n * 8L, "'o'")], sample);
            return (counts, new Span<ulong>(o, n).ToArray());
        }
        finally
        {
            NativeMemory.AlignedFree(x);
            NativeMemory.AlignedFree(o);
        }
    }

    [Fact]
    public void A_sampled_launch_counts_what_the_whole_grid_would_and_writes_nothing()
    {
        var (full, written) = Launch(64, null);
        var (sampled, untouched) = Launch(64, [0, 21, 42, 63]);
        Assert.Equal(Enumerable.Range(0, 64 * 32).Select(i => (ulong)i + 1), written);
        Assert.All(untouched, v => Assert.Equal(0UL, v));
        // Every block does the same work, so the scaled counts are the whole grid's exactly.
        Assert.Equal(full.WarpInstructions, sampled.WarpInstructions);
        Assert.Equal(full.ThreadInstructions, sampled.ThreadInstructions);
        Assert.Equal(full.GlobalSectors, sampled.GlobalSectors);
        Assert.Equal(full.GlobalBytes, sampled.GlobalBytes);
        Assert.Equal(full.Threads, sampled.Threads);
        Assert.Equal(full.LongestThread, sampled.LongestThread);
        Assert.Equal(1, sampled.MostGlobalLoads);
        Assert.Equal(1, sampled.MostNewLineLoads);
        Assert.Equal(64 * 2 * 8, full.GlobalSectors); // a coalesced 8-byte load and store per warp: 8 sectors each
    }

    [Fact]
    public void A_thread_walking_its_row_misses_once_a_line_and_one_walking_a_column_every_load()
    {
        var (row, rowSums) = Launch(Walk("mad.lo.s32	%r5, %r1, 32, %r2;"), 1, 32 * 32, null);
        var (column, columnSums) = Launch(Walk("mad.lo.s32	%r5, %r2, 32, %r1;"), 1, 32 * 32, null);
        Assert.Equal(Enumerable.Range(0, 32).Select(t => (ulong)Enumerable.Range(0, 32).Sum(i => 32 * t + i)), rowSums.Take(32));
        Assert.Equal(Enumerable.Range(0, 32).Select(t => (ulong)Enumerable.Range(0, 32).Sum(i => 32 * i + t)), columnSums.Take(32));
        Assert.Equal(32, row.MostGlobalLoads);
        Assert.Equal(32, column.MostGlobalLoads);
        Assert.Equal(2, row.MostNewLineLoads);     // 32 × 8 bytes in order: two 128-byte lines
        Assert.Equal(32, column.MostNewLineLoads); // 256 bytes apart: a new line each time
        // For the warp it is the other way round: walking rows, its 32 lanes touch 32 sectors a load; walking columns,
        // the lanes read adjacent elements, 8 sectors (and the store 8 more).
        Assert.Equal(32 * 32 + 8, row.GlobalSectors);
        Assert.Equal(8 * 32 + 8, column.GlobalSectors);
    }

    [Fact]
    public void The_cost_model_names_the_bound_that_sets_each_time()
    {
        var gpu = GpuCostModel.H200;
        // A launch that does almost nothing costs its overhead.
        Assert.Equal(new CostEstimate(gpu.LaunchSeconds + 1e-9, "launch"), gpu.Launch(new(1e-9, 1e-10, 1e-10, 1, 0, 0, 0)));
        // A gigabyte of sectors over the whole chip is memory-bound; a billion warp instructions issue-bound; one thread walking 4,096
        // dependent loads latency-bound.
        Assert.Equal("dram", gpu.Launch(new(1e9 / gpu.DramBytesPerSecond, 1e-5, 1e-5, 4, 20, 2, 2)).Bound);
        var issue = gpu.Launch(new(1e-5, 1e9 / (132 * 4 * gpu.ClockHz), 1e-5, 8, 1000, 2, 2));
        Assert.Equal("issue", issue.Bound);
        Assert.Equal(gpu.LaunchSeconds + 1e9 / (132 * 4 * gpu.ClockHz), issue.Seconds, 12);
        var serial = gpu.Launch(new(1e-6, 1e-6, 1e-6, 1, 40_000, 4096, 1024));
        Assert.Equal("latency", serial.Bound);
        Assert.Equal(gpu.LaunchSeconds + 40_000 * gpu.SecondsPerDependentInstruction + 3072 * gpu.SecondsPerCachedLoad + 1024 * gpu.SecondsPerMissedLoad,
            serial.Seconds, 12);
        // Waves of resident threads repeat the chain.
        Assert.Equal(3 * (serial.Seconds - gpu.LaunchSeconds), gpu.Launch(new(1e-6, 1e-6, 1e-6, 3, 40_000, 4096, 1024)).Seconds - gpu.LaunchSeconds, 12);
        Assert.Equal(3, LaunchFeatures.Of(new LaunchCounters(), 2 * 132 * 8 + 1, 256, gpu).Waves);
        // A grid of 4 blocks issues and reads through 4 multiprocessors' schedulers and caches, not 132.
        var counts = new LaunchCounters { GlobalSectors = 4_000_000 };
        counts.WarpInstructions[(int)InstructionClass.Fp32] = 1_000_000;
        var small = LaunchFeatures.Of(counts, 4, 256, gpu);
        Assert.Equal(1e6 / (4 * 4 * gpu.ClockHz), small.IssueSeconds, 15);
        Assert.Equal(4e6 / (4 * gpu.L1SectorsPerCycle * gpu.ClockHz), small.CacheSeconds, 15);
        Assert.Equal(4e6 * 32 / gpu.DramBytesPerSecond, small.DramSeconds, 15);
        Assert.Equal("cache", gpu.Launch(small).Bound);
        Assert.Equal(small.IssueSeconds * 4 / 132, LaunchFeatures.Of(counts, 1000, 256, gpu).IssueSeconds, 15);
        // A large square GEMM is bound by FLOPs, a matrix-vector product by its matrix's bytes.
        Assert.Equal("flops", gpu.Gemm(4096, 4096, 4096, 4).Bound);
        var gemv = gpu.Gemm(1, 8192, 8192, 4);
        Assert.Equal("dram", gemv.Bound);
        Assert.Equal(gpu.GemmCallSeconds + 4.0 * (8192 + 8192L * 8192 + 2 * 8192) / gpu.DramBytesPerSecond, gemv.Seconds, 12);
        // A device copy is a launch, and its bytes read and written once it moves more than a launch's worth.
        Assert.Equal("launch", gpu.Copy(2048).Bound);
        Assert.Equal(new CostEstimate(gpu.LaunchSeconds + 2e9 / gpu.DramBytesPerSecond, "dram"), gpu.Copy(1_000_000_000));
    }

    [Fact]
    public void A_schedules_copy_on_cuda_sim_copies_and_is_priced_as_a_launch_and_its_bytes()
    {
        using var sim = (SimulatedCudaDevice)Device.Create("cuda-sim");
        using var from = sim.Allocate<float>(1000);
        using var to = sim.Allocate<float>(1000);
        from.CopyFromCPU(Enumerable.Range(0, 1000).Select(i => (float)i).ToArray());
        sim.Copy<float>(from.View, to.View);
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => (float)i), to.GetAsArray1D());
        var copy = sim.Costs["Copy"];
        Assert.Equal(1, copy.Launches);
        Assert.Equal(sim.CostModel.Copy(4000).Seconds, copy.Seconds, 15);
    }

    [Fact]
    public void Sampled_cuda_sim_computes_the_hosts_values_and_estimates_every_launch_and_gemm()
    {
        double Loss(string name, out SimulatedCudaDevice? simulator)
        {
            var device = Device.Create(name);
            simulator = device as SimulatedCudaDevice;
            if (simulator is not null) simulator.SampleBlocks = 2;
            using var net = new ShippedTiny(device);
            net.Initialize(0);
            var tokens = Enumerable.Range(0, 4 * 33).Select(i => i * 7 % 256).ToArray();
            double loss = net.Forward(tokens, 4, 32);
            net.Backward();
            if (simulator is null) device.Dispose();
            return loss;
        }
        double host = Loss("cpu", out _);
        double sampled = Loss("cuda-sim", out var sim);
        using (sim)
        {
            Assert.Equal(host, sampled, 5);
            var costs = sim!.Costs;
            // GEMMs are estimated as cuBLAS calls by shape, column sums apart, as a profile files them.
            Assert.Contains(costs["Gemm"].Gemms.Keys, g => g is { M: 128, K: 64, Bytes: 4 });
            Assert.True(costs["ColumnSum"].Gemms.Keys.All(g => g.M == 1));
            // Every simulated kernel has its estimate, with one feature entry per distinct launch.
            foreach (var (kernel, counts) in sim.Counters)
            {
                var cost = costs[kernel];
                Assert.Equal(counts.Launches, cost.Launches);
                Assert.Equal(cost.Launches, cost.Features.Values.Sum());
                Assert.True(cost.Seconds >= cost.Launches * sim.CostModel.LaunchSeconds);
            }
            Assert.Contains(sim.Counters.Keys, k => k.StartsWith("LayerNorm", StringComparison.Ordinal));
        }
    }
}
