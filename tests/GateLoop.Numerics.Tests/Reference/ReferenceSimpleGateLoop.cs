using System;
using System.Collections.Generic;
using System.Linq;

namespace GateLoop.Numerics.Tests.Reference;

/// <summary>The options of a SimpleGateLoop layer as the reference sees them (Heinsen is the same function).</summary>
public sealed record SimpleGateLoopConfig(int Dim, bool PreNorm, bool PostLayerNorm, bool Reverse)
{
    /// <summary>The seed's state_dict: names and PyTorch shapes, in registration order.</summary>
    public IEnumerable<(string Name, int[] Shape)> Parameters()
    {
        if (PreNorm) yield return ("norm.gamma", [Dim]);
        yield return ("to_qkva.0.weight", [3 * Dim, Dim]);
        if (PostLayerNorm)
        {
            yield return ("maybe_post_ln.weight", [Dim]);
            yield return ("maybe_post_ln.bias", [Dim]);
        }
    }
}

/// <summary>
/// A plain, independent double-precision SimpleGateLoop layer (DESIGN.md, "SimpleGateLoop"; the seed's
/// simplified_gate_loop.py), written as the seed computes it: flip the sequence for Reverse, RMSNorm, one Linear to
/// [q | kv | a], a = sigmoid(a), the recurrence S_t = a_t·S_{t−1} + kv_t per channel, q ⊙ S, LayerNorm, flip back.
/// </summary>
public static class ReferenceSimpleGateLoop
{
    /// <summary>Random parameters: gains near 1, a wider-than-default projection so gates spread over (0, 1).</summary>
    public static Dictionary<string, double[]> RandomParameters(SimpleGateLoopConfig c, int seed)
    {
        var random = new Random(seed);
        double[] Uniform(int n, double lo, double hi) => Enumerable.Range(0, n).Select(_ => lo + (hi - lo) * random.NextDouble()).ToArray();
        var p = new Dictionary<string, double[]>();
        foreach (var (name, shape) in c.Parameters())
        {
            int n = shape.Aggregate(1, (a, b) => a * b);
            p[name] = name.EndsWith(".weight") && shape.Length == 2 ? Uniform(n, -1, 1)
                : name.EndsWith(".bias") ? Uniform(n, -0.5, 0.5)
                : Uniform(n, 0.5, 1.5);
        }
        return p;
    }

    /// <summary>
    /// y [batch·seq·Dim] for x [batch·seq·Dim]. With <paramref name="gate"/> and <paramref name="state"/>
    /// ([batch·Dim], the seed's cache) the recurrence starts from the state and both are updated in place to the
    /// cumulative gate and the state after the last position.
    /// </summary>
    public static double[] Forward(SimpleGateLoopConfig c, IReadOnlyDictionary<string, double[]> p, double[] x, int batch, int seq,
        double[]? gate = null, double[]? state = null)
    {
        int dim = c.Dim, rows = batch * seq;
        if (x.Length != rows * dim) throw new ArgumentException($"x has {x.Length} values, expected {rows * dim}");
        if ((gate is null) != (state is null)) throw new ArgumentException("a cache has both a gate and a state");
        if (state is not null && c.Reverse) throw new InvalidOperationException("caching only works with non-reversed seq");

        double[] h = c.Reverse ? Flip(x, batch, seq, dim) : x;
        if (c.PreNorm) h = ReferenceTransformer.RmsNorm(h, rows, dim, p["norm.gamma"]);
        double[] qkva = ReferenceTransformer.Linear(h, rows, dim, p["to_qkva.0.weight"], 3 * dim, null);

        var o = new double[rows * dim];
        for (int b = 0; b < batch; b++)
            for (int d = 0; d < dim; d++)
            {
                double s = state?[b * dim + d] ?? 0, g = gate?[b * dim + d] ?? 1;
                for (int t = 0; t < seq; t++)
                {
                    int r = b * seq + t;
                    double q = qkva[r * 3 * dim + d], kv = qkva[r * 3 * dim + dim + d];
                    double a = ReferenceTransformer.Sigmoid(qkva[r * 3 * dim + 2 * dim + d]);
                    s = a * s + kv;
                    g *= a;
                    o[r * dim + d] = q * s;
                }
                if (state is not null)
                {
                    state[b * dim + d] = s;
                    gate![b * dim + d] = g;
                }
            }

        if (c.PostLayerNorm) o = ReferenceTransformer.LayerNorm(o, rows, dim, p["maybe_post_ln.weight"], p["maybe_post_ln.bias"]);
        return c.Reverse ? Flip(o, batch, seq, dim) : o;
    }

    /// <summary>Reverses the positions of each sequence in a [batch, seq, dim] array.</summary>
    public static double[] Flip(double[] x, int batch, int seq, int dim)
    {
        var y = new double[x.Length];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < seq; t++)
                Array.Copy(x, (b * seq + t) * dim, y, (b * seq + seq - 1 - t) * dim, dim);
        return y;
    }
}
