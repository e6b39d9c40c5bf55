using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Text.Json;
using GateLoop.Runtime;
using ILGPU.Runtime;
using Device = GateLoop.Runtime.Device;

/// <summary>
/// The seed step's GEMM shapes against this SIMD tier's multiply-add peak, both measured in one process: the peak is
/// a loop of 12 independent FMA chains per core (registers only, the kernel's own ISimd operations), so the share
/// holds whatever the clock. Rates are given per wall second and per CPU second of this process (the CPU time both
/// spent, which stays meaningful when other processes share the cores).
/// </summary>
static class GemmPeak
{
    public static int Run(bool json)
    {
        var (peakWall, peakCpu) = Measure(1, () => Peak());
        using var device = Device.Create("cpu");
        var rows = new List<Dictionary<string, object>>();
        foreach (string shape in GemmBenchmarks.Shapes)
        {
            var (ta, tb, m, n, k) = GemmBenchmarks.Parse(shape);
            using var a = device.Allocate<float>((long)m * k);
            using var b = device.Allocate<float>((long)k * n);
            using var c = device.Allocate<float>((long)m * n);
            var random = new Random(1);
            a.View.AsContiguous().CopyFromCPU([.. Enumerable.Range(0, m * k).Select(_ => random.NextSingle())]);
            b.View.AsContiguous().CopyFromCPU([.. Enumerable.Range(0, k * n).Select(_ => random.NextSingle())]);
            void Gemm() => device.Gemm(ta, tb, m, n, k, 1f, a.View, b.View, 0f, c.View);
            Gemm();
            var (wall, cpu) = Measure(2.0 * m * n * k, Gemm);
            rows.Add(new() { ["shape"] = shape, ["gflops"] = wall, ["gflops_per_cpu_s"] = cpu, ["share_of_peak"] = cpu / peakCpu });
        }
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["isa"] = HostTier.Name, ["cores"] = Environment.ProcessorCount, ["peak_gflops"] = peakWall, ["peak_gflops_per_cpu_s"] = peakCpu, ["gemm"] = rows,
            }));
            return 0;
        }
        Console.WriteLine($"isa {HostTier.Name}, {Environment.ProcessorCount} cores: FMA peak {peakWall:F1} GFLOP/s ({peakCpu:F1} per CPU second)");
        foreach (var row in rows)
            Console.WriteLine($"  {row["shape"],-18} {(double)row["gflops"],7:F1} GFLOP/s  {(double)row["gflops_per_cpu_s"],6:F1} per CPU s  {(double)row["share_of_peak"],6:P0} of peak");
        return 0;
    }

    /// <summary>The best of 7 runs of <paramref name="work"/> (each ≥ 0.2 s): GFLOP per wall second and per CPU second.</summary>
    static (double Wall, double Cpu) Measure(double flopsPerCall, Func<double> work)
    {
        var process = Process.GetCurrentProcess();
        double wallBest = 0, cpuBest = 0;
        for (int run = 0; run < 7; run++)
        {
            double flops = 0;
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            do flops += flopsPerCall * work(); while (clock.Elapsed.TotalSeconds < 0.2);
            double wall = clock.Elapsed.TotalSeconds;
            process.Refresh();
            double cpu = (process.TotalProcessorTime - cpu0).TotalSeconds;
            wallBest = Math.Max(wallBest, flops / wall / 1e9);
            cpuBest = Math.Max(cpuBest, flops / cpu / 1e9 * Environment.ProcessorCount);
        }
        return (wallBest, cpuBest);
    }

    static (double Wall, double Cpu) Measure(double flopsPerCall, Action work) => Measure(flopsPerCall, () => { work(); return 1; });

    /// <summary>FLOP done by one pass of the FMA loop on every core.</summary>
    static double Peak() => HostTier.Current switch
    {
        SimdTier.Avx512 => Cores<Vector512<float>, Simd512<float>>(),
        SimdTier.Avx2 => Cores<Vector256<float>, Simd256<float>>(),
        _ => Cores<Vector128<float>, Simd128<float>>(),
    };

    static double Cores<TV, TS>() where TV : struct where TS : struct, ISimd<float, TV>
    {
        const int Iterations = 1 << 20;
        Parallel.For(0, Environment.ProcessorCount, _ => Chains<TV, TS>(Iterations));
        return 2.0 * 12 * TS.Count * Iterations * Environment.ProcessorCount;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static unsafe float Chains<TV, TS>(int iterations) where TV : struct where TS : struct, ISimd<float, TV>
    {
        float one = 1.0000001f, near = 0.9999999f;
        TV x = TS.Broadcast(&one), y = TS.Broadcast(&near);
        TV a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x, a8 = x, a9 = x, a10 = x, a11 = x;
        for (int i = 0; i < iterations; i++)
        {
            a0 = TS.MulAdd(a0, y, x); a1 = TS.MulAdd(a1, y, x); a2 = TS.MulAdd(a2, y, x); a3 = TS.MulAdd(a3, y, x);
            a4 = TS.MulAdd(a4, y, x); a5 = TS.MulAdd(a5, y, x); a6 = TS.MulAdd(a6, y, x); a7 = TS.MulAdd(a7, y, x);
            a8 = TS.MulAdd(a8, y, x); a9 = TS.MulAdd(a9, y, x); a10 = TS.MulAdd(a10, y, x); a11 = TS.MulAdd(a11, y, x);
        }
        float* sum = stackalloc float[TS.Count];
        TS.Store(sum, TS.Add(TS.Add(TS.Add(TS.Add(a0, a1), TS.Add(a2, a3)), TS.Add(TS.Add(a4, a5), TS.Add(a6, a7))), TS.Add(TS.Add(a8, a9), TS.Add(a10, a11))));
        return sum[0];
    }
}
