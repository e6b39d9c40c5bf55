using GateLoop.Numerics.Tests.Reference;
using GateLoop.Runtime;
using ILGPU;
using ILGPU.Runtime;
using static GateLoop.Numerics.Tests.KernelHarness;
using Case = GateLoop.Numerics.Tests.SimpleGateLoopLayers.Case;
using Device = GateLoop.Runtime.Device;

namespace GateLoop.Numerics.Tests;

/// <summary>
/// Whole SimpleGateLoop layers, in double precision, against the independent reference: the seed's parameter names
/// and shapes, the same output, every parameter and input gradient equal to a central finite difference of the
/// reference (L = Σ w·y), the cache continuing a sequence exactly, Reverse as flip ∘ layer ∘ flip, and the log-space
/// scan computing the same function as the plain one.
/// </summary>
public sealed class SimpleGateLoopLayerTests : IDisposable
{
    const int Batch = 2, Seq = 5, Dim = 6;
    readonly Device device = Device.Create("cpu");
    readonly List<MemoryBuffer> buffers = [];

    public void Dispose()
    {
        foreach (var b in buffers) b.Dispose();
        device.Dispose();
    }

    public static TheoryData<string> All() => SimpleGateLoopLayers.Names();

    public static TheoryData<string> Forward() => new(SimpleGateLoopLayers.All.Where(c => !c.Config.Reverse).Select(c => c.Name));

    public static TheoryData<string> Reversed() => new(SimpleGateLoopLayers.All.Where(c => c.Config.Reverse).Select(c => c.Name));

    public static TheoryData<string> Heinsen() => new(SimpleGateLoopLayers.All.Where(c => c.Heinsen).Select(c => c.Name));

    ArrayView<double> Upload(double[] data)
    {
        var buffer = device.Allocate<double>(data.Length);
        buffers.Add(buffer);
        ArrayView<double> view = buffer.View;
        view.CopyFromCPU(data);
        return view;
    }

    static double[] Download(ArrayView<double> view)
    {
        var host = new double[view.Length];
        view.CopyToCPU(host);
        return host;
    }

    static double[] Flat(SimpleGateLoopLayer<double> layer, Dictionary<string, double[]> reference)
    {
        var flat = new double[layer.ParameterCount];
        foreach (var p in layer.Parameters) reference[p.Name].CopyTo(flat, p.Offset);
        return flat;
    }

    (SimpleGateLoopLayer<double> Layer, Dictionary<string, double[]> Reference) Load(Case c, int seed)
    {
        var layer = c.Create(device);
        var reference = ReferenceSimpleGateLoop.RandomParameters(c.Config, seed);
        layer.WriteWeights(Flat(layer, reference));
        return (layer, reference);
    }

    /// <summary>y of the layer for host x, through device buffers.</summary>
    double[] Run(SimpleGateLoopLayer<double> layer, double[] x, int batch, int seq, SimpleGateLoopCache<double>? cache = null)
    {
        var y = Upload(new double[x.Length]);
        layer.Forward(Upload(x), y, batch, seq, cache);
        return Download(y);
    }

    static double[] Input(int seed, int batch = Batch, int seq = Seq) => Random(new Random(seed), batch * seq * Dim, -2, 2);

    [Theory]
    [MemberData(nameof(All))]
    public void Parameter_table_is_the_seed_state_dict(string name)
    {
        var c = SimpleGateLoopLayers.Get(name);
        using var layer = c.Create(device);
        Assert.Equal(c.Config.Parameters().Select(p => $"{p.Name} [{string.Join(", ", p.Shape)}]"), layer.Parameters.Select(p => $"{p.Name} {p.ShapeText}"));
        long next = 0;
        foreach (var p in layer.Parameters)
        {
            Assert.Equal(next, p.Offset);
            next += p.Length;
            var init = p.Name == "to_qkva.0.weight" ? Init.Uniform : p.Name.EndsWith(".bias") ? Init.Zeros : Init.Ones;
            Assert.Equal(init, p.Init);
            if (init == Init.Uniform) Assert.Equal(Dim, p.FanIn);
        }
        Assert.Equal(layer.ParameterCount, next);
        Assert.Equal(c.Config.Reverse, layer.Reverse);
        Assert.Equal(Dim, layer.Width);
        Assert.Equal(c.Heinsen, layer.Configuration["Heinsen"]);
    }

    [Fact]
    public void Initialize_follows_the_pytorch_defaults()
    {
        using var layer = new SglPrePost(device);
        layer.Initialize(seed: 3);
        var w = layer.ReadWeights();
        double bound = 1 / Math.Sqrt(Dim);
        foreach (var p in layer.Parameters)
        {
            var values = w.AsSpan((int)p.Offset, (int)p.Length).ToArray();
            if (p.Init == Init.Uniform)
            {
                Assert.All(values, v => Assert.InRange(v, -bound, bound));
                Assert.True(values.Distinct().Count() == values.Length, $"{p.Name} is not random");
            }
            else Assert.All(values, v => Assert.Equal(p.Init == Init.Ones ? 1.0 : 0.0, v));
        }
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Forward_matches_the_reference(string name)
    {
        var c = SimpleGateLoopLayers.Get(name);
        var (layer, reference) = Load(c, seed: 1);
        using var _ = layer;
        var x = Input(seed: 2);
        AssertClose("y", ReferenceSimpleGateLoop.Forward(c.Config, reference, x, Batch, Seq), Run(layer, x, Batch, Seq), 1e-12, 1e-11);
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Every_gradient_matches_finite_differences_of_the_reference(string name)
    {
        var c = SimpleGateLoopLayers.Get(name);
        var (layer, reference) = Load(c, seed: 3);
        using var _ = layer;
        var x = Input(seed: 4);
        var w = Random(new Random(5), x.Length);
        CheckGradients(c, layer, reference, x, w, gate: null, state: null);
    }

    /// <summary>Started from a cache, the state S_0 enters a_1's gradient; the cache itself is a constant.</summary>
    [Theory]
    [MemberData(nameof(Forward))]
    public void Gradients_from_a_cached_state_match_finite_differences(string name)
    {
        var c = SimpleGateLoopLayers.Get(name);
        var (layer, reference) = Load(c, seed: 6);
        using var _ = layer;
        var rng = new Random(7);
        double[] gate = Random(rng, Batch * Dim, 0.1, 0.9), state = Random(rng, Batch * Dim, -3, 3);
        var x = Input(seed: 8);
        using var cache = layer.CreateCache(Batch);
        cache.Gate.CopyFromCPU(gate);
        cache.State.CopyFromCPU(state);
        var y = Run(layer, x, Batch, Seq, cache);
        AssertClose("y from the cache", ReferenceSimpleGateLoop.Forward(c.Config, reference, x, Batch, Seq, (double[])gate.Clone(), (double[])state.Clone()), y, 1e-12, 1e-11);
        CheckGradients(c, layer, reference, x, Random(rng, x.Length), gate, state);
    }

    /// <summary>Runs forward (from the cache values when given) and backward, then compares with finite differences of the reference.</summary>
    void CheckGradients(Case c, SimpleGateLoopLayer<double> layer, Dictionary<string, double[]> reference, double[] x, double[] w,
        double[]? gate, double[]? state)
    {
        SimpleGateLoopCache<double>? cache = null;
        if (state is not null)
        {
            cache = layer.CreateCache(Batch);
            cache.Gate.CopyFromCPU(gate!);
            cache.State.CopyFromCPU(state);
        }
        layer.ZeroGradients();
        var xv = Upload(x);
        layer.Forward(xv, Upload(new double[x.Length]), Batch, Seq, cache);
        var dx = Upload(Random(new Random(9), x.Length)); // overwritten
        layer.Backward(Upload(w), dx);
        var gradients = layer.ReadGradients();
        cache?.Dispose();

        double Loss() => Dot(w, ReferenceSimpleGateLoop.Forward(c.Config, reference, x, Batch, Seq,
            (double[]?)gate?.Clone(), (double[]?)state?.Clone()));
        AssertClose("dx", NumericGradient(x, Loss), Download(dx), 1e-7, 1e-6);
        int nonZero = 0;
        foreach (var p in layer.Parameters)
        {
            var numeric = NumericGradient(reference[p.Name], Loss);
            AssertClose(p.Name, numeric, gradients.AsSpan((int)p.Offset, (int)p.Length).ToArray(), 1e-7, 1e-6);
            nonZero += numeric.Count(g => Math.Abs(g) > 1e-6);
        }
        Assert.True(nonZero > layer.ParameterCount / 2, $"only {nonZero} of {layer.ParameterCount} gradients are non-zero");
    }

    [Fact]
    public void Gradients_accumulate_and_dx_may_alias_dy()
    {
        var c = SimpleGateLoopLayers.Get(nameof(SglPrePost));
        var (layer, _) = Load(c, seed: 10);
        using var __ = layer;
        var x = Input(seed: 11);
        var w = Random(new Random(12), x.Length);
        layer.ZeroGradients();
        layer.Forward(Upload(x), Upload(new double[x.Length]), Batch, Seq);
        var dx = Upload(new double[x.Length]);
        layer.Backward(Upload(w), dx);
        var once = layer.ReadGradients();
        var inPlace = Upload(w);
        layer.Backward(inPlace, inPlace);
        var twice = layer.ReadGradients();
        for (int i = 0; i < once.Length; i++) Assert.Equal(2 * once[i], twice[i], 1e-13);
        AssertClose("dx in place", Download(dx), Download(inPlace), 0, 0);
    }

    /// <summary>forward(x1, cache) then forward(x2, cache) equals forward(x1 ++ x2) on x2's positions, caches included.</summary>
    [Theory]
    [MemberData(nameof(Forward))]
    public void A_cache_continues_a_sequence_exactly(string name)
    {
        var c = SimpleGateLoopLayers.Get(name);
        var (layer, _) = Load(c, seed: 13);
        using var __ = layer;
        const int first = 3, second = 4, total = first + second;
        var joint = Input(seed: 14, seq: total);
        double[] Part(int start, int length) =>
            Enumerable.Range(0, Batch).SelectMany(b => joint.Skip((b * total + start) * Dim).Take(length * Dim)).ToArray();

        using var jointCache = layer.CreateCache(Batch);
        var all = Run(layer, joint, Batch, total, jointCache);
        Assert.Equal(all, Run(layer, joint, Batch, total)); // a fresh cache is the same as none

        using var cache = layer.CreateCache(Batch);
        Run(layer, Part(0, first), Batch, first, cache);
        var continued = Run(layer, Part(first, second), Batch, second, cache);
        var expected = Enumerable.Range(0, Batch).SelectMany(b => all.Skip((b * total + first) * Dim).Take(second * Dim)).ToArray();
        double tolerance = c.Heinsen ? 1e-12 : 1e-14;
        AssertClose("continued y", expected, continued, tolerance, tolerance);
        AssertClose("cache gate", jointCache.ReadGate(), cache.ReadGate(), tolerance, tolerance);
        AssertClose("cache state", jointCache.ReadState(), cache.ReadState(), tolerance, tolerance);
        Assert.All(cache.ReadGate(), g => Assert.InRange(g, 1e-12, 1)); // a product of sigmoids, not left at 1

        cache.Reset();
        AssertClose("after Reset", all.Take(first * Dim).ToArray(), Run(layer, Part(0, first), Batch, first, cache).Take(first * Dim).ToArray(), 0, 0);
    }

    /// <summary>The reverse layer on x is flip(the same weights without Reverse on flip(x)).</summary>
    [Theory]
    [MemberData(nameof(Reversed))]
    public void Reverse_is_the_forward_layer_between_flips(string name)
    {
        var c = SimpleGateLoopLayers.Get(name);
        var (reversed, reference) = Load(c, seed: 15);
        using var _ = reversed;
        using var forward = SimpleGateLoopLayers.Twin(c, reverse: false, heinsen: c.Heinsen).Create(device);
        forward.WriteWeights(reversed.ReadWeights());
        var x = Input(seed: 16);
        var expected = ReferenceSimpleGateLoop.Flip(Run(forward, ReferenceSimpleGateLoop.Flip(x, Batch, Seq, Dim), Batch, Seq), Batch, Seq, Dim);
        AssertClose("reverse y", expected, Run(reversed, x, Batch, Seq), 1e-14, 1e-13);
    }

    /// <summary>The log-space scan is the same function: output and gradients agree with the plain layer on well-conditioned inputs.</summary>
    [Theory]
    [MemberData(nameof(Heinsen))]
    public void Heinsen_layer_agrees_with_the_plain_layer(string name)
    {
        var c = SimpleGateLoopLayers.Get(name);
        var (heinsen, _) = Load(c, seed: 17);
        using var __ = heinsen;
        using var plain = SimpleGateLoopLayers.Twin(c, c.Config.Reverse, heinsen: false).Create(device);
        plain.WriteWeights(heinsen.ReadWeights());
        const int seq = 32;
        var x = Input(seed: 18, seq: seq);
        var w = Random(new Random(19), x.Length);
        var results = new List<(double[] Y, double[] Dx, double[] Gradients)>();
        foreach (var layer in new[] { plain, heinsen })
        {
            var y = Upload(new double[x.Length]);
            layer.ZeroGradients();
            layer.Forward(Upload(x), y, Batch, seq);
            var dx = Upload(new double[x.Length]);
            layer.Backward(Upload(w), dx);
            results.Add((Download(y), Download(dx), layer.ReadGradients()));
        }
        AssertClose("y", results[0].Y, results[1].Y, 1e-13, 1e-12);
        AssertClose("dx", results[0].Dx, results[1].Dx, 1e-12, 1e-11);
        AssertClose("gradients", results[0].Gradients, results[1].Gradients, 1e-12, 1e-11);
    }

    [Fact]
    public void Caching_a_reverse_layer_throws()
    {
        using var reversed = new SglPreRev(device);
        using var forward = new SglPre(device);
        Assert.Contains("non-reversed", Assert.Throws<InvalidOperationException>(() => reversed.CreateCache(Batch)).Message);
        using var cache = forward.CreateCache(Batch);
        var x = Input(seed: 20);
        Assert.Contains("non-reversed", Assert.Throws<InvalidOperationException>(() => reversed.Forward(Upload(x), Upload(new double[x.Length]), Batch, Seq, cache)).Message);
    }

    [Fact]
    public void Arguments_are_checked()
    {
        using var layer = new SglPre(device);
        var x = Upload(Input(seed: 21));
        var y = Upload(new double[Batch * Seq * Dim]);
        Assert.Contains("call Forward before Backward", Assert.Throws<InvalidOperationException>(() => layer.Backward(y, x)).Message);
        Assert.Contains("batch × seq × Dim", Assert.Throws<ArgumentException>(() => layer.Forward(x, y, Batch, Seq + 1)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => layer.Forward(x, y, 0, Seq));
        using var cache = layer.CreateCache(Batch + 1);
        Assert.Contains("the cache holds 3 sequences", Assert.Throws<ArgumentException>(() => layer.Forward(x, y, Batch, Seq, cache)).Message);
        layer.Forward(x, y, Batch, Seq);
        Assert.Contains("of the last Forward", Assert.Throws<ArgumentException>(() => layer.Backward(y.SubView(1), x)).Message);
    }
}
