using ILGPU;
using static GateLoop.Numerics.Tests.KernelHarness;
using V = ILGPU.ArrayView<double>;

namespace GateLoop.Numerics.Tests;

/// <summary>
/// The SimpleGateLoop scan kernels one at a time, in double precision: each forward (plain and log-space, forward and
/// reverse order) against a sequential loop, the reverse scan against central finite differences of each forward,
/// and where the log-space (Heinsen) scan loses accuracy that the plain scan keeps.
/// </summary>
public sealed class SimpleGateLoopKernelTests(KernelHarness h) : IClassFixture<KernelHarness>
{
    const int Batch = 2, Seq = 5, Dim = 6;

    delegate void ScanForward(Index1D i, int seq, V z, V initial, V o, V gate, V state);
    delegate void ScanBackward(Index1D i, int seq, V z, V initial, V dO, V dZ);

    static (ScanForward Forward, ScanBackward Backward, bool Reverse) Kernels(string layer) => layer switch
    {
        nameof(SglPre) => (SglPre.Kernels.ScanForward, SglPre.Kernels.ScanBackward, false),
        nameof(SglPreRev) => (SglPreRev.Kernels.ScanForward, SglPreRev.Kernels.ScanBackward, true),
        nameof(SglPreHeinsen) => (SglPreHeinsen.Kernels.HeinsenScanForward, SglPreHeinsen.Kernels.ScanBackward, false),
        nameof(SglPreRevHeinsen) => (SglPreRevHeinsen.Kernels.HeinsenScanForward, SglPreRevHeinsen.Kernels.ScanBackward, true),
        _ => throw new ArgumentException(layer),
    };

    /// <summary>o, the final state and the cumulative gate by the plain recurrence, visiting positions in scan order.</summary>
    static (double[] O, double[] State, double[] Gate) Sequential(double[] z, double[] initial, double[] gate, int batch, int seq, bool reverse)
    {
        var o = new double[batch * seq * Dim];
        var state = (double[])initial.Clone();
        gate = (double[])gate.Clone();
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < Dim; c++)
                for (int i = 0; i < seq; i++)
                {
                    int row = b * seq + (reverse ? seq - 1 - i : i), k = row * 3 * Dim + c;
                    double a = 1 / (1 + Math.Exp(-z[k + 2 * Dim]));
                    state[b * Dim + c] = a * state[b * Dim + c] + z[k + Dim];
                    gate[b * Dim + c] *= a;
                    o[row * Dim + c] = z[k] * state[b * Dim + c];
                }
        return (o, state, gate);
    }

    /// <summary>Runs a forward scan kernel; z is left as the kernel leaves it ([q | S | a]).</summary>
    (double[] O, double[] State, double[] Gate, V Z) Run(ScanForward forward, double[] z, double[] initial, double[] gate, int batch, int seq)
    {
        V zv = h.Upload(z), iv = h.Upload(initial), o = h.Zeros(batch * seq * Dim), gv = h.Upload(gate), sv = h.Zeros(batch * Dim);
        Launch(batch * Dim, i => forward(i, seq, zv, iv, o, gv, sv));
        return (Get(o), Get(sv), Get(gv), zv);
    }

    static double[] Z(Random rng, int rows, double kvLo = -1, double kvHi = 1, double logitLo = -3, double logitHi = 3)
    {
        var z = new double[rows * 3 * Dim];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < Dim; c++)
            {
                z[r * 3 * Dim + c] = 2 * rng.NextDouble() - 1;
                z[r * 3 * Dim + Dim + c] = kvLo + (kvHi - kvLo) * rng.NextDouble();
                z[r * 3 * Dim + 2 * Dim + c] = logitLo + (logitHi - logitLo) * rng.NextDouble();
            }
        return z;
    }

    [Theory]
    [InlineData(nameof(SglPre))]
    [InlineData(nameof(SglPreRev))]
    [InlineData(nameof(SglPreHeinsen))]
    [InlineData(nameof(SglPreRevHeinsen))]
    public void Forward_scans_match_the_sequential_recurrence(string layer)
    {
        var (forward, _, reverse) = Kernels(layer);
        var rng = new Random(1);
        double[] z = Z(rng, Batch * Seq), initial = Random(rng, Batch * Dim, -2, 2), gate = Random(rng, Batch * Dim, 0.2, 1);
        initial[3] = 0; // a zero state is the log-space scan's special case
        var expected = Sequential(z, initial, gate, Batch, Seq, reverse);
        var (o, state, gateOut, zv) = Run(forward, z, initial, gate, Batch, Seq);
        AssertClose("o", expected.O, o, 1e-14, 1e-13);
        AssertClose("state", expected.State, state, 1e-14, 1e-13);
        AssertClose("gate", expected.Gate, gateOut, 1e-15, 1e-13);
        // z now holds [q | S | a] for the backward.
        var after = Get(zv);
        for (int r = 0; r < Batch * Seq; r++)
            for (int c = 0; c < Dim; c++)
            {
                Assert.Equal(z[r * 3 * Dim + c], after[r * 3 * Dim + c]);
                Assert.Equal(1 / (1 + Math.Exp(-z[r * 3 * Dim + 2 * Dim + c])), after[r * 3 * Dim + 2 * Dim + c], 1e-15);
                if (expected.O[r * Dim + c] != 0)
                    Assert.Equal(expected.O[r * Dim + c] / z[r * 3 * Dim + c], after[r * 3 * Dim + Dim + c], 1e-12);
            }
    }

    /// <summary>The one reverse scan is the exact gradient of each forward: ∂(Σ w·o)/∂z for q, kv and the gate logits.</summary>
    [Theory]
    [InlineData(nameof(SglPre))]
    [InlineData(nameof(SglPreRev))]
    [InlineData(nameof(SglPreHeinsen))]
    [InlineData(nameof(SglPreRevHeinsen))]
    public void Backward_scan_matches_finite_differences(string layer)
    {
        var (forward, backward, _) = Kernels(layer);
        var rng = new Random(2);
        double[] z = Z(rng, Batch * Seq), initial = Random(rng, Batch * Dim, -2, 2), gate = Random(rng, Batch * Dim, 0.2, 1);
        double[] w = Random(rng, Batch * Seq * Dim);
        double Loss() => Dot(w, Run(forward, z, initial, gate, Batch, Seq).O);
        double[] numeric = NumericGradient(z, Loss);

        var zv = Run(forward, z, initial, gate, Batch, Seq).Z;
        V iv = h.Upload(initial), dO = h.Upload(w), dZ = h.Upload(Random(rng, z.Length)); // overwritten
        Launch(Batch * Dim, i => backward(i, Seq, zv, iv, dO, dZ));
        AssertClose("dZ", numeric, Get(dZ));
    }

    // ------------------------------------------------------------------ the log-space scan's accuracy

    static double MaxRelativeError(double[] expected, double[] actual) =>
        expected.Select((e, i) => Math.Abs(actual[i] - e) / Math.Abs(e)).Max();

    /// <summary>On well-conditioned input (positive kv, moderate length) the two forward scans agree to rounding.</summary>
    [Fact]
    public void Heinsen_agrees_with_the_plain_scan_on_positive_kv()
    {
        const int seq = 256;
        var rng = new Random(3);
        double[] z = Z(rng, seq, kvLo: 0.1, kvHi: 1), initial = Random(rng, Dim, 0, 1), gate = new double[Dim];
        Array.Fill(gate, 1.0);
        var plain = Run(SglPre.Kernels.ScanForward, z, initial, gate, 1, seq);
        var heinsen = Run(SglPreHeinsen.Kernels.HeinsenScanForward, z, initial, gate, 1, seq);
        Assert.True(MaxRelativeError(plain.O, heinsen.O) < 1e-13, $"relative difference {MaxRelativeError(plain.O, heinsen.O):E2}");
        AssertClose("state", plain.State, heinsen.State, 0, 1e-13);
    }

    /// <summary>
    /// Long sequences: with a = σ(0) = ½ and kv = 1 the state is exactly 2 − 2^(1−t), which the plain scan reproduces to
    /// the last bit. The log-space scan forms a*_t = −t·ln 2 and then the differences a*_t − a*_s, each off by about
    /// |a*_t|·ε, so its relative error grows with t (here past 1e-12 at t = 10^5, where the plain scan is exact).
    /// </summary>
    [Fact]
    public void Heinsen_loses_accuracy_on_long_sequences()
    {
        const int seq = 100_000;
        var z = new double[seq * 3 * Dim];
        for (int r = 0; r < seq; r++)
            for (int c = 0; c < Dim; c++)
            {
                z[r * 3 * Dim + c] = 1;
                z[r * 3 * Dim + Dim + c] = 1;
            }
        double[] initial = new double[Dim], gate = Enumerable.Repeat(1.0, Dim).ToArray();
        var exact = new double[seq * Dim];
        for (int t = 0; t < seq; t++)
            for (int c = 0; c < Dim; c++) exact[t * Dim + c] = 2 - Math.ScaleB(1, -t);

        double plain = MaxRelativeError(exact, Run(SglPre.Kernels.ScanForward, z, initial, gate, 1, seq).O);
        double heinsen = MaxRelativeError(exact, Run(SglPreHeinsen.Kernels.HeinsenScanForward, z, initial, gate, 1, seq).O);
        Assert.True(plain == 0, $"plain scan relative error {plain:E2}");
        Assert.True(heinsen > 1e-12, $"log-space scan relative error {heinsen:E2}");
    }

    /// <summary>
    /// Opposite signs that nearly cancel: kv_1 = −a_1·S_0 + 2⁻³⁰ leaves S_1 ≈ 1e-9 (the plain scan's subtraction is
    /// exact), and small kv follow. The log-space sum keeps the cancelled O(1) terms, so its error stays ε relative to
    /// them (about 1e-7 relative to the 1e-9-sized states), while the plain scan stays within a few ε. Truth: the
    /// recurrence in decimal (28 digits) on exactly the same binary inputs.
    /// </summary>
    [Fact]
    public void Heinsen_loses_accuracy_when_opposite_signs_cancel()
    {
        const int seq = 40;
        var rng = new Random(4);
        var z = Z(rng, seq, logitLo: -1, logitHi: 1);
        static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x)); // as the plain kernel computes a
        for (int c = 0; c < Dim; c++)
            for (int t = 0; t < seq; t++)
            {
                z[t * 3 * Dim + c] = 1; // o = S
                z[t * 3 * Dim + Dim + c] = t == 0 ? 1
                    : t == 1 ? -Sigmoid(z[t * 3 * Dim + 2 * Dim + c]) + Math.ScaleB(1, -30)
                    : Math.ScaleB(rng.Next(512, 1024), -40);
            }
        var truth = new double[seq * Dim];
        for (int c = 0; c < Dim; c++)
        {
            decimal s = 0;
            for (int t = 0; t < seq; t++)
            {
                s = Exact(Sigmoid(z[t * 3 * Dim + 2 * Dim + c])) * s + Exact(z[t * 3 * Dim + Dim + c]);
                truth[t * Dim + c] = (double)s;
            }
        }
        double[] initial = new double[Dim], gate = Enumerable.Repeat(1.0, Dim).ToArray();
        double plain = MaxRelativeError(truth, Run(SglPre.Kernels.ScanForward, z, initial, gate, 1, seq).O);
        double heinsen = MaxRelativeError(truth, Run(SglPreHeinsen.Kernels.HeinsenScanForward, z, initial, gate, 1, seq).O);
        Assert.True(plain < 1e-15, $"plain scan relative error {plain:E2}");
        Assert.True(heinsen > 1e-9, $"log-space scan relative error {heinsen:E2}");
    }

    // (decimal)double keeps only 15 digits; |v| < 4 with 2⁻⁶⁰ resolution converts exactly, then rounds to 28 digits.
    static decimal Exact(double v) => (decimal)(long)Math.ScaleB(v, 60) / (1L << 60);

    /// <summary>
    /// kv = 0 and a gate that underflows to 0 are exact in the plain scan and must stay finite in log space; there the
    /// saturated gate puts a*_t near −800, so the rest of the sequence is only good to about 800·ε relative.
    /// </summary>
    [Fact]
    public void Heinsen_handles_zero_kv_and_saturated_gates()
    {
        const int seq = 6;
        var rng = new Random(5);
        var z = Z(rng, seq);
        for (int c = 0; c < Dim; c++)
        {
            z[0 * 3 * Dim + Dim + c] = 0;                 // nothing enters at the start...
            z[2 * 3 * Dim + 2 * Dim + c] = -800;          // ...and σ(−800) = 0 wipes the state at t = 2
            z[4 * 3 * Dim + Dim + c] = 0;
        }
        double[] initial = new double[Dim], gate = Enumerable.Repeat(1.0, Dim).ToArray();
        var plain = Run(SglPre.Kernels.ScanForward, z, initial, gate, 1, seq);
        var heinsen = Run(SglPreHeinsen.Kernels.HeinsenScanForward, z, initial, gate, 1, seq);
        Assert.All(heinsen.O, v => Assert.True(double.IsFinite(v)));
        AssertClose("o", plain.O, heinsen.O, 1e-15, 1e-10);
    }
}
