using System.Numerics;
using GateLoop.Numerics.Tests.Reference;
using ILGPU;
using static GateLoop.Numerics.Tests.KernelHarness;
using V = ILGPU.ArrayView<double>;

using GateLoop.Tests.Shared;

namespace GateLoop.Numerics.Tests;

/// <summary>
/// Every generated backward kernel against central finite differences of its forward kernel, one kernel pair at a
/// time, in double precision. The scalar is L = Σ w·y with fixed random weights w, so dy = w. Outputs documented
/// as accumulating (+=) are pre-filled with random values that are subtracted afterwards; outputs documented as
/// overwritten are pre-filled with garbage that must disappear. The forward scans are also checked against a plain
/// sequential loop, and the max-heads reverse scan against one written here.
/// </summary>
public sealed class KernelGradientTests(KernelHarness h) : IClassFixture<KernelHarness>
{
    const int Rows = 3, Batch = 2, Seq = 4;

    // Rows for the norms, whose parameter gradients sum columns in parts of Kernels.ColumnPart rows: two whole parts and a ragged one.
    const int NormRows = 2 * PreMaxHeads.Kernels.ColumnPart + 5, Parts = (NormRows + PreMaxHeads.Kernels.ColumnPart - 1) / PreMaxHeads.Kernels.ColumnPart;

    // The row kernels' domain: a warp's lanes per row. Finite differences run the host entries (whole rows, the same
    // formulas); the kernels run as ILGPU runs them (their lanes' sums meet by shuffles) and must give the same.
    const int NormLanes = NormRows * PreMaxHeads.Kernels.RowLanes;

    // ------------------------------------------------------------------ RMSNorm

    [Fact]
    public void RmsNormBackwardMatchesFiniteDifferences()
    {
        const int dim = PreMaxHeads.Dim;
        var rng = new Random(1);
        double[] x = Random(rng, NormRows * dim), gamma = Random(rng, dim, 0.5, 1.5), w = Random(rng, NormRows * dim);
        V xv = h.Zeros(x.Length), gv = h.Zeros(dim), y = h.Zeros(x.Length), inv = h.Zeros(NormRows);
        double Loss()
        {
            Set(xv, x);
            Set(gv, gamma);
            PreMaxHeads.Kernels.Host.RmsNormForward(0, NormLanes, xv, gv, y, inv);
            return Dot(w, Get(y));
        }
        double[] fdX = NumericGradient(x, Loss), fdGamma = NumericGradient(gamma, Loss);

        Loss();
        AssertClose("y", ReferenceTransformer.RmsNorm(x, NormRows, dim, gamma), Get(y), 1e-13, 1e-13);
        V yKernel = h.Zeros(x.Length), invKernel = h.Zeros(NormRows);
        h.Run(PreMaxHeads.Kernels.RmsNormForward, NormLanes, xv, gv, yKernel, invKernel);
        AssertClose("y (kernel)", Get(y), Get(yKernel), 1e-14, 1e-14);
        AssertClose("invNorm (kernel)", Get(inv), Get(invKernel), 1e-14, 1e-14);
        double[] dx0 = Random(rng, x.Length), dGamma0 = Random(rng, dim);
        V dy = h.Upload(w), dx = h.Upload(dx0), dxHost = h.Upload(dx0), dGamma = h.Upload(dGamma0);
        h.Run(PreMaxHeads.Kernels.RmsNormBackward, NormLanes, xv, gv, inv, dy, dx);
        PreMaxHeads.Kernels.Host.RmsNormBackward(0, NormLanes, xv, gv, inv, dy, dxHost);
        AssertClose("dx (host entry, accumulated)", fdX, Minus(Get(dxHost), dx0));
        V partials = h.Upload(Random(rng, Parts * dim)); // garbage the first level overwrites
        Launch(Parts * dim, i => PreMaxHeads.Kernels.RmsNormBackwardGammaPartials(i, NormRows, xv, inv, dy, partials));
        Launch(dim, i => PreMaxHeads.Kernels.RmsNormBackwardGamma(i, Parts, partials, dGamma));
        AssertClose("dx (accumulated)", fdX, Minus(Get(dx), dx0));
        AssertClose("dGamma (accumulated)", fdGamma, Minus(Get(dGamma), dGamma0));
    }

    // ------------------------------------------------------------------ LayerNorm

    delegate void LnPartials(Index1D i, int rows, V x, V stats, V dy, V partials);
    delegate void LnBackwardParams(Index1D i, int parts, V partials, V dw, V db);

    static (int Width, Action<Index1D, V, V, V, V, V> Forward, Action<Index1D, V, V, V, V, V> Backward, Action<int, int, V, V, V, V, V> HostForward,
        Action<int, int, V, V, V, V, V> HostBackward, LnPartials Partials, LnBackwardParams Params) LayerNormKernels(string kernel) => kernel switch
    {
        "PostHeadsGated.LayerNormDim" => (PostHeadsGated.Dim, PostHeadsGated.Kernels.LayerNormDimForward, PostHeadsGated.Kernels.LayerNormDimBackward,
            PostHeadsGated.Kernels.Host.LayerNormDimForward, PostHeadsGated.Kernels.Host.LayerNormDimBackward,
            PostHeadsGated.Kernels.LayerNormDimBackwardParamsPartials, PostHeadsGated.Kernels.LayerNormDimBackwardParams),
        "PostAblated.LayerNormDim" => (PostAblated.Dim, PostAblated.Kernels.LayerNormDimForward, PostAblated.Kernels.LayerNormDimBackward,
            PostAblated.Kernels.Host.LayerNormDimForward, PostAblated.Kernels.Host.LayerNormDimBackward,
            PostAblated.Kernels.LayerNormDimBackwardParamsPartials, PostAblated.Kernels.LayerNormDimBackwardParams),
        "PreHeadsSubNorm.LayerNormDimInner" => (PreHeadsSubNorm.DimInner, PreHeadsSubNorm.Kernels.LayerNormDimInnerForward, PreHeadsSubNorm.Kernels.LayerNormDimInnerBackward,
            PreHeadsSubNorm.Kernels.Host.LayerNormDimInnerForward, PreHeadsSubNorm.Kernels.Host.LayerNormDimInnerBackward,
            PreHeadsSubNorm.Kernels.LayerNormDimInnerBackwardParamsPartials, PreHeadsSubNorm.Kernels.LayerNormDimInnerBackwardParams),
        "PostHeadsGated.LayerNormDimInner" => (PostHeadsGated.DimInner, PostHeadsGated.Kernels.LayerNormDimInnerForward, PostHeadsGated.Kernels.LayerNormDimInnerBackward,
            PostHeadsGated.Kernels.Host.LayerNormDimInnerForward, PostHeadsGated.Kernels.Host.LayerNormDimInnerBackward,
            PostHeadsGated.Kernels.LayerNormDimInnerBackwardParamsPartials, PostHeadsGated.Kernels.LayerNormDimInnerBackwardParams),
        _ => throw new ArgumentException(kernel),
    };

    [Theory]
    [InlineData("PostHeadsGated.LayerNormDim")]
    [InlineData("PostAblated.LayerNormDim")]
    [InlineData("PreHeadsSubNorm.LayerNormDimInner")]
    [InlineData("PostHeadsGated.LayerNormDimInner")]
    public void LayerNormBackwardMatchesFiniteDifferences(string kernel)
    {
        var (width, forward, backward, hostForward, hostBackward, partialSums, backwardParams) = LayerNormKernels(kernel);
        var rng = new Random(2);
        double[] x = Random(rng, NormRows * width, -2, 2), wt = Random(rng, width, 0.5, 1.5), b = Random(rng, width),
            w = Random(rng, NormRows * width);
        V xv = h.Zeros(x.Length), wv = h.Zeros(width), bv = h.Zeros(width), y = h.Zeros(x.Length), stats = h.Zeros(2 * NormRows);
        double Loss()
        {
            Set(xv, x);
            Set(wv, wt);
            Set(bv, b);
            hostForward(0, NormLanes, xv, wv, bv, y, stats);
            return Dot(w, Get(y));
        }
        double[] fdX = NumericGradient(x, Loss), fdW = NumericGradient(wt, Loss), fdB = NumericGradient(b, Loss);

        Loss();
        AssertClose("y", ReferenceTransformer.LayerNorm(x, NormRows, width, wt, b), Get(y), 1e-13, 1e-12);
        V yKernel = h.Zeros(x.Length), statsKernel = h.Zeros(2 * NormRows);
        h.Run(forward, NormLanes, xv, wv, bv, yKernel, statsKernel);
        AssertClose("y (kernel)", Get(y), Get(yKernel), 1e-14, 1e-13);
        AssertClose("stats (kernel)", Get(stats), Get(statsKernel), 1e-14, 1e-13);
        double[] dw0 = Random(rng, width), db0 = Random(rng, width);
        V dy = h.Upload(w), dx = h.Upload(Random(rng, x.Length)), dw = h.Upload(dw0), db = h.Upload(db0);
        V partials = h.Upload(Random(rng, Parts * 2 * width)); // garbage the first level overwrites
        Launch(Parts * width, i => partialSums(i, NormRows, xv, stats, dy, partials));
        Launch(width, i => backwardParams(i, Parts, partials, dw, db));
        h.Run(backward, NormLanes, xv, wv, stats, dy, dx);
        AssertClose("dx (overwritten)", fdX, Get(dx));
        AssertClose("dw (accumulated)", fdW, Minus(Get(dw), dw0));
        AssertClose("db (accumulated)", fdB, Minus(Get(db), db0));

        // In place: dx and dy the same view.
        V dxy = h.Upload(w);
        h.Run(backward, NormLanes, xv, wv, stats, dxy, dxy);
        AssertClose("dx (in place)", fdX, Get(dxy));
        V dxyHost = h.Upload(w);
        hostBackward(0, NormLanes, xv, wv, stats, dxyHost, dxyHost);
        AssertClose("dx (host entry, in place)", fdX, Get(dxyHost));
    }

    // ------------------------------------------------------------------ bias + GELU

    [Fact]
    public void BiasGeluBackwardMatchesFiniteDifferences()
    {
        const int hidden = PreMaxHeads.Hidden, n = Rows * hidden;
        var rng = new Random(3);
        double[] u = Random(rng, n, -3, 3), bias = Random(rng, hidden), w = Random(rng, n);
        // Both compute 1 + erf(v/√2), which cancels for v ≪ 0 (a thousandfold at v = −3), each with its own
        // rounding of e^{−v²/2}: relative agreement there is ~1e-12, not the last bit.
        AssertBiasActivation(hidden, u, bias, w, rng, PreMaxHeads.Kernels.BiasGeluForward, PreMaxHeads.Kernels.GeluBackward,
            ReferenceTransformer.Gelu, 1e-15, 1e-11);
    }

    [Fact]
    public void BiasReluSquaredBackwardMatchesFiniteDifferences()
    {
        const int hidden = PostReluSquared.Hidden, n = Rows * hidden;
        var rng = new Random(4);
        // Away from the kink's neighbourhood (|u + b| ≥ 0.05), where a central difference straddling 0 is inexact.
        double[] bias = Random(rng, hidden), u = Random(rng, n, -3, 3).Select((v, i) =>
            Math.Abs(v + bias[i % hidden]) < 0.05 ? v + 0.1 : v).ToArray(), w = Random(rng, n);
        Assert.Contains(u.Select((v, i) => v + bias[i % hidden]), v => v < 0);
        AssertBiasActivation(hidden, u, bias, w, rng, PostReluSquared.Kernels.BiasReluSquaredForward, PostReluSquared.Kernels.ReluSquaredBackward,
            v => v > 0 ? v * v : 0, 0, 0);
    }

    delegate void BiasActivationForward(Index1D i, V u, V bias, V z);
    delegate void ActivationBackward(Index1D i, V u, V dz, V du);

    /// <summary>
    /// A feed-forward activation's kernels on Rows × <paramref name="hidden"/> inputs: the forward adds the bias in
    /// place and matches <paramref name="reference"/> (to <paramref name="atol"/>, <paramref name="rtol"/>); the
    /// backward of the loss Σ w·z overwrites du, in place over dz too, and its column sums accumulate into the bias
    /// gradient, both against finite differences.
    /// </summary>
    void AssertBiasActivation(int hidden, double[] u, double[] bias, double[] w, Random rng, BiasActivationForward forward,
        ActivationBackward backward, Func<double, double> reference, double atol, double rtol)
    {
        int n = Rows * hidden;
        V uv = h.Zeros(n), bv = h.Zeros(hidden), z = h.Zeros(n);
        double Loss()
        {
            Set(uv, u);
            Set(bv, bias);
            Launch(n, i => forward(i, uv, bv, z));
            return Dot(w, Get(z));
        }
        double[] fdU = NumericGradient(u, Loss), fdBias = NumericGradient(bias, Loss);

        Loss();
        double[] pre = u.Select((v, i) => v + bias[i % hidden]).ToArray();
        AssertClose("u after forward (bias added in place)", pre, Get(uv), 0, 0);
        AssertClose("z", pre.Select(reference).ToArray(), Get(z), atol, rtol);

        V dz = h.Upload(w), du = h.Upload(Random(rng, n));
        Launch(n, i => backward(i, uv, dz, du));
        AssertClose("du (overwritten)", fdU, Get(du));
        double[] dBias0 = Random(rng, hidden);
        V dBias = h.Upload(dBias0);
        h.ColumnSum(Rows, hidden, du, dBias);
        AssertClose("dBias = column sums of du (accumulated)", fdBias, Minus(Get(dBias), dBias0));

        V dInPlace = h.Upload(w);
        Launch(n, i => backward(i, uv, dInPlace, dInPlace));
        AssertClose("du (in place over dz)", fdU, Get(dInPlace));
    }

    // ------------------------------------------------------------------ swish gating

    delegate void SwishForward(Index1D i, V x, V g, V y);
    delegate void SwishBackward(Index1D i, V x, V g, V dy, V dx, V dg);

    static (int Inner, SwishForward Forward, SwishBackward Backward) SwishKernels(string model) => model switch
    {
        nameof(PreMaxHeads) => (PreMaxHeads.DimInner, PreMaxHeads.Kernels.SwishGateForward, PreMaxHeads.Kernels.SwishGateBackward),
        nameof(PostHeadsGated) => (PostHeadsGated.DimInner, PostHeadsGated.Kernels.SwishGateForward, PostHeadsGated.Kernels.SwishGateBackward),
        _ => throw new ArgumentException(model),
    };

    [Theory]
    [InlineData(nameof(PreMaxHeads))]
    [InlineData(nameof(PostHeadsGated))]
    public void SwishGateBackwardMatchesFiniteDifferences(string model)
    {
        var (inner, forward, backward) = SwishKernels(model);
        int n = Rows * inner;
        var rng = new Random(4);
        double[] x = Random(rng, n, -2, 2), g = Random(rng, n, -4, 4), w = Random(rng, n);
        V xv = h.Zeros(n), gv = h.Zeros(n), y = h.Zeros(n);
        double Loss()
        {
            Set(xv, x);
            Set(gv, g);
            Launch(n, i => forward(i, xv, gv, y));
            return Dot(w, Get(y));
        }
        double[] fdX = NumericGradient(x, Loss), fdG = NumericGradient(g, Loss);

        Loss();
        AssertClose("y", x.Select((v, i) => v * ReferenceTransformer.Silu(g[i])).ToArray(), Get(y), 1e-15, 1e-14);
        V dy = h.Upload(w), dx = h.Upload(Random(rng, n)), dg = h.Upload(Random(rng, n));
        Launch(n, i => backward(i, xv, gv, dy, dx, dg));
        AssertClose("dx (overwritten)", fdX, Get(dx));
        AssertClose("dg (overwritten)", fdG, Get(dg));
    }

    // ------------------------------------------------------------------ state transition

    delegate void TransitionFwd(Index1D i, V rIn, V bias, V a);
    delegate void TransitionBwd(Index1D i, V rIn, V bias, V da, V dr);

    static (int Heads, double Frac, bool AblateComplex, TransitionFwd Forward, TransitionBwd Backward) TransitionKernels(string model) => model switch
    {
        nameof(PreMaxHeads) => (PreMaxHeads.Heads, 0.7, false, PreMaxHeads.Kernels.TransitionForward,
            PreMaxHeads.Kernels.TransitionBackward),
        nameof(PreHeadsSubNorm) => (PreHeadsSubNorm.Heads, 0.9, false, PreHeadsSubNorm.Kernels.TransitionForward,
            PreHeadsSubNorm.Kernels.TransitionBackward),
        nameof(PostHeadsGated) => (PostHeadsGated.Heads, 0.9, false, PostHeadsGated.Kernels.TransitionForward,
            PostHeadsGated.Kernels.TransitionBackward),
        nameof(PreRealGates) => (PreRealGates.Heads, 0.9, true, PreRealGates.Kernels.TransitionForward,
            PreRealGates.Kernels.TransitionBackward),
        _ => throw new ArgumentException(model),
    };

    [Theory]
    [InlineData(nameof(PreMaxHeads))]
    [InlineData(nameof(PreHeadsSubNorm))]
    [InlineData(nameof(PostHeadsGated))]
    [InlineData(nameof(PreRealGates))]
    public void TransitionBackwardMatchesFiniteDifferencesTimesFrac(string model)
    {
        var (heads, frac, ablateComplex, forward, backward) = TransitionKernels(model);
        int width = 2 * heads, n = Rows * width;
        var rng = new Random(5);
        double[] r = Random(rng, n, -2, 2), bias = Random(rng, width), w = Random(rng, n);
        V rv = h.Zeros(n), bv = h.Zeros(width), a = h.Zeros(n);
        double Loss()
        {
            Set(rv, r);
            Set(bv, bias);
            Launch(Rows * heads, i => forward(i, rv, bv, a));
            return Dot(w, Get(a));
        }
        double[] fdR = NumericGradient(r, Loss), fdBias = NumericGradient(bias, Loss);

        Loss();
        var expectedA = new double[n];
        for (int j = 0; j < Rows * heads; j++)
        {
            var (re, im) = ReferenceTransformer.StateTransition(r[2 * j] + bias[2 * j % width], r[2 * j + 1] + bias[(2 * j + 1) % width],
                ablateComplex, false);
            expectedA[2 * j] = re;
            expectedA[2 * j + 1] = im;
        }
        double[] aOut = Get(a);
        AssertClose("a", expectedA, aOut, 1e-15, 1e-13);

        V da = h.Upload(w), dr = h.Upload(Random(rng, n));
        Launch(Rows * heads, i => backward(i, rv, bv, da, dr));
        double[] drOut = Get(dr);
        AssertClose($"dr (overwritten) = {frac}·∂L/∂r", Scale(frac, fdR), drOut);
        double[] dBias0 = Random(rng, width);
        V dBias = h.Upload(dBias0);
        h.ColumnSum(Rows, width, dr, dBias);
        AssertClose($"dBias = column sums of dr = {frac}·∂L/∂b", Scale(frac, fdBias), Minus(Get(dBias), dBias0));

        if (ablateComplex)
            for (int j = 0; j < Rows * heads; j++)
            {
                Assert.Equal(0.0, aOut[2 * j + 1]);
                Assert.Equal(0.0, drOut[2 * j + 1]);
                Assert.Equal(0.0, fdR[2 * j + 1]);
            }
    }

    // ------------------------------------------------------------------ scans

    delegate void ScanFwd(Index1D i, int seq, V qkv, V a, V o, V states, V carry);
    delegate void ScanBwd(Index1D i, int seq, V qkv, V a, V states, V dO, V dQkv, V da);

    static (int Inner, bool HasA, ScanFwd Forward, ScanBwd Backward) MaxHeadsScan(string model) => model switch
    {
        nameof(PreMaxHeads) => (PreMaxHeads.DimInner, true, PreMaxHeads.Kernels.ScanForward, PreMaxHeads.Kernels.ScanBackward),
        nameof(PreRealGates) => (PreRealGates.DimInner, true, PreRealGates.Kernels.ScanForward, PreRealGates.Kernels.ScanBackward),
        nameof(PostAblated) => (PostAblated.DimInner, false,
            (i, seq, qkv, _, o, states, carry) => PostAblated.Kernels.ScanForward(i, seq, qkv, o, states, carry),
            (i, seq, qkv, _, states, dO, dQkv, _) => PostAblated.Kernels.ScanBackward(i, seq, qkv, states, dO, dQkv)),
        _ => throw new ArgumentException(model),
    };

    /// <summary>Random complex transitions [rows, heads, 2] with magnitudes in [0.3, 0.95] and any phase.</summary>
    static double[] RandomTransitions(Random rng, int rows, int heads)
    {
        var a = new double[rows * heads * 2];
        for (int j = 0; j < rows * heads; j++)
        {
            double m = 0.3 + 0.65 * rng.NextDouble(), phase = 2 * Math.PI * rng.NextDouble();
            a[2 * j] = m * Math.Cos(phase);
            a[2 * j + 1] = m * Math.Sin(phase);
        }
        return a;
    }

    [Theory]
    [InlineData(nameof(PreMaxHeads))]
    [InlineData(nameof(PreRealGates))]
    [InlineData(nameof(PostAblated))]
    public void MaxHeadsScanBackwardMatchesFiniteDifferences(string model)
    {
        var (inner, hasA, forward, backward) = MaxHeadsScan(model);
        int rows = Batch * Seq, heads = inner;
        var rng = new Random(6);
        double[] qkv = Random(rng, rows * 3 * inner), a = RandomTransitions(rng, rows, heads), w = Random(rng, rows * inner);
        V qkvV = h.Zeros(qkv.Length), aV = h.Zeros(a.Length), o = h.Zeros(rows * inner), states = h.Zeros(rows * inner * 2);
        double Loss()
        {
            Set(qkvV, qkv);
            Set(aV, a);
            var carry = h.Zeros(Batch * inner * 2);
            Launch(Batch * inner, i => forward(i, Seq, qkvV, aV, o, states, carry));
            return Dot(w, Get(o));
        }
        double[] fdQkv = NumericGradient(qkv, Loss), fdA = hasA ? NumericGradient(a, Loss) : [];

        Loss();
        V dO = h.Upload(w), dQkv = h.Upload(Random(rng, qkv.Length)), da = h.Upload(Random(rng, a.Length));
        Launch(Batch * inner, i => backward(i, Seq, qkvV, aV, states, dO, dQkv, da));
        AssertClose("dQkv (overwritten)", fdQkv, Get(dQkv));
        if (hasA) AssertClose("da (overwritten)", fdA, Get(da)); // AblateStateTransition: a = 1, no da
    }

    delegate void StatesFwd(Index1D i, int seq, V qkv, V a, V states, V carry);
    delegate void OutputFwd(Index1D i, V qkv, V states, V o);
    delegate void StatesBwd(Index1D i, int seq, V qkv, V a, V dO, V grads);
    delegate void InputsBwd(Index1D i, int seq, V qkv, V states, V grads, V dO, V dQkv, V da);

    static (int Heads, int P, StatesFwd States, OutputFwd Output, StatesBwd StatesBack, InputsBwd InputsBack) HeadsScan(string model) => model switch
    {
        nameof(PreHeadsSubNorm) => (PreHeadsSubNorm.Heads, PreHeadsSubNorm.HeadDim, PreHeadsSubNorm.Kernels.ScanStatesForward,
            PreHeadsSubNorm.Kernels.ScanOutputForward, PreHeadsSubNorm.Kernels.ScanStatesBackward, PreHeadsSubNorm.Kernels.ScanInputsBackward),
        nameof(PostHeadsGated) => (PostHeadsGated.Heads, PostHeadsGated.HeadDim, PostHeadsGated.Kernels.ScanStatesForward,
            PostHeadsGated.Kernels.ScanOutputForward, PostHeadsGated.Kernels.ScanStatesBackward, PostHeadsGated.Kernels.ScanInputsBackward),
        _ => throw new ArgumentException(model),
    };

    [Theory]
    [InlineData(nameof(PreHeadsSubNorm))]
    [InlineData(nameof(PostHeadsGated))]
    public void HeadsScanBackwardMatchesFiniteDifferences(string model)
    {
        var (heads, p, statesForward, outputForward, statesBackward, inputsBackward) = HeadsScan(model);
        int rows = Batch * Seq, inner = heads * p, elements = Batch * heads * p * p;
        Assert.Equal(model == nameof(PreHeadsSubNorm) ? 2 : 4, p);
        var rng = new Random(7);
        double[] qkv = Random(rng, rows * 3 * inner), a = RandomTransitions(rng, rows, heads), w = Random(rng, rows * inner);
        V qkvV = h.Zeros(qkv.Length), aV = h.Zeros(a.Length), o = h.Zeros(rows * inner), states = h.Zeros(rows * heads * p * p * 2);
        double Loss()
        {
            Set(qkvV, qkv);
            Set(aV, a);
            var carry = h.Zeros(elements * 2);
            Launch(elements, i => statesForward(i, Seq, qkvV, aV, states, carry));
            Launch(rows * inner, i => outputForward(i, qkvV, states, o));
            return Dot(w, Get(o));
        }
        double[] fdQkv = NumericGradient(qkv, Loss), fdA = NumericGradient(a, Loss);

        Loss();
        V dO = h.Upload(w), grads = h.Upload(Random(rng, (int)states.Length));
        V dQkv = h.Upload(Random(rng, qkv.Length)), da = h.Upload(Random(rng, a.Length));
        Launch(elements, i => statesBackward(i, Seq, qkvV, aV, dO, grads));
        Launch(rows * heads, i => inputsBackward(i, Seq, qkvV, states, grads, dO, dQkv, da));
        AssertClose("dQkv (overwritten)", fdQkv, Get(dQkv));
        AssertClose("da (overwritten)", fdA, Get(da));
    }

    /// <summary>Splits qkv [rows, 3·inner] and a [rows, heads, 2] into the reference's q, k, v, aRe, aIm.</summary>
    static (double[] Q, double[] K, double[] V, double[] ARe, double[] AIm) Split(double[] qkv, double[]? a, int rows, int inner, int heads)
    {
        double[] q = new double[rows * inner], k = new double[rows * inner], v = new double[rows * inner];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < inner; c++)
            {
                q[r * inner + c] = qkv[r * 3 * inner + c];
                k[r * inner + c] = qkv[r * 3 * inner + inner + c];
                v[r * inner + c] = qkv[r * 3 * inner + 2 * inner + c];
            }
        double[] re = new double[rows * heads], im = new double[rows * heads];
        for (int j = 0; j < rows * heads; j++)
        {
            re[j] = a is null ? 1 : a[2 * j];
            im[j] = a is null ? 0 : a[2 * j + 1];
        }
        return (q, k, v, re, im);
    }

    [Theory]
    [InlineData(nameof(PreMaxHeads))]
    [InlineData(nameof(PostAblated))]
    [InlineData(nameof(PreHeadsSubNorm))]
    [InlineData(nameof(PostHeadsGated))]
    public void ForwardScanMatchesSequentialReference(string model)
    {
        int rows = Batch * Seq;
        var rng = new Random(8);
        double[] o;
        double[] qkv;
        double[]? a;
        int heads, p;
        if (model is nameof(PreMaxHeads) or nameof(PostAblated))
        {
            var (inner, hasA, forward, _) = MaxHeadsScan(model);
            (heads, p) = (inner, 1);
            qkv = Random(rng, rows * 3 * inner);
            a = hasA ? RandomTransitions(rng, rows, heads) : null;
            V qkvV = h.Upload(qkv), aV = h.Upload(a ?? new double[2 * rows * heads]), oV = h.Zeros(rows * inner);
            V states = h.Zeros(rows * inner * 2);
            var carry = h.Zeros(Batch * inner * 2);
            Launch(Batch * inner, i => forward(i, Seq, qkvV, aV, oV, states, carry));
            o = Get(oV);
        }
        else
        {
            var (hh, pp, statesForward, outputForward, _, _) = HeadsScan(model);
            (heads, p) = (hh, pp);
            qkv = Random(rng, rows * 3 * heads * p);
            a = RandomTransitions(rng, rows, heads);
            V qkvV = h.Upload(qkv), aV = h.Upload(a), oV = h.Zeros(rows * heads * p), states = h.Zeros(rows * heads * p * p * 2);
            var carry = h.Zeros(Batch * heads * p * p * 2);
            Launch(Batch * heads * p * p, i => statesForward(i, Seq, qkvV, aV, states, carry));
            Launch(rows * heads * p, i => outputForward(i, qkvV, states, oV));
            o = Get(oV);
        }
        var (q, k, v, re, im) = Split(qkv, a, rows, heads * p, heads);
        double[] expected = ReferenceTransformer.ScanReference(Batch, Seq, heads, p, q, k, v, re, im);
        Assert.Contains(expected, e => Math.Abs(e) > 0.1);
        AssertClose("o", expected, o, 1e-14, 1e-12);
    }

    [Fact]
    public void MaxHeadsReverseScanMatchesSequentialLoop()
    {
        const int inner = PreMaxHeads.DimInner, rows = Batch * Seq;
        var rng = new Random(9);
        double[] qkv = Random(rng, rows * 3 * inner), a = RandomTransitions(rng, rows, inner), dOut = Random(rng, rows * inner);
        V qkvV = h.Upload(qkv), aV = h.Upload(a), o = h.Zeros(rows * inner), states = h.Zeros(rows * inner * 2);
        V dO = h.Upload(dOut), dQkv = h.Upload(Random(rng, qkv.Length)), da = h.Upload(Random(rng, a.Length));
        var carry = h.Zeros(Batch * inner * 2);
        Launch(Batch * inner, i => PreMaxHeads.Kernels.ScanForward(i, Seq, qkvV, aV, o, states, carry));
        Launch(Batch * inner, i => PreMaxHeads.Kernels.ScanBackward(i, Seq, qkvV, aV, states, dO, dQkv, da));

        // The same recurrences written out: S_t = a_t·S_{t−1} + k_t·v_t, Ĝ_t = q_t·dO_t + conj(a_{t+1})·Ĝ_{t+1},
        // dq = Re S_t·dO_t, dk = Re Ĝ_t·v_t, dv = Re Ĝ_t·k_t, da_t = conj(S_{t−1})·Ĝ_t.
        var expectedStates = new double[rows * inner * 2];
        var expectedDQkv = new double[qkv.Length];
        var expectedDa = new double[a.Length];
        for (int b = 0; b < Batch; b++)
            for (int c = 0; c < inner; c++)
            {
                Complex A(int t) => new(a[((b * Seq + t) * inner + c) * 2], a[((b * Seq + t) * inner + c) * 2 + 1]);
                double Q(int t) => qkv[(b * Seq + t) * 3 * inner + c];
                double K(int t) => qkv[(b * Seq + t) * 3 * inner + inner + c];
                double Vv(int t) => qkv[(b * Seq + t) * 3 * inner + 2 * inner + c];
                var s = new Complex[Seq];
                for (int t = 0; t < Seq; t++)
                {
                    s[t] = A(t) * (t > 0 ? s[t - 1] : Complex.Zero) + K(t) * Vv(t);
                    expectedStates[((b * Seq + t) * inner + c) * 2] = s[t].Real;
                    expectedStates[((b * Seq + t) * inner + c) * 2 + 1] = s[t].Imaginary;
                }
                Complex g = Complex.Zero;
                for (int t = Seq - 1; t >= 0; t--)
                {
                    int row = b * Seq + t;
                    double dOt = dOut[row * inner + c];
                    g = Q(t) * dOt + (t + 1 < Seq ? Complex.Conjugate(A(t + 1)) * g : Complex.Zero);
                    expectedDQkv[row * 3 * inner + c] = s[t].Real * dOt;
                    expectedDQkv[row * 3 * inner + inner + c] = g.Real * Vv(t);
                    expectedDQkv[row * 3 * inner + 2 * inner + c] = g.Real * K(t);
                    Complex gradA = t > 0 ? Complex.Conjugate(s[t - 1]) * g : Complex.Zero;
                    expectedDa[(row * inner + c) * 2] = gradA.Real;
                    expectedDa[(row * inner + c) * 2 + 1] = gradA.Imaginary;
                }
            }
        AssertClose("states", expectedStates, Get(states), 1e-14, 1e-12);
        AssertClose("dQkv", expectedDQkv, Get(dQkv), 1e-14, 1e-12);
        AssertClose("da", expectedDa, Get(da), 1e-14, 1e-12);
    }

    // ------------------------------------------------------------------ embedding, loss, biases

    [Fact]
    public void EmbeddingBackwardMatchesFiniteDifferencesWithRepeatedTokens()
    {
        const int dim = PreMaxHeads.Dim, vocab = PreMaxHeads.NumTokens;
        int[] tokens = [3, 7, 3, 0, 10, 3];
        int rows = tokens.Length;
        var rng = new Random(10);
        double[] emb = Random(rng, vocab * dim), w = Random(rng, rows * dim);
        var tokensV = h.Upload(tokens);
        V embV = h.Zeros(emb.Length), x = h.Zeros(rows * dim);
        double Loss()
        {
            Set(embV, emb);
            Launch(rows * dim, i => PreMaxHeads.Kernels.EmbeddingForward(i, tokensV, embV, x));
            return Dot(w, Get(x));
        }
        double[] fdEmb = NumericGradient(emb, Loss);

        Loss();
        AssertClose("x", Enumerable.Range(0, rows * dim).Select(j => emb[tokens[j / dim] * dim + j % dim]).ToArray(), Get(x), 0, 0);
        double[] dEmb0 = Random(rng, emb.Length);
        V dx = h.Upload(w), dEmb = h.Upload(dEmb0);
        Launch(vocab * dim, i => PreMaxHeads.Kernels.EmbeddingBackward(i, tokensV, dx, dEmb));
        double[] dEmbOut = Minus(Get(dEmb), dEmb0);
        AssertClose("dEmb (accumulated)", fdEmb, dEmbOut);
        // Token 3 appears three times: its row is the sum of three rows of dx.
        for (int d = 0; d < dim; d++)
            Assert.Equal(w[0 * dim + d] + w[2 * dim + d] + w[5 * dim + d], dEmbOut[3 * dim + d], 1e-12);
    }

    [Fact]
    public void CrossEntropyGradientIsScaleTimesFiniteDifferencesOfTheLossSum()
    {
        const int vocab = PreMaxHeads.NumTokens;
        const double scale = 0.37;
        int[] targets = [2, 10, 2];
        var rng = new Random(11);
        double[] logits = Random(rng, Rows * vocab, -3, 3);
        var targetsV = h.Upload(targets);
        V logitsV = h.Zeros(logits.Length), loss = h.Zeros(Rows), dLogits = h.Upload(Random(rng, logits.Length));
        double Loss()
        {
            Set(logitsV, logits);
            Launch(Rows, i => PreMaxHeads.Kernels.CrossEntropy(i, logitsV, targetsV, scale, loss, dLogits));
            return Get(loss).Sum();
        }
        double[] fd = NumericGradient(logits, Loss);

        Loss();
        var expectedLoss = new double[Rows];
        for (int r = 0; r < Rows; r++)
            expectedLoss[r] = Math.Log(Enumerable.Range(0, vocab).Sum(v => Math.Exp(logits[r * vocab + v]))) - logits[r * vocab + targets[r]];
        AssertClose("loss", expectedLoss, Get(loss), 1e-14, 1e-13);
        AssertClose("dLogits (overwritten) = scale·∂Σloss/∂logits", Scale(scale, fd), Get(dLogits));
    }

    [Fact]
    public void AddBiasGradientIsColumnSum()
    {
        const int dim = PreMaxHeads.Dim, n = Rows * dim;
        var rng = new Random(12);
        double[] x = Random(rng, n), bias = Random(rng, dim), w = Random(rng, n);
        V xv = h.Zeros(n), bv = h.Zeros(dim);
        double Loss()
        {
            Set(xv, x);
            Set(bv, bias);
            Launch(n, i => PreMaxHeads.Kernels.AddBiasDim(i, xv, bv));
            return Dot(w, Get(xv));
        }
        double[] fdX = NumericGradient(x, Loss), fdBias = NumericGradient(bias, Loss);

        Loss();
        AssertClose("x + bias (in place)", x.Select((v, i) => v + bias[i % dim]).ToArray(), Get(xv), 0, 0);
        AssertClose("∂L/∂x = dy", fdX, w);
        double[] dBias0 = Random(rng, dim);
        V dy = h.Upload(w), dBias = h.Upload(dBias0);
        h.ColumnSum(Rows, dim, dy, dBias);
        AssertClose("dBias = column sums of dy (accumulated)", fdBias, Minus(Get(dBias), dBias0));
    }

    [Theory]
    [InlineData(nameof(PostAblated))]
    [InlineData(nameof(PreRealGates))]
    public void AddGradientIsTheOutputGradientForBothInputs(string model)
    {
        Action<Index1D, V, V, V> add = model switch
        {
            nameof(PostAblated) => PostAblated.Kernels.Add,
            nameof(PreRealGates) => PreRealGates.Kernels.Add,
            _ => throw new ArgumentException(model),
        };
        const int n = Rows * 8;
        var rng = new Random(13);
        double[] x = Random(rng, n), y = Random(rng, n), w = Random(rng, n);
        V xv = h.Zeros(n), yv = h.Zeros(n), sum = h.Zeros(n);
        double Loss()
        {
            Set(xv, x);
            Set(yv, y);
            Launch(n, i => add(i, xv, yv, sum));
            return Dot(w, Get(sum));
        }
        double[] fdX = NumericGradient(x, Loss), fdY = NumericGradient(y, Loss);

        Loss();
        AssertClose("sum", x.Select((v, i) => v + y[i]).ToArray(), Get(sum), 0, 0);
        AssertClose("∂L/∂a = dy", fdX, w);
        AssertClose("∂L/∂b = dy", fdY, w);
    }
}
