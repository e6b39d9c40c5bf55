using GateLoop.Tests.Shared;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// The SIMD GELU entries (the bias add fused with the lane formula) against the exact GELU in double, over ranges that
/// start and end mid-row and mid-vector.
/// </summary>
public sealed class HostActivationTests
{
    static double Phi(double v) => 0.5 * (1 + Erf(v / Math.Sqrt(2)));

    // erf by its all-positive series (|x| < 4 here), independent of the kernels' approximation.
    static double Erf(double x)
    {
        double ax = Math.Abs(x), term = ax, sum = ax;
        for (int k = 1; k < 200; k++) sum += term *= 2 * ax * ax / (2 * k + 1);
        double y = 2 / Math.Sqrt(Math.PI) * Math.Exp(-ax * ax) * sum;
        return x < 0 ? -y : y;
    }

    [Theory]
    [InlineData(0, PreMaxHeads.Hidden * 5)]
    [InlineData(5, PreMaxHeads.Hidden * 3 - 2)]
    [InlineData(3, PreMaxHeads.Hidden * 2 + 9)]
    public void Gelu_forward_and_backward_match_the_exact_gelu(int from, int to)
    {
        const int width = PreMaxHeads.Hidden;
        using var device = Device.Create("cpu");
        int rows = (to + width - 1) / width, n = rows * width;
        var rng = new Random(7);
        float[] u = [.. Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 8 - 4))];
        float[] bias = [.. Enumerable.Range(0, width).Select(_ => (float)(rng.NextDouble() - 0.5))];
        float[] dz = [.. Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1))];
        using var ub = device.Allocate<float>(n);
        using var bb = device.Allocate<float>(width);
        using var zb = device.Allocate<float>(n);
        using var db = device.Allocate<float>(n);
        ub.CopyFromCPU(u);
        bb.CopyFromCPU(bias);
        db.CopyFromCPU(dz);

        PreMaxHeads.Kernels.Host.BiasGeluForward(from, to, ub.View, bb.View, zb.View);
        PreMaxHeads.Kernels.Host.GeluBackward(from, to, ub.View, db.View, db.View);
        float[] uOut = ub.GetAsArray1D(), z = zb.GetAsArray1D(), du = db.GetAsArray1D();
        for (int i = 0; i < n; i++)
        {
            bool inside = i >= from && i < to;
            double v = inside ? (double)u[i] + bias[i % width] : u[i];
            Assert.Equal((float)v, uOut[i]);
            double gelu = inside ? v * Phi(v) : 0, grad = inside ? dz[i] * (Phi(v) + v * Math.Exp(-v * v / 2) / Math.Sqrt(2 * Math.PI)) : dz[i];
            Assert.True(Math.Abs(z[i] - gelu) <= 2e-6 * (1 + Math.Abs(gelu)), $"z[{i}] = {z[i]}, expected {gelu}");
            Assert.True(Math.Abs(du[i] - grad) <= 2e-6 * (1 + Math.Abs(grad)), $"du[{i}] = {du[i]}, expected {grad}");
        }
    }
}

/// <summary>The SIMD state transition and swish gating against their formulas in double, zero pairs included.</summary>
public sealed class HostTransitionTests
{
    static float[] Random(Random rng, int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 6 - 3))];

    // The generated entries of models whose transitions have a bias of 5 pairs, an ablated one of 3, and none
    // (the attention baseline's relative positions).
    static void Forward(int pairsPerRow, int from, int to, ArrayView<float> r, ArrayView<float> bias, ArrayView<float> a)
    {
        if (pairsPerRow == Pairs5.Heads) Pairs5.Kernels.Host.TransitionForward(from, to, r, bias, a);
        else if (pairsPerRow == Ablated3.Heads) Ablated3.Kernels.Host.TransitionForward(from, to, r, bias, a);
        else AttnRelPos.Kernels.Host.TransitionForward(from, to, r, a);
    }

    static void Backward(int pairsPerRow, int from, int to, ArrayView<float> r, ArrayView<float> bias, ArrayView<float> da, ArrayView<float> dr)
    {
        if (pairsPerRow == Pairs5.Heads) Pairs5.Kernels.Host.TransitionBackward(from, to, r, bias, da, dr);
        else if (pairsPerRow == Ablated3.Heads) Ablated3.Kernels.Host.TransitionBackward(from, to, r, bias, da, dr);
        else AttnRelPos.Kernels.Host.TransitionBackward(from, to, r, da, dr);
    }

    [Theory]
    [InlineData(5, false, true, 0.7f)]
    [InlineData(3, true, true, 0.7f)]
    [InlineData(0, false, false, 0.6f)]
    public void Transition_matches_the_formula(int pairsPerRow, bool ablateComplex, bool zeroPairs, float frac)
    {
        const int from = 1, to = 19, pairs = 20;
        using var device = Device.Create("cpu");
        var rng = new Random(5);
        float[] r = Random(rng, 2 * pairs), bias = Random(rng, 2 * Math.Max(pairsPerRow, 1)), da = Random(rng, 2 * pairs);
        if (zeroPairs)
            foreach (int p in new[] { 2, 7 })
            {
                int b = pairsPerRow > 0 ? 2 * (p % pairsPerRow) : 0;
                (r[2 * p], r[2 * p + 1]) = (-bias[b], ablateComplex ? 5 : -bias[b + 1]);
            }
        using var rb = device.Allocate<float>(r.Length);
        using var bb = device.Allocate<float>(bias.Length);
        using var gb = device.Allocate<float>(da.Length);
        using var ab = device.Allocate<float>(r.Length);
        using var db = device.Allocate<float>(r.Length);
        rb.CopyFromCPU(r);
        bb.CopyFromCPU(bias);
        gb.CopyFromCPU(da);
        var biasView = pairsPerRow > 0 ? bb.View : default;
        Forward(pairsPerRow, from, to, rb.View, biasView, ab.View);
        Backward(pairsPerRow, from, to, rb.View, biasView, gb.View, db.View);
        float[] a = ab.GetAsArray1D(), dr = db.GetAsArray1D();

        for (int p = 0; p < pairs; p++)
        {
            bool inside = p >= from && p < to;
            int b = pairsPerRow > 0 ? 2 * (p % pairsPerRow) : -1;
            double x = r[2 * p] + (b >= 0 ? bias[b] : 0), y = ablateComplex ? 0 : r[2 * p + 1] + (b >= 0 ? bias[b + 1] : 0);
            double m = Math.Sqrt(x * x + y * y), s = 1 / (1 + Math.Exp(-m)), f = s / m;
            double k = (s * (1 - s) * m - s) / (m * m * m) * (x * da[2 * p] + y * da[2 * p + 1]);
            (double ax, double ay) = !inside ? (0, 0) : m == 0 ? (0.5, 0) : (f * x, f * y);
            (double dx, double dy) = !inside || m == 0 ? (0, 0) : (frac * (f * da[2 * p] + k * x), ablateComplex ? 0 : frac * (f * da[2 * p + 1] + k * y));
            foreach (var (what, expected, actual) in new[] { ("a.re", ax, a[2 * p]), ("a.im", ay, a[2 * p + 1]), ("dr.re", dx, dr[2 * p]), ("dr.im", dy, dr[2 * p + 1]) })
                Assert.True(Math.Abs(actual - expected) <= 2e-6 * (1 + Math.Abs(expected)), $"{what}[{p}] = {actual}, expected {expected}");
        }
    }

    [Fact]
    public void Swish_gate_matches_the_formula()
    {
        const int from = 2, to = 29, n = 31;
        using var device = Device.Create("cpu");
        var rng = new Random(9);
        float[] x = Random(rng, n), g = Random(rng, n), dy = Random(rng, n);
        using var xb = device.Allocate<float>(n);
        using var gbuf = device.Allocate<float>(n);
        using var dyb = device.Allocate<float>(n);
        using var yb = device.Allocate<float>(n);
        using var dxb = device.Allocate<float>(n);
        using var dgb = device.Allocate<float>(n);
        xb.CopyFromCPU(x);
        gbuf.CopyFromCPU(g);
        dyb.CopyFromCPU(dy);
        PreMaxHeads.Kernels.Host.SwishGateForward(from, to, xb.View, gbuf.View, yb.View);
        PreMaxHeads.Kernels.Host.SwishGateBackward(from, to, xb.View, gbuf.View, dyb.View, dxb.View, dgb.View);
        float[] y = yb.GetAsArray1D(), dx = dxb.GetAsArray1D(), dg = dgb.GetAsArray1D();
        for (int i = 0; i < n; i++)
        {
            bool inside = i >= from && i < to;
            double s = 1 / (1 + Math.Exp(-(double)g[i]));
            double ey = inside ? x[i] * g[i] * s : 0, edx = inside ? dy[i] * g[i] * s : 0, edg = inside ? dy[i] * x[i] * s * (1 + g[i] * (1 - s)) : 0;
            foreach (var (what, expected, actual) in new[] { ("y", ey, y[i]), ("dx", edx, dx[i]), ("dg", edg, dg[i]) })
                Assert.True(Math.Abs(actual - expected) <= 2e-6 * (1 + Math.Abs(expected)), $"{what}[{i}] = {actual}, expected {expected}");
        }
    }
}

/// <summary>The SIMD LayerNorm rows against the formula in double, for widths with and without a vector tail.</summary>
public sealed class HostLayerNormTests
{
    [Theory]
    [InlineData(16)]
    [InlineData(21)]
    public void LayerNorm_forward_and_backward_match_the_formula(int width)
    {
        const int rows = 5, from = 1, to = 4;
        // The entry takes indices of the kernel's domain (Kernels.RowLanes per row) and runs the rows whose first
        // lane is among them: a range cut inside rows 0 and 3 runs rows 1…3.
        const int first = from * Rows16.Kernels.RowLanes - 5, end = to * Rows16.Kernels.RowLanes - 31;
        using var device = Device.Create("cpu");
        var rng = new Random(13);
        float[] Random(int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2))];
        float[] x = Random(rows * width), w = Random(width), b = Random(width), dy = Random(rows * width);
        using var xb = device.Allocate<float>(x.Length);
        using var wb = device.Allocate<float>(width);
        using var bb = device.Allocate<float>(width);
        using var yb = device.Allocate<float>(x.Length);
        using var sb = device.Allocate<float>(2 * rows);
        using var db = device.Allocate<float>(x.Length);
        xb.CopyFromCPU(x);
        wb.CopyFromCPU(w);
        bb.CopyFromCPU(b);
        db.CopyFromCPU(dy);
        if (width == Rows16.Dim)
        {
            Rows16.Kernels.Host.LayerNormDimForward(first, end, xb.View, wb.View, bb.View, yb.View, sb.View);
            Rows16.Kernels.Host.LayerNormDimBackward(first, end, xb.View, wb.View, sb.View, db.View, db.View); // dx over dy, as the models do
        }
        else
        {
            Rows21.Kernels.Host.LayerNormDimForward(first, end, xb.View, wb.View, bb.View, yb.View, sb.View);
            Rows21.Kernels.Host.LayerNormDimBackward(first, end, xb.View, wb.View, sb.View, db.View, db.View);
        }
        float[] y = yb.GetAsArray1D(), dx = db.GetAsArray1D();

        for (int r = 0; r < rows; r++)
        {
            var row = Enumerable.Range(r * width, width).ToArray();
            double mean = row.Average(i => (double)x[i]), rstd = 1 / Math.Sqrt(row.Average(i => (x[i] - mean) * (x[i] - mean)) + 1e-5);
            double meanG = row.Average(i => (double)dy[i] * w[i - r * width]);
            double meanGx = row.Average(i => (double)dy[i] * w[i - r * width] * (x[i] - mean) * rstd);
            foreach (int i in row)
            {
                int d = i - r * width;
                bool inside = r >= from && r < to;
                double ey = inside ? (x[i] - mean) * rstd * w[d] + b[d] : 0;
                double edx = inside ? rstd * (dy[i] * w[d] - meanG - (x[i] - mean) * rstd * meanGx) : dy[i];
                Assert.True(Math.Abs(y[i] - ey) <= 1e-5 * (1 + Math.Abs(ey)), $"y[{i}] = {y[i]}, expected {ey}");
                Assert.True(Math.Abs(dx[i] - edx) <= 1e-5 * (1 + Math.Abs(edx)), $"dx[{i}] = {dx[i]}, expected {edx}");
            }
        }
    }
}

/// <summary>Models whose transitions have a bias of 5 pairs per row, and an ablated one of 3.</summary>
[GateLoopTransformer(NumTokens = 11, Dim = 10, Depth = 1, GateLoopHeads = 5, FracGradientStateTransition = 0.7)]
public partial class Pairs5;

[GateLoopTransformer(NumTokens = 11, Dim = 12, Depth = 1, GateLoopHeads = 3, AblateComplex = true, FracGradientStateTransition = 0.7)]
public partial class Ablated3;

/// <summary>Models whose rows are two vectors, and a vector and a tail, for the generated row entries.</summary>
[SimpleGateLoop(Dim = 16, PostLayerNorm = true)]
public partial class Rows16;

[SimpleGateLoop(Dim = 21, PostLayerNorm = true)]
public partial class Rows21;

/// <summary>The SIMD RMSNorm rows and γ gradient against the formulas in double (one row's norm clamped).</summary>
public sealed class HostRmsNormTests
{
    [Theory]
    [InlineData(16)]
    [InlineData(21)]
    public void RmsNorm_matches_the_formula(int width)
    {
        const int rows = 5, from = 1, to = 5;
        // Indices of the kernel's domain (Kernels.RowLanes per row): the rows whose first lane is among them, 1…4.
        const int first = from * Rows16.Kernels.RowLanes - 31, end = to * Rows16.Kernels.RowLanes;
        // The models' own constants: scale √Dim, eps 1e-12.
        float scale = MathF.Sqrt(width);
        const float eps = 1e-12f;
        using var device = Device.Create("cpu");
        var rng = new Random(19);
        float[] Random(int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2))];
        float[] x = Random(rows * width), gamma = Random(width), dy = Random(rows * width), dx0 = Random(rows * width);
        for (int d = 0; d < width; d++) x[3 * width + d] = 1e-14f; // a norm below eps: clamped
        using var xb = device.Allocate<float>(x.Length);
        using var gb = device.Allocate<float>(width);
        using var yb = device.Allocate<float>(x.Length);
        using var nb = device.Allocate<float>(rows);
        using var dyb = device.Allocate<float>(x.Length);
        using var dxb = device.Allocate<float>(x.Length);
        using var dgb = device.Allocate<float>(((width + 7) / 8) * 8);
        xb.CopyFromCPU(x);
        gb.CopyFromCPU(gamma);
        dyb.CopyFromCPU(dy);
        dxb.CopyFromCPU(dx0);
        if (width == Rows16.Dim)
        {
            Rows16.Kernels.Host.RmsNormForward(first, end, xb.View, gb.View, yb.View, nb.View);
            Rows16.Kernels.Host.RmsNormBackward(first, end, xb.View, gb.View, nb.View, dyb.View, dxb.View);
        }
        else
        {
            Rows21.Kernels.Host.RmsNormForward(first, end, xb.View, gb.View, yb.View, nb.View);
            Rows21.Kernels.Host.RmsNormBackward(first, end, xb.View, gb.View, nb.View, dyb.View, dxb.View);
        }
        float[] y = yb.GetAsArray1D(), inv = nb.GetAsArray1D(), dx = dxb.GetAsArray1D();
        for (int r = 0; r < rows; r++)
        {
            var row = Enumerable.Range(r * width, width).ToArray();
            double norm = Math.Sqrt(row.Sum(i => (double)x[i] * x[i])), n = 1 / Math.Max(norm, eps);
            double dot = row.Sum(i => (double)dy[i] * gamma[i - r * width] * x[i]);
            double c = norm > eps ? n * n * n * dot * scale : 0;
            bool inside = r >= from && r < to;
            if (inside) Assert.True(Math.Abs(inv[r] - n) <= 1e-5 * n, $"invNorm[{r}] = {inv[r]}, expected {n}");
            foreach (int i in row)
            {
                int d = i - r * width;
                double ey = inside ? x[i] * n * scale * gamma[d] : 0, edx = dx0[i] + (inside ? n * scale * dy[i] * gamma[d] - c * x[i] : 0);
                Assert.True(Math.Abs(y[i] - ey) <= 1e-5 * (1 + Math.Abs(ey)), $"y[{i}] = {y[i]}, expected {ey}");
                Assert.True(Math.Abs(dx[i] - edx) <= 1e-4 * (1 + Math.Abs(edx)), $"dx[{i}] = {dx[i]}, expected {edx}");
            }
        }

        // γ's gradient's first level over whole groups of 8 columns of rows 2…rows−1, written over what was there.
        int columns = width / 8 * 8;
        var dg0 = Random((int)dgb.Length);
        dgb.CopyFromCPU(dg0);
        HostSimd.RmsNormGammaPartials(0, columns, 2, rows, width, xb.View, nb.View, dyb.View, dgb.View);
        float[] dg = dgb.GetAsArray1D();
        for (int d = 0; d < dg.Length; d++)
        {
            double expected = d < columns ? Enumerable.Range(2, rows - 2).Sum(r => (double)dy[r * width + d] * x[r * width + d] * inv[r]) : dg0[d];
            Assert.True(Math.Abs(dg[d] - expected) <= 1e-4 * (1 + Math.Abs(expected)), $"partial dγ[{d}] = {dg[d]}, expected {expected}");
        }
    }
}

/// <summary>The SIMD first level of LayerNorm's parameter gradients against its sums in double, on whole groups of 8 columns.</summary>
public sealed class HostLayerNormParameterTests
{
    [Fact]
    public void Parameter_gradient_partials_match_the_sums()
    {
        const int rows = 7, width = 40, from = 8, to = 32, firstRow = 2, endRow = 6;
        using var device = Device.Create("cpu");
        var rng = new Random(17);
        float[] Random(int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2))];
        float[] x = Random(rows * width), dy = Random(rows * width), partials0 = Random(2 * width);
        float[] stats = [.. Enumerable.Range(0, rows).SelectMany(_ => new[] { (float)rng.NextDouble() - 0.5f, 0.5f + (float)rng.NextDouble() })];
        using var xb = device.Allocate<float>(x.Length);
        using var sb = device.Allocate<float>(stats.Length);
        using var dyb = device.Allocate<float>(dy.Length);
        using var pb = device.Allocate<float>(2 * width);
        xb.CopyFromCPU(x);
        sb.CopyFromCPU(stats);
        dyb.CopyFromCPU(dy);
        pb.CopyFromCPU(partials0);
        HostSimd.LayerNormParameterPartials(from, to, firstRow, endRow, width, xb.View, sb.View, dyb.View, pb.View);
        float[] partials = pb.GetAsArray1D();
        var part = Enumerable.Range(firstRow, endRow - firstRow);
        for (int d = 0; d < width; d++)
        {
            bool inside = d >= from && d < to;
            double ew = inside ? part.Sum(r => (double)dy[r * width + d] * (x[r * width + d] - stats[2 * r]) * stats[2 * r + 1]) : partials0[d];
            double eb = inside ? part.Sum(r => (double)dy[r * width + d]) : partials0[width + d];
            Assert.True(Math.Abs(partials[d] - ew) <= 1e-5 * (1 + Math.Abs(ew)), $"Σ dy·x̂ [{d}] = {partials[d]}, expected {ew}");
            Assert.True(Math.Abs(partials[width + d] - eb) <= 1e-5 * (1 + Math.Abs(eb)), $"Σ dy [{d}] = {partials[width + d]}, expected {eb}");
        }
    }
}

/// <summary>
/// The scans' host entries (time outside, lanes inside) against the kernels run lane by lane, on a range that
/// starts and ends inside a batch row, so runs split at batch boundaries.
/// </summary>
public sealed class LaneScanHostEntryTests
{
    const int Batch = 3, Seq = 5, From = 3, To = 2 * PreMaxHeads.DimInner + 5;

    static float[] Read(ArrayView<float> view)
    {
        var data = new float[view.Length];
        view.CopyToCPU(data);
        return data;
    }

    [Fact]
    public void Channel_scans_match_the_kernels()
    {
        using var device = Device.Create("cpu");
        int rows = Batch * Seq, inner = PreMaxHeads.DimInner;
        var rng = new Random(11);
        ArrayView<float> Buffer(long length, bool random = true)
        {
            var view = device.Allocate<float>(length).View;
            if (random) view.CopyFromCPU([.. Enumerable.Range(0, (int)length).Select(_ => (float)(rng.NextDouble() * 2 - 1))]);
            return view;
        }
        ArrayView<float> qkv = Buffer(rows * 3 * inner), a = Buffer(rows * PreMaxHeads.Heads * 2), dO = Buffer(rows * inner);
        float[] carry0 = Read(Buffer(Batch * inner * 2));

        (float[] O, float[] States, float[] Carry, float[] DQkv, float[] Da) Run(bool host)
        {
            ArrayView<float> o = Buffer(rows * inner, false), states = Buffer(rows * inner * 2, false), carry = Buffer(carry0.Length, false);
            ArrayView<float> dQkv = Buffer(rows * 3 * inner, false), da = Buffer(rows * PreMaxHeads.Heads * 2, false);
            carry.CopyFromCPU(carry0);
            if (host) PreMaxHeads.Kernels.Host.ScanForward(From, To, Seq, qkv, a, o, states, carry);
            else for (int i = From; i < To; i++) PreMaxHeads.Kernels.ScanForward(i, Seq, qkv, a, o, states, carry);
            if (host) PreMaxHeads.Kernels.Host.ScanBackward(From, To, Seq, qkv, a, states, dO, dQkv, da);
            else for (int i = From; i < To; i++) PreMaxHeads.Kernels.ScanBackward(i, Seq, qkv, a, states, dO, dQkv, da);
            return (Read(o), Read(states), Read(carry), Read(dQkv), Read(da));
        }

        var expected = Run(host: false);
        var actual = Run(host: true);
        Assert.Contains(expected.O, v => v != 0);
        Assert.Equal(expected.O, actual.O);
        Assert.Equal(expected.States, actual.States);
        Assert.Equal(expected.Carry, actual.Carry);
        Assert.Equal(expected.DQkv, actual.DQkv);
        Assert.Equal(expected.Da, actual.Da);
    }
}
