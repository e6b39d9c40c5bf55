using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using GateLoop;
using GateLoop.Runtime;
using ILGPU.Runtime;
using Device = GateLoop.Runtime.Device;

// Kernel benchmarks on the host backend, each reported against the machine's limit:
//   dotnet run -c Release --project bench/GateLoop.Benchmarks -- --filter '*'
// GEMM: GFLOP/s = 2·m·n·k / time, against 2 cores × (AVX-512: 64, AVX2: 32 single-precision FLOP per cycle) × the clock.
// Scan: bytes it must read and write / time, against the copy bandwidth measured by the Copy benchmark.
//   dotnet run -c Release --project bench/GateLoop.Benchmarks -- gemm-peak [--json]
// times the GEMM shapes against this tier's FMA peak measured by a register-only loop in the same process (see GemmPeak).
if (args is ["gemm-peak", .. var rest]) return GemmPeak.Run(json: rest.Contains("--json"));
BenchmarkSwitcher.FromAssembly(typeof(GemmBenchmarks).Assembly).Run(args);
return 0;

/// <summary>The training GEMM shapes of the seed config (rows = batch 4 × seq 256).</summary>
[MemoryDiagnoser]
public class GemmBenchmarks : IDisposable
{
    readonly Device device = Device.Create("cpu");
    MemoryBuffer1D<float, ILGPU.Stride1D.Dense> a = null!, b = null!, c = null!;

    public static readonly string[] Shapes = ["NT 1024x1536x512", "NN 1024x512x1536", "TN 1536x512x1024", "NT 1024x2048x512"];

    [ParamsSource(nameof(Shapes))]
    public string Shape { get; set; } = "";

    (bool TransA, bool TransB, int M, int N, int K) Parsed() => Parse(Shape);

    public static (bool TransA, bool TransB, int M, int N, int K) Parse(string shape)
    {
        var parts = shape.Split(' ');
        var mnk = parts[1].Split('x').Select(int.Parse).ToArray();
        return (parts[0][0] == 'T', parts[0][1] == 'T', mnk[0], mnk[1], mnk[2]);
    }

    [GlobalSetup]
    public void Setup()
    {
        var (_, _, m, n, k) = Parsed();
        a = device.Allocate<float>((long)m * k);
        b = device.Allocate<float>((long)k * n);
        c = device.Allocate<float>((long)m * n);
    }

    /// <summary>One product; GFLOP/s = 2·m·n·k / mean time.</summary>
    [Benchmark]
    public void Gemm()
    {
        var (ta, tb, m, n, k) = Parsed();
        device.Gemm(ta, tb, m, n, k, 1f, a.View, b.View, 0f, c.View);
    }

    public void Dispose()
    {
        a.Dispose();
        b.Dispose();
        c.Dispose();
        device.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>The gate-loop scan of the seed config (max heads) against plain memory copies of the same size.</summary>
[MemoryDiagnoser]
public class ScanBenchmarks : IDisposable
{
    const int Batch = 4, Seq = 256;
    readonly Device device = Device.Create("cpu");
    MemoryBuffer1D<float, ILGPU.Stride1D.Dense> qkv = null!, a = null!, o = null!, states = null!, carry = null!, copy = null!;

    [GlobalSetup]
    public void Setup()
    {
        long rows = Batch * Seq;
        qkv = device.Allocate<float>(rows * 3 * ScanModel.DimInner);
        a = device.Allocate<float>(rows * 2 * ScanModel.Heads);
        o = device.Allocate<float>(rows * ScanModel.DimInner);
        states = device.Allocate<float>(rows * 2 * ScanModel.DimInner);
        carry = device.Allocate<float>(Batch * 2 * ScanModel.DimInner);
        copy = device.Allocate<float>(rows * 8 * ScanModel.DimInner);
    }

    /// <summary>Reads q, k, v and a (5 values per channel and row), writes o and S (3): 32 bytes per channel-step.</summary>
    [Benchmark]
    public void ScanForward() =>
        device.Launch(ScanModel.Kernels.ScanForward, ScanModel.Kernels.Host.ScanForward, Batch * ScanModel.DimInner, Seq, qkv.View.AsContiguous(), a.View.AsContiguous(),
            o.View.AsContiguous(), states.View.AsContiguous(), carry.View.AsContiguous());

    /// <summary>The same 32 bytes per channel-step, moved by memcpy: the bandwidth the scan is compared with.</summary>
    [Benchmark(Baseline = true)]
    public void Copy() => copy.View.SubView(0, copy.Length / 2).CopyTo(copy.View.SubView(copy.Length / 2, copy.Length / 2));

    public void Dispose()
    {
        foreach (var buffer in new[] { qkv, a, o, states, carry, copy }) buffer.Dispose();
        device.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>The seed config's mixer width: 512 channels, one head each.</summary>
[GateLoopTransformer(NumTokens = 256, Dim = 512, Depth = 1, GateLoopHeads = 512, PostLayerNorm = true)]
public partial class ScanModel;
