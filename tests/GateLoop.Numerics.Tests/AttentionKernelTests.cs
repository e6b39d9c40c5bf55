using GateLoop.Tests.Shared;
using ILGPU;
using static GateLoop.Numerics.Tests.KernelHarness;
using V = ILGPU.ArrayView<double>;

namespace GateLoop.Numerics.Tests;

/// <summary>
/// The attention baseline's kernels one stage at a time against central finite differences of their forward
/// (L = Σ w·y): scores → softmax (or raw) → weighted values, the rotary embedding, the relative-position scaling.
/// </summary>
public sealed class AttentionKernelTests(KernelHarness h) : IClassFixture<KernelHarness>
{
    const int Batch = 2, Seq = 4, Rows = Batch * Seq;

    delegate void Scores(Index1D i, int seq, V qkv, V p);
    delegate void RowOp(Index1D i, int seq, V p);
    delegate void RowBack(Index1D i, int seq, V p, V dp);
    delegate void Output(Index1D i, int seq, V p, V qkv, V o);
    delegate void GradValues(Index1D i, int seq, V p, V dO, V dQkv);
    delegate void GradProbs(Index1D i, int seq, V qkv, V dO, V dp);
    delegate void GradQk(Index1D i, int seq, V qkv, V ds, V dQkv);

    sealed record Core(int Heads, int HeadDim, Scores Scores, RowOp? Softmax, RowBack? SoftmaxBack, Output Output,
        GradValues GradValues, GradProbs GradProbs, GradQk GradQk);

    static Core CoreOf(string model) => model switch
    {
        nameof(AttnRotary) => new(AttnRotary.Heads, AttnRotary.HeadDim, AttnRotary.Kernels.AttentionScores, AttnRotary.Kernels.AttentionSoftmax,
            AttnRotary.Kernels.AttentionSoftmaxBackward, AttnRotary.Kernels.AttentionOutput, AttnRotary.Kernels.AttentionGradValues,
            AttnRotary.Kernels.AttentionGradProbs, AttnRotary.Kernels.AttentionGradQueriesKeys),
        // Relative positions switch the softmax off by default: the raw masked scores weight the values.
        nameof(AttnRelPos) => new(AttnRelPos.Heads, AttnRelPos.HeadDim, AttnRelPos.Kernels.AttentionScores, null, null,
            AttnRelPos.Kernels.AttentionOutput, AttnRelPos.Kernels.AttentionGradValues, AttnRelPos.Kernels.AttentionGradProbs,
            AttnRelPos.Kernels.AttentionGradQueriesKeys),
        _ => throw new ArgumentException(model),
    };

    [Theory]
    [InlineData(nameof(AttnRotary))]
    [InlineData(nameof(AttnRelPos))]
    public void AttentionBackwardMatchesFiniteDifferences(string model)
    {
        var c = CoreOf(model);
        int inner = c.Heads * c.HeadDim, scores = Batch * c.Heads * Seq * Seq;
        var rng = new Random(11);
        double[] qkv = Random(rng, Rows * 3 * inner), w = Random(rng, Rows * inner);
        V qkvV = h.Zeros(qkv.Length), p = h.Zeros(scores), o = h.Zeros(Rows * inner);
        double Loss()
        {
            Set(qkvV, qkv);
            Launch(scores, i => c.Scores(i, Seq, qkvV, p));
            if (c.Softmax is not null) Launch(Batch * c.Heads * Seq, i => c.Softmax(i, Seq, p));
            Launch(Rows * inner, i => c.Output(i, Seq, p, qkvV, o));
            return Dot(w, Get(o));
        }
        double[] expected = NumericGradient(qkv, Loss);

        Loss();
        V dO = h.Upload(w), dp = h.Upload(Random(rng, scores)), dQkv = h.Upload(Random(rng, qkv.Length));
        Launch(Rows * inner, i => c.GradValues(i, Seq, p, dO, dQkv));
        Launch(scores, i => c.GradProbs(i, Seq, qkvV, dO, dp));
        if (c.SoftmaxBack is not null) Launch(Batch * c.Heads * Seq, i => c.SoftmaxBack(i, Seq, p, dp));
        Launch(Rows * inner, i => c.GradQk(i, Seq, qkvV, dp, dQkv));
        AssertClose("dQkv (overwritten)", expected, Get(dQkv));
    }

    /// <summary>The rotation's gradient is the rotation by the opposite angle (its transpose); v is left alone.</summary>
    [Fact]
    public void RotaryBackwardIsTheTransposedRotation()
    {
        int inner = AttnRotary.DimInner;
        var rng = new Random(12);
        double[] qkv = Random(rng, Rows * 3 * inner), freqs = Random(rng, AttnRotary.HeadDim / 2, 0.1, 1.5), w = Random(rng, qkv.Length);
        V qkvV = h.Zeros(qkv.Length), f = h.Upload(freqs);
        double Loss()
        {
            Set(qkvV, qkv);
            Launch(Rows * inner, i => AttnRotary.Kernels.Rotate(i, Seq, qkvV, f, 1));
            return Dot(w, Get(qkvV));
        }
        double[] expected = NumericGradient(qkv, Loss);
        V dQkv = h.Upload(w);
        Launch(Rows * inner, i => AttnRotary.Kernels.Rotate(i, Seq, dQkv, f, -1));
        AssertClose("dQkv", expected, Get(dQkv));
        // Position 0 is not rotated at all.
        Loss();
        var rotated = Get(qkvV);
        for (int ch = 0; ch < 2 * inner; ch++) Assert.Equal(qkv[ch], rotated[ch], 1e-15);
    }

    delegate void RelForward(Index1D i, V a, V cum, V qkv);
    delegate void RelBackward(Index1D i, V a, V cum, V qkv, V dQkv, V da);

    [Theory]
    [InlineData(nameof(AttnRelPos))]
    [InlineData(nameof(AttnRelPosSoftmax))]
    public void RelativePositionBackwardMatchesFiniteDifferences(string model)
    {
        var (heads, inner, forward, backward) = model == nameof(AttnRelPos)
            ? (AttnRelPos.Heads, AttnRelPos.DimInner, (RelForward)AttnRelPos.Kernels.RelPosForward, (RelBackward)AttnRelPos.Kernels.RelPosBackward)
            : (AttnRelPosSoftmax.Heads, AttnRelPosSoftmax.DimInner, AttnRelPosSoftmax.Kernels.RelPosForward, AttnRelPosSoftmax.Kernels.RelPosBackward);
        var rng = new Random(13);
        double[] qkv = Random(rng, Rows * 3 * inner), a = new double[Rows * inner], w = Random(rng, qkv.Length);
        // Complex gates of magnitude 0.5–0.99 whose running products keep a positive real part. (Where a product's
        // real part falls below the 1e-10 floor, k is scaled by 1e10, beyond what finite differences resolve.)
        for (int j = 0; j < a.Length / 2; j++)
        {
            double m = 0.5 + 0.49 * rng.NextDouble(), phase = 0.3 * (rng.NextDouble() - 0.5);
            a[2 * j] = m * Math.Cos(phase);
            a[2 * j + 1] = m * Math.Sin(phase);
        }
        V qkvV = h.Zeros(qkv.Length), aV = h.Zeros(a.Length), cum = h.Zeros(a.Length);
        double Loss()
        {
            Set(qkvV, qkv);
            Set(aV, a);
            Launch(Rows * heads, i => forward(i, aV, cum, qkvV));
            return Dot(w, Get(qkvV));
        }
        double[] expectedQkv = NumericGradient(qkv, Loss), expectedA = NumericGradient(a, Loss);

        Loss();
        V dQkv = h.Upload(w), da = h.Upload(Random(rng, a.Length));
        Launch(Rows * heads, i => backward(i, aV, cum, qkvV, dQkv, da));
        AssertClose("dQkv", expectedQkv, Get(dQkv));
        AssertClose("da (overwritten)", expectedA, Get(da));
    }
}
