using System.Diagnostics;
using GateLoop.Runtime;
using ILGPU;
using ILGPU.Runtime;
using Xunit.Abstractions;
using Device = GateLoop.Runtime.Device;

namespace GateLoop.Runtime.Tests;

// Float layers that between them run every SimpleGateLoop kernel: RMSNorm, LayerNorm, the plain and the log-space
// forward scan in both directions, and the reverse scan in both directions.

[SimpleGateLoop(Dim = 8)]
public partial class SglDefault;

[SimpleGateLoop(Dim = 8, PostLayerNorm = true, Reverse = true)]
public partial class SglPostReverse;

[SimpleGateLoop(Dim = 8, PreNorm = false, Heinsen = true)]
public partial class SglHeinsen;

[SimpleGateLoop(Dim = 8, PreNorm = false, PostLayerNorm = true, Reverse = true, Heinsen = true)]
public partial class SglHeinsenPostReverse;

/// <summary>For the long-sequence run: at Dim 64 it stays within seconds even in an unoptimized (Debug) build.</summary>
[SimpleGateLoop(Dim = 64)]
public partial class SglLong;

/// <summary>
/// SimpleGateLoop layers in float: the host backend and ILGPU's CPU accelerator agree (forward, cache, backward), a
/// 65,536-position sequence at Dim 512 runs forward on the host backend, and the log-space scan's error in float on
/// such a sequence.
/// </summary>
public sealed class SimpleGateLoopTests(ITestOutputHelper output)
{
    static readonly Dictionary<string, Func<Device, SimpleGateLoopLayer<float>>> Layers = new()
    {
        [nameof(SglDefault)] = d => new SglDefault(d),
        [nameof(SglPostReverse)] = d => new SglPostReverse(d),
        [nameof(SglHeinsen)] = d => new SglHeinsen(d),
        [nameof(SglHeinsenPostReverse)] = d => new SglHeinsenPostReverse(d),
    };

    public static TheoryData<string> Names() => new(Layers.Keys);

    // 5 positions: one chunk of the GPU path's chunked scans (ilgpu-cpu takes that path); 150: three, the last partial.
    public static TheoryData<string, int> NamesAndLengths()
    {
        var data = new TheoryData<string, int>();
        foreach (var name in Layers.Keys)
            foreach (int seq in new[] { 5, 150 })
                data.Add(name, seq);
        return data;
    }

    static float[] Random(int seed, long n, float lo = -1, float hi = 1)
    {
        var random = new Random(seed);
        var values = new float[n];
        for (long i = 0; i < n; i++) values[i] = lo + (hi - lo) * (float)random.NextDouble();
        return values;
    }

    static float[] Read(ArrayView<float> view)
    {
        var host = new float[view.Length];
        view.CopyToCPU(host);
        return host;
    }

    /// <summary>y of two consecutive chunks (through a cache when the layer allows one), dx, the gradients and the cache.</summary>
    static List<(string What, float[] Values)> Run(string device, string name, int seq)
    {
        const int batch = 2;
        using var d = Device.Create(device);
        using var layer = Layers[name](d);
        layer.Initialize(seed: 7);
        int n = batch * seq * layer.Width;
        using var x = d.Allocate<float>(n);
        using var y = d.Allocate<float>(n);
        using var dx = d.Allocate<float>(n);
        x.CopyFromCPU(Random(1, n, -2, 2));
        var results = new List<(string, float[])>();
        using var cache = layer.Reverse ? null : layer.CreateCache(batch);
        for (int chunk = 0; chunk < 2; chunk++)
        {
            layer.Forward(x.View, y.View, batch, seq, cache);
            results.Add(($"y{chunk}", Read(y.View)));
        }
        using var dy = d.Allocate<float>(n);
        dy.CopyFromCPU(Random(2, n));
        layer.ZeroGradients();
        layer.Backward(dy.View, dx.View);
        results.Add(("dx", Read(dx.View)));
        results.Add(("gradients", layer.ReadGradients()));
        if (cache is not null)
        {
            results.Add(("cache gate", cache.ReadGate()));
            results.Add(("cache state", cache.ReadState()));
        }
        return results;
    }

    [Theory]
    [MemberData(nameof(NamesAndLengths))]
    public void Host_and_ilgpu_backends_agree(string name, int seq)
    {
        var host = Run("cpu", name, seq);
        var ilgpu = Run("ilgpu-cpu", name, seq);
        Assert.Equal(host.Select(r => r.What), ilgpu.Select(r => r.What));
        for (int i = 0; i < host.Count; i++)
        {
            var (what, expected) = host[i];
            var actual = ilgpu[i].Values;
            Assert.Equal(expected.Length, actual.Length);
            float scale = expected.Max(Math.Abs);
            // The cache's gate is a product of every a so far: over 300 positions it rightly underflows to zero.
            Assert.True(scale > 1e-3f || what == "cache gate" && seq > 5, $"{what} is all zero");
            for (int j = 0; j < expected.Length; j++)
                Assert.True(Math.Abs(expected[j] - actual[j]) <= 1e-5f * scale + 1e-6f, $"{name} {what}[{j}]: cpu {expected[j]}, ilgpu-cpu {actual[j]}");
        }
        if (host.Any(r => r.What == "cache state")) Assert.NotEqual(host[0].Values, host[1].Values); // the second chunk continued the first
    }

    /// <summary>
    /// A 65,536-position sequence runs forward with memory linear in seq. (The seed's 1 × 65,536 × 512 takes about
    /// 1.8 s in a Release build on two idle cores but about a minute unoptimized (Debug), so this test uses Dim 64.)
    /// </summary>
    [Fact]
    public void A_65536_position_forward_runs_on_the_host_backend()
    {
        const int seq = 65_536;
        long n = (long)seq * SglLong.Dim;
        using var device = Device.Create("cpu");
        using var layer = new SglLong(device);
        layer.Initialize(seed: 1);
        using var x = device.Allocate<float>(n);
        using var y = device.Allocate<float>(n);
        x.CopyFromCPU(Random(3, n));

        var clock = Stopwatch.StartNew();
        layer.Forward(x.View, y.View, 1, seq);
        device.Synchronize();
        clock.Stop();
        output.WriteLine($"forward 1 × {seq} × {SglLong.Dim} on {device.Name}: {clock.Elapsed.TotalSeconds:F2} s, activations {layer.ActivationBytes / 1e6:F0} MB");

        Assert.All(Read(y.View), v => Assert.True(float.IsFinite(v)));
        // RMSNorm output, [q | S | a] and the starting/carried states: nothing quadratic, nothing per (position, position).
        long perPosition = (1 + 1 + 3 * SglLong.Dim + SglLong.Dim) * sizeof(float);
        Assert.InRange(layer.ActivationBytes, n * sizeof(float), seq * perPosition + (1 << 20));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"took {clock.Elapsed.TotalSeconds:F1} s");
    }

    /// <summary>
    /// In float the log-space scan's cumulative log-gate reaches −t·ln 2 ≈ −45,000 at t = 65,536, whose float spacing is
    /// 0.004: the state a = ½, kv = 1 (exactly 2 − 2^(1−t)) comes out with a relative error in the 1e-3 range, where
    /// the plain scan is exact.
    /// </summary>
    [Fact]
    public void Heinsen_float_scan_loses_accuracy_on_a_65536_position_sequence()
    {
        const int seq = 65_536, dim = 8;
        using var device = Device.Create("cpu");
        var zHost = new float[seq * 3 * dim];
        for (int t = 0; t < seq; t++)
            for (int c = 0; c < dim; c++)
            {
                zHost[t * 3 * dim + c] = 1;
                zHost[t * 3 * dim + dim + c] = 1;
            }
        double Error(Action<Index1D, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> scan,
            Action<int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> host)
        {
            using var z = device.Allocate<float>(zHost.Length);
            using var initial = device.Allocate<float>(dim);
            using var o = device.Allocate<float>(seq * dim);
            using var gate = device.Allocate<float>(dim);
            using var state = device.Allocate<float>(dim);
            z.CopyFromCPU(zHost);
            device.Launch(scan, host, dim, seq, z.View, initial.View, o.View, gate.View, state.View);
            var values = Read(o.View);
            double worst = 0;
            for (int t = 0; t < seq; t++)
                for (int c = 0; c < dim; c++)
                {
                    double exact = 2 - Math.ScaleB(1, -t);
                    worst = Math.Max(worst, Math.Abs(values[t * dim + c] - exact) / exact);
                }
            return worst;
        }
        double plain = Error(SglDefault.Kernels.ScanForward, SglDefault.Kernels.Host.ScanForward), heinsen = Error(SglHeinsen.Kernels.HeinsenScanForward, SglHeinsen.Kernels.Host.HeinsenScanForward);
        output.WriteLine($"relative error over 65,536 positions in float: plain {plain:E2}, log-space {heinsen:E2}");
        Assert.True(plain < 1e-7, $"plain scan relative error {plain:E2}");
        Assert.True(heinsen > 1e-4, $"log-space scan relative error {heinsen:E2}");
    }
}
