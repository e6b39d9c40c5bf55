using System.Numerics;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// SIMD host range entries for the feed-forward GELU (float), which generated models call in place of the scalar
/// twin: GELU's exponential and division dominate the host's elementwise time, and the JIT does not vectorize the
/// scalar kernel. Same formula as the kernel (Φ by Abramowitz–Stegun 7.1.26, one e^{−v²/2} shared by Φ and φ);
/// the cpu/ilgpu-cpu agreement tests hold the two together.
/// </summary>
public static unsafe class HostActivations
{
    static readonly Vector<float> Half = new(0.5f), One = Vector<float>.One, MinusHalf = new(-0.5f),
        P = new(0.3275911f / MathF.Sqrt(2)), InvSqrt2Pi = new(1 / MathF.Sqrt(2 * MathF.PI)),
        A1 = new(0.254829592f), A2 = new(-0.284496736f), A3 = new(1.421413741f), A4 = new(-1.453152027f), A5 = new(1.061405429f);

    static int Lanes => Vector<float>.Count;

    /// <summary>Φ(v) given gauss = e^{−v²/2}.</summary>
    static Vector<float> Phi(Vector<float> v, Vector<float> gauss)
    {
        var t = One / (One + P * Vector.Abs(v));
        var poly = ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t;
        return Half + Half * Vector.CopySign(One - poly * gauss, v);
    }

    /// <summary>For flat indices from…to−1 of a matrix with rows of <paramref name="width"/>: u += bias (kept), z = gelu(u).</summary>
    public static void BiasGeluForward(int from, int to, int width, ArrayView<float> u, ArrayView<float> bias, ArrayView<float> z)
    {
        float* pu = Pointer(u), pb = Pointer(bias), pz = Pointer(z);
        // Row by row, so the bias is read as contiguous vectors.
        for (int i = from; i < to;)
        {
            int c = i % width, n = Math.Min(to - i, width - c);
            Lanewise<BiasGelu>(n, pu + i, pb + c, pz + i, writeFirst: true);
            i += n;
        }
    }

    /// <summary>du = dz·(Φ(u) + u·φ(u)) for indices from…to−1; du may alias dz.</summary>
    public static void GeluBackward(int from, int to, ArrayView<float> u, ArrayView<float> dz, ArrayView<float> du) =>
        Lanewise<GeluGradient>(to - from, Pointer(u) + from, Pointer(dz) + from, Pointer(du) + from, writeFirst: false);

    // Lane operations as structs, so the JIT specializes and inlines each loop.
    interface ILaneOp
    {
        static abstract (Vector<float> A, Vector<float> C) Apply(Vector<float> a, Vector<float> b);
    }

    readonly struct BiasGelu : ILaneOp
    {
        public static (Vector<float> A, Vector<float> C) Apply(Vector<float> u, Vector<float> bias)
        {
            var v = u + bias;
            return (v, v * Phi(v, Vector.Exp(MinusHalf * v * v)));
        }
    }

    readonly struct GeluGradient : ILaneOp
    {
        public static (Vector<float> A, Vector<float> C) Apply(Vector<float> v, Vector<float> dz)
        {
            var gauss = Vector.Exp(MinusHalf * v * v);
            return (v, dz * (Phi(v, gauss) + v * gauss * InvSqrt2Pi));
        }
    }

    /// <summary>
    /// Applies TOp to n lanes of a and b, writing its results to a (when <paramref name="writeFirst"/>) and c; the
    /// tail shorter than a vector goes through a padded copy, so every element is computed the same way.
    /// </summary>
    static void Lanewise<TOp>(int n, float* a, float* b, float* c, bool writeFirst) where TOp : ILaneOp
    {
        int k = 0;
        for (; k + Lanes <= n; k += Lanes)
        {
            var (ra, rc) = TOp.Apply(Vector.Load(a + k), Vector.Load(b + k));
            if (writeFirst) ra.Store(a + k);
            rc.Store(c + k);
        }
        if (k == n) return;
        float* ta = stackalloc float[Lanes], tb = stackalloc float[Lanes], tc = stackalloc float[Lanes];
        for (int j = 0; j < Lanes; j++) (ta[j], tb[j]) = k + j < n ? (a[k + j], b[k + j]) : (0, 0);
        var (qa, qc) = TOp.Apply(Vector.Load(ta), Vector.Load(tb));
        qa.Store(ta);
        qc.Store(tc);
        for (int j = 0; k + j < n; j++)
        {
            if (writeFirst) a[k + j] = ta[j];
            c[k + j] = tc[j];
        }
    }

    static float* Pointer(ArrayView<float> view) => (float*)view.LoadEffectiveAddressAsPtr();
}
