using System;
using System.Collections.Generic;
using System.Linq;

namespace GateLoop.Numerics.Tests.Reference;

/// <summary>
/// A plain, independent double-precision implementation of the GateLoop transformer's
/// forward pass and loss (DESIGN.md, "The math"), used as ground truth by the tests.
/// Everything is a straightforward loop over row-major <c>double[]</c> arrays.
/// </summary>
public static class ReferenceTransformer
{
    private const double LayerNormEps = 1e-5;
    private const double RmsNormEps = 1e-12;

    // ---------------------------------------------------------------- model

    /// <summary>Logits [batch·seq·NumTokens], row-major, for token ids <paramref name="inputs"/> [batch·seq].</summary>
    public static double[] Logits(ReferenceConfig c, IReadOnlyDictionary<string, double[]> p, int[] inputs, int batch, int seq,
        FracGradient? frac = null)
    {
        c.Validate();
        CheckParameters(c, p);
        if (batch <= 0 || seq <= 0)
            throw new ArgumentException("batch and seq must be positive.");
        if (inputs.Length != batch * seq)
            throw new ArgumentException($"inputs has {inputs.Length} ids, expected batch·seq = {batch * seq}.");

        int rows = batch * seq;
        int dim = c.Dim;

        // Token embedding.
        double[] emb = p["token_emb.weight"];
        var x = new double[rows * dim];
        for (int r = 0; r < rows; r++)
        {
            int token = inputs[r];
            if (token < 0 || token >= c.NumTokens)
                throw new ArgumentOutOfRangeException(nameof(inputs), $"token {token} at {r} is outside [0, {c.NumTokens}).");
            for (int d = 0; d < dim; d++)
                x[r * dim + d] = emb[token * dim + d];
        }

        for (int layer = 0; layer < c.Depth; layer++)
        {
            int first = c.SimpleGateLoopBlocks ? 1 : 0;
            string mixer = $"layers.{layer}.{first}";
            string ff = $"layers.{layer}.{first + 1}";
            if (c.SimpleGateLoopBlocks)
            {
                // The seed's SimpleGateLoopLayer(dim, prenorm = False) in the layer's wrapper.
                string sgl = $"layers.{layer}.0";
                var layerParameters = p.Where(e => e.Key.StartsWith(sgl + ".fn.", StringComparison.Ordinal))
                    .ToDictionary(e => e.Key[(sgl.Length + 4)..], e => e.Value);
                x = Block(c, p, sgl, x, rows, h => ReferenceSimpleGateLoop.Forward(
                    new SimpleGateLoopConfig(dim, PreNorm: false, PostLayerNorm: false, Reverse: false), layerParameters, h, batch, seq));
            }
            x = Block(c, p, mixer, x, rows, h => c.UseGateLoopedAttn
                ? Mixer(c, p, mixer + ".fn", h, batch, seq, frac)
                : Attention(c, p, mixer + ".fn", h, batch, seq, frac));
            x = Block(c, p, ff, x, rows, h => FeedForward(c, p, ff + ".fn", h, rows));
        }

        if (c.PostLayerNorm)
            return Linear(x, rows, dim, p["to_logits.weight"], c.NumTokens, null);

        double[] normed = RmsNorm(x, rows, dim, p["to_logits.0.gamma"]);
        return Linear(normed, rows, dim, p["to_logits.1.weight"], c.NumTokens, null);
    }

    /// <summary>
    /// Mean natural-log cross-entropy. <paramref name="tokens"/> is [batch × (seq+1)]: each row's first
    /// seq ids are the inputs, its last seq ids the labels.
    /// </summary>
    public static double Loss(ReferenceConfig c, IReadOnlyDictionary<string, double[]> p, int[] tokens, int batch, int seq,
        FracGradient? frac = null)
    {
        if (tokens.Length != batch * (seq + 1))
            throw new ArgumentException($"tokens has {tokens.Length} ids, expected batch·(seq+1) = {batch * (seq + 1)}.");

        var inputs = new int[batch * seq];
        var labels = new int[batch * seq];
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < seq; t++)
            {
                inputs[b * seq + t] = tokens[b * (seq + 1) + t];
                labels[b * seq + t] = tokens[b * (seq + 1) + t + 1];
            }
        }

        double[] logits = Logits(c, p, inputs, batch, seq, frac);
        int v = c.NumTokens;
        double total = 0;
        for (int r = 0; r < batch * seq; r++)
        {
            int label = labels[r];
            if (label < 0 || label >= v)
                throw new ArgumentOutOfRangeException(nameof(tokens), $"label {label} is outside [0, {v}).");
            double max = double.NegativeInfinity;
            for (int j = 0; j < v; j++)
                max = Math.Max(max, logits[r * v + j]);
            double sum = 0;
            for (int j = 0; j < v; j++)
                sum += Math.Exp(logits[r * v + j] - max);
            double logSumExp = max + Math.Log(sum);
            total += logSumExp - logits[r * v + label];
        }
        return total / (batch * seq);
    }

    /// <summary>PreNorm: x + f(RMSNorm(x)); PostNorm: LayerNorm(x + f(x)).</summary>
    private static double[] Block(ReferenceConfig c, IReadOnlyDictionary<string, double[]> p, string block,
        double[] x, int rows, Func<double[], double[]> f)
    {
        int dim = c.Dim;
        var sum = new double[rows * dim];
        if (c.PostLayerNorm)
        {
            double[] y = f(x);
            for (int n = 0; n < sum.Length; n++)
                sum[n] = x[n] + y[n];
            return LayerNorm(sum, rows, dim, p[block + ".norm.weight"], p[block + ".norm.bias"]);
        }
        else
        {
            double[] y = f(RmsNorm(x, rows, dim, p[block + ".norm.gamma"]));
            for (int n = 0; n < sum.Length; n++)
                sum[n] = x[n] + y[n];
            return sum;
        }
    }

    /// <summary>Gate-looped attention on h [batch·seq, Dim] → [batch·seq, Dim].</summary>
    private static double[] Mixer(ReferenceConfig c, IReadOnlyDictionary<string, double[]> p, string fn,
        double[] h, int batch, int seq, FracGradient? frac)
    {
        int rows = batch * seq;
        int dim = c.Dim, inner = c.DimInner, heads = c.Heads, headDim = c.HeadDim;

        // [q|k|v] = h·Wqkvᵀ.
        double[] qkv = Linear(h, rows, dim, p[fn + ".to_qkv.weight"], 3 * inner, null);
        var q = new double[rows * inner];
        var k = new double[rows * inner];
        var v = new double[rows * inner];
        for (int r = 0; r < rows; r++)
        {
            for (int e = 0; e < inner; e++)
            {
                q[r * inner + e] = qkv[r * 3 * inner + e];
                k[r * inner + e] = qkv[r * 3 * inner + inner + e];
                v[r * inner + e] = qkv[r * 3 * inner + 2 * inner + e];
            }
        }

        // r = h·Waᵀ + ba; head j's complex number is (r[2j], r[2j+1]) → a.
        double[] gateLogits = Linear(h, rows, dim, p[fn + ".to_a.0.weight"], 2 * heads, p[fn + ".to_a.0.bias"]);
        frac?.Apply(fn, gateLogits);
        var aRe = new double[rows * heads];
        var aIm = new double[rows * heads];
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < heads; j++)
            {
                double re = gateLogits[r * 2 * heads + 2 * j];
                double im = gateLogits[r * 2 * heads + 2 * j + 1];
                (aRe[r * heads + j], aIm[r * heads + j]) = StateTransition(re, im, c.AblateComplex, c.AblateStateTransition);
            }
        }

        double[] o = ScanReference(batch, seq, heads, headDim, q, k, v, aRe, aIm);

        if (c.SubLayerNorm)
            o = LayerNorm(o, rows, inner, p[fn + ".maybe_sub_ln.weight"], p[fn + ".maybe_sub_ln.bias"]);

        if (c.SwishGating)
        {
            double[] gates = Linear(h, rows, dim, p[fn + ".to_gates.0.weight"], inner, null);
            for (int n = 0; n < o.Length; n++)
                o[n] *= Silu(gates[n]);
        }

        if (c.HasOutputProjection)
            return Linear(o, rows, inner, p[fn + ".to_out.weight"], dim, null);
        return o;
    }

    /// <summary>
    /// The seed's causal softmax attention on h [batch·seq, Dim]: rotary embedding on q and k, q·DimHead^−½, the
    /// data-dependent relative positions (q and k pairs scaled by Re of a cumulative product of complex gates along
    /// the head's channel pairs, clamped at 1e-10, and its inverse), causal scores, softmax (or the raw masked
    /// scores), weighted values, swish gating, output projection with bias.
    /// </summary>
    private static double[] Attention(ReferenceConfig c, IReadOnlyDictionary<string, double[]> p, string fn,
        double[] h, int batch, int seq, FracGradient? frac)
    {
        int rows = batch * seq, dim = c.Dim, inner = c.DimInner, heads = c.Heads, dh = c.HeadDim;
        double[] qkv = Linear(h, rows, dim, p[fn + ".to_qkv.0.weight"], 3 * inner, null);
        double Q(int r, int ch) => qkv[r * 3 * inner + ch];
        var q = new double[rows * inner];
        var k = new double[rows * inner];
        var v = new double[rows * inner];
        for (int r = 0; r < rows; r++)
            for (int ch = 0; ch < inner; ch++)
            {
                q[r * inner + ch] = Q(r, ch);
                k[r * inner + ch] = Q(r, inner + ch);
                v[r * inner + ch] = Q(r, 2 * inner + ch);
            }

        if (c.RotaryEmbedding)
        {
            double[] freqs = p[fn + ".rotary_emb.freqs"];
            foreach (var m in new[] { q, k })
                for (int r = 0; r < rows; r++)
                    for (int head = 0; head < heads; head++)
                        for (int i = 0; i < dh / 2; i++)
                        {
                            double angle = (r % seq) * freqs[i];
                            int o = r * inner + head * dh + 2 * i;
                            double x0 = m[o], x1 = m[o + 1];
                            m[o] = x0 * Math.Cos(angle) - x1 * Math.Sin(angle);
                            m[o + 1] = x1 * Math.Cos(angle) + x0 * Math.Sin(angle);
                        }
        }

        double scale = 1 / Math.Sqrt(dh);
        for (int n = 0; n < q.Length; n++) q[n] *= scale;

        if (c.DataDependentRelPos && !c.AblateStateTransition)
        {
            double[] gates = Linear(h, rows, dim, p[fn + ".to_a.0.weight"], inner, null);
            frac?.Apply(fn, gates);
            for (int r = 0; r < rows; r++)
                for (int head = 0; head < heads; head++)
                {
                    var product = System.Numerics.Complex.One;
                    for (int d = 0; d < dh / 2; d++)
                    {
                        int o = r * inner + head * dh + 2 * d;
                        var (re, im) = StateTransition(gates[o], gates[o + 1], c.AblateComplex, false);
                        product *= new System.Numerics.Complex(re, im);
                        double scaleD = Math.Max(product.Real, 1e-10);
                        q[o] *= scaleD;
                        q[o + 1] *= scaleD;
                        k[o] /= scaleD;
                        k[o + 1] /= scaleD;
                    }
                }
        }

        var output = new double[rows * inner];
        var weights = new double[seq];
        for (int b = 0; b < batch; b++)
            for (int head = 0; head < heads; head++)
                for (int i = 0; i < seq; i++)
                {
                    for (int j = 0; j <= i; j++)
                    {
                        double sum = 0;
                        for (int d = 0; d < dh; d++)
                            sum += q[(b * seq + i) * inner + head * dh + d] * k[(b * seq + j) * inner + head * dh + d];
                        weights[j] = sum;
                    }
                    if (c.SoftmaxNormalize)
                    {
                        double max = weights.Take(i + 1).Max(), total = 0;
                        for (int j = 0; j <= i; j++) total += weights[j] = Math.Exp(weights[j] - max);
                        for (int j = 0; j <= i; j++) weights[j] /= total;
                    }
                    for (int e = 0; e < dh; e++)
                    {
                        double sum = 0;
                        for (int j = 0; j <= i; j++) sum += weights[j] * v[(b * seq + j) * inner + head * dh + e];
                        output[(b * seq + i) * inner + head * dh + e] = sum;
                    }
                }

        if (c.SwishGating)
        {
            double[] g = Linear(h, rows, dim, p[fn + ".to_gates.0.weight"], inner, null);
            for (int n = 0; n < output.Length; n++) output[n] *= Silu(g[n]);
        }
        return Linear(output, rows, inner, p[fn + ".to_out.1.weight"], dim, p[fn + ".to_out.1.bias"]);
    }

    /// <summary>
    /// The seed's frac-gradient trick, r·f + r.detach()·(1 − f), made visible to finite differences: the first
    /// evaluation records r per layer (the detached value); later evaluations use f·r + (1 − f)·recorded, whose
    /// derivative at the recorded point is f times the true one and whose value there is unchanged.
    /// </summary>
    public sealed class FracGradient(double fraction)
    {
        readonly Dictionary<string, double[]> detached = new();

        internal void Apply(string layer, double[] r)
        {
            if (!detached.TryGetValue(layer, out var anchor))
            {
                detached[layer] = (double[])r.Clone();
                return;
            }
            for (int i = 0; i < r.Length; i++) r[i] = fraction * r[i] + (1 - fraction) * anchor[i];
        }
    }

    /// <summary>
    /// The state transition from the gate logits (re, im): a = sigmoid(|r|)·r/|r| (phase kept; (sigmoid(0), 0)
    /// when r = 0). AblateComplex zeroes im first; AblateStateTransition makes a = 1.
    /// </summary>
    public static (double Re, double Im) StateTransition(double re, double im, bool ablateComplex, bool ablateStateTransition)
    {
        if (ablateStateTransition)
            return (1.0, 0.0);
        if (ablateComplex)
            im = 0.0;
        double magnitude = Math.Sqrt(re * re + im * im);
        if (magnitude == 0.0)
            return (Sigmoid(0.0), 0.0);
        double scale = Sigmoid(magnitude) / magnitude;
        return (scale * re, scale * im);
    }

    /// <summary>Linear(Dim, Dim·mult) with bias → exact GELU (or relu(u)²) → Linear(Dim·mult, Dim) with bias.</summary>
    private static double[] FeedForward(ReferenceConfig c, IReadOnlyDictionary<string, double[]> p, string fn, double[] h, int rows)
    {
        int dim = c.Dim, hidden = c.FeedForwardDim;
        double[] u = Linear(h, rows, dim, p[fn + ".0.weight"], hidden, p[fn + ".0.bias"]);
        for (int n = 0; n < u.Length; n++)
            u[n] = c.FeedForwardReluSquared ? Math.Pow(Math.Max(u[n], 0), 2) : Gelu(u[n]);
        return Linear(u, rows, hidden, p[fn + ".2.weight"], dim, p[fn + ".2.bias"]);
    }

    // ---------------------------------------------------------------- scan

    /// <summary>
    /// The gate-loop recurrence, sequentially. q, k, v are [batch·seq, heads·p]; aRe, aIm are [batch·seq, heads].
    /// Per batch element and head: complex p×p state S_0 = 0, S_t = a_t·S_{t−1} + k_t v_tᵀ,
    /// o_t[e] = Σ_d q_t[d]·Re(S_t[d, e]). Returns o [batch·seq, heads·p].
    /// </summary>
    public static double[] ScanReference(int batch, int seq, int heads, int p,
        double[] q, double[] k, double[] v, double[] aRe, double[] aIm)
    {
        int width = heads * p;
        int rows = batch * seq;
        if (q.Length != rows * width || k.Length != rows * width || v.Length != rows * width)
            throw new ArgumentException("q, k and v must be [batch·seq, heads·p].");
        if (aRe.Length != rows * heads || aIm.Length != rows * heads)
            throw new ArgumentException("aRe and aIm must be [batch·seq, heads].");

        var o = new double[rows * width];
        var stateRe = new double[p, p];
        var stateIm = new double[p, p];
        for (int b = 0; b < batch; b++)
        {
            for (int j = 0; j < heads; j++)
            {
                Array.Clear(stateRe);
                Array.Clear(stateIm);
                for (int t = 0; t < seq; t++)
                {
                    int row = b * seq + t;
                    double ar = aRe[row * heads + j];
                    double ai = aIm[row * heads + j];
                    int col = j * p;

                    for (int d = 0; d < p; d++)
                    {
                        for (int e = 0; e < p; e++)
                        {
                            double sr = stateRe[d, e];
                            double si = stateIm[d, e];
                            double kv = k[row * width + col + d] * v[row * width + col + e];
                            stateRe[d, e] = ar * sr - ai * si + kv;
                            stateIm[d, e] = ar * si + ai * sr;
                        }
                    }

                    for (int e = 0; e < p; e++)
                    {
                        double sum = 0;
                        for (int d = 0; d < p; d++)
                            sum += q[row * width + col + d] * stateRe[d, e];
                        o[row * width + col + e] = sum;
                    }
                }
            }
        }
        return o;
    }

    // ---------------------------------------------------------------- building blocks

    /// <summary>y[r, o] = Σ_i W[o, i]·x[r, i] (+ b[o]); W is PyTorch [out, in].</summary>
    public static double[] Linear(double[] x, int rows, int inDim, double[] weight, int outDim, double[]? bias)
    {
        if (x.Length != rows * inDim)
            throw new ArgumentException($"x has {x.Length} values, expected {rows}×{inDim}.");
        if (weight.Length != outDim * inDim)
            throw new ArgumentException($"weight has {weight.Length} values, expected {outDim}×{inDim}.");
        if (bias is not null && bias.Length != outDim)
            throw new ArgumentException($"bias has {bias.Length} values, expected {outDim}.");

        var y = new double[rows * outDim];
        for (int r = 0; r < rows; r++)
        {
            for (int o = 0; o < outDim; o++)
            {
                double sum = bias is null ? 0.0 : bias[o];
                for (int i = 0; i < inDim; i++)
                    sum += weight[o * inDim + i] * x[r * inDim + i];
                y[r * outDim + o] = sum;
            }
        }
        return y;
    }

    /// <summary>Per row: x / max(‖x‖₂, 1e-12) · √dim · γ.</summary>
    public static double[] RmsNorm(double[] x, int rows, int dim, double[] gamma)
    {
        var y = new double[rows * dim];
        double scale = Math.Sqrt(dim);
        for (int r = 0; r < rows; r++)
        {
            double sumSquares = 0;
            for (int d = 0; d < dim; d++)
                sumSquares += x[r * dim + d] * x[r * dim + d];
            double norm = Math.Max(Math.Sqrt(sumSquares), RmsNormEps);
            for (int d = 0; d < dim; d++)
                y[r * dim + d] = x[r * dim + d] / norm * scale * gamma[d];
        }
        return y;
    }

    /// <summary>Per row: (x − mean) / √(biased var + eps) · weight + bias.</summary>
    public static double[] LayerNorm(double[] x, int rows, int dim, double[] weight, double[] bias, double eps = LayerNormEps)
    {
        var y = new double[rows * dim];
        for (int r = 0; r < rows; r++)
        {
            double mean = 0;
            for (int d = 0; d < dim; d++)
                mean += x[r * dim + d];
            mean /= dim;
            double variance = 0;
            for (int d = 0; d < dim; d++)
            {
                double centered = x[r * dim + d] - mean;
                variance += centered * centered;
            }
            variance /= dim;
            double inverseStd = 1.0 / Math.Sqrt(variance + eps);
            for (int d = 0; d < dim; d++)
                y[r * dim + d] = (x[r * dim + d] - mean) * inverseStd * weight[d] + bias[d];
        }
        return y;
    }

    public static double Sigmoid(double x) => 1.0 / (1.0 + Math.Exp(-x));

    public static double Silu(double x) => x * Sigmoid(x);

    /// <summary>Exact GELU: 0.5·x·(1 + erf(x/√2)).</summary>
    public static double Gelu(double x) => 0.5 * x * (1.0 + Erf(x / Math.Sqrt(2.0)));

    /// <summary>
    /// erf to about double precision. |x| &lt; 3: the series
    /// erf(x) = 2/√π · e^{−x²} · Σ_n 2ⁿ x^{2n+1} / (1·3·…·(2n+1)), whose terms are all positive (no cancellation).
    /// |x| ≥ 3: erf = 1 − erfc with erfc's continued fraction
    /// erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))), evaluated bottom-up.
    /// </summary>
    public static double Erf(double x)
    {
        if (double.IsNaN(x))
            return double.NaN;
        if (x < 0)
            return -Erf(-x);
        if (x < 3.0)
            return ErfSeries(x);
        return 1.0 - ErfcContinuedFraction(x);
    }

    internal static double ErfSeries(double x)
    {
        double x2 = x * x;
        double term = x; // n = 0: 2⁰ x¹ / 1
        double sum = term;
        for (int n = 1; n < 500; n++)
        {
            term *= 2.0 * x2 / (2 * n + 1);
            sum += term;
            if (term < sum * 1e-17)
                break;
        }
        return 2.0 / Math.Sqrt(Math.PI) * Math.Exp(-x2) * sum;
    }

    internal static double ErfcContinuedFraction(double x)
    {
        if (x > 27.0)
            return 0.0; // e^{−x²} underflows; erfc(27) < 1e-300.
        // Partial numerators n/2 for n = 1, 2, 3, …; all partial denominators are x.
        double tail = x;
        for (int n = 400; n >= 1; n--)
            tail = x + 0.5 * n / tail;
        return Math.Exp(-x * x) / Math.Sqrt(Math.PI) / tail;
    }

    // ---------------------------------------------------------------- parameters

    /// <summary>
    /// Every tensor of <paramref name="c"/> filled from one <see cref="Random"/>(seed), in
    /// <see cref="ReferenceConfig.Parameters"/> order: Linear weights and biases U(−1/√fan_in, 1/√fan_in),
    /// the embedding N(0, 1) (Box–Muller), norm scales 1 + U(−0.2, 0.2), norm biases U(−0.2, 0.2).
    /// </summary>
    public static Dictionary<string, double[]> RandomParameters(ReferenceConfig c, int seed)
    {
        var random = new Random(seed);
        var parameters = new Dictionary<string, double[]>();
        foreach (var spec in c.ParameterSpecs())
        {
            int count = spec.Shape.Aggregate(1, (a, b) => a * b);
            var values = new double[count];
            for (int n = 0; n < count; n++)
            {
                values[n] = spec.Kind switch
                {
                    ReferenceConfig.ParameterKind.Embedding => Normal(random),
                    ReferenceConfig.ParameterKind.LinearWeight or ReferenceConfig.ParameterKind.LinearBias =>
                        Uniform(random, 1.0 / Math.Sqrt(spec.FanIn)),
                    ReferenceConfig.ParameterKind.NormScale => 1.0 + Uniform(random, 0.2),
                    ReferenceConfig.ParameterKind.NormBias => Uniform(random, 0.2),
                    // Perturbed from 10000^(−2i/head width), so a kernel that ignores the stored frequencies is caught.
                    ReferenceConfig.ParameterKind.RotaryFrequencies =>
                        Math.Pow(10000, -2.0 * n / c.HeadDim) * (1 + Uniform(random, 0.1)),
                    _ => throw new InvalidOperationException($"unknown kind {spec.Kind}"),
                };
            }
            parameters.Add(spec.Name, values);
        }
        return parameters;
    }

    /// <summary>U(−bound, bound).</summary>
    private static double Uniform(Random random, double bound) => (2.0 * random.NextDouble() - 1.0) * bound;

    /// <summary>N(0, 1) by Box–Muller (one draw per pair of uniforms).</summary>
    private static double Normal(Random random)
    {
        double u1 = 1.0 - random.NextDouble(); // (0, 1]
        double u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    private static void CheckParameters(ReferenceConfig c, IReadOnlyDictionary<string, double[]> p)
    {
        foreach (var (name, shape) in c.Parameters())
        {
            if (!p.TryGetValue(name, out var values))
                throw new ArgumentException($"missing parameter {name}.");
            int count = shape.Aggregate(1, (a, b) => a * b);
            if (values.Length != count)
                throw new ArgumentException($"{name} has {values.Length} values, expected [{string.Join(", ", shape)}] = {count}.");
        }
    }
}
