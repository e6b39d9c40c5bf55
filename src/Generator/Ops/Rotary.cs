using System.Collections.Generic;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// The rotary embedding of the attention baseline (rotary_embedding_torch: θ = 10000, adjacent pairs), applied to
    /// q and k in place; its frequencies are a frozen parameter of the seed's state_dict. Backward rotates the
    /// gradients back by the transpose.
    /// </summary>
    internal sealed class Rotary : Op
    {
        readonly Param freqs;
        readonly Value qkv;

        public Rotary(string field, string name, int headDim, Value qkv)
        {
            freqs = new Param(field, name, new[] { ("HeadDim / 2", headDim / 2) }, "RotaryFrequencies", 0);
            this.qkv = qkv;
        }

        public override IEnumerable<Param> Parameters => new[] { freqs };

        public override void Forward(Schedule s) => s.Launch("Rotate", "R * DimInner", "Seq", qkv, s.W(freqs), s.One);

        public override void Backward(Schedule s) => s.Launch("Rotate", "R * DimInner", "Seq", qkv.Grad!, s.W(freqs), s.Lit(-1));

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return Attention.QkvLayout;
            yield return new KernelSource("Rotary", Kernel(n));
        }

        static string Kernel(Numeric n) => $$"""
            /// <summary>
            /// Rotates each adjacent pair of q and k by position·freq (direction 1) — or a gradient back by the transpose
            /// (direction −1): (x₀, x₁) → (x₀·cos − x₁·sin, x₁·cos + x₀·sin). One thread per pair.
            /// </summary>
            public static void Rotate(Index1D index, int seq, ArrayView<{{n.Type}}> m, ArrayView<{{n.Type}}> freqs, {{n.Type}} direction)
            {
                int pair = index.X % (HeadDim / 2), rest = index.X / (HeadDim / 2), h = rest % Heads, part = rest / Heads % 2;
                long row = rest / Heads / 2;
                {{n.Type}} angle = direction * (row % seq) * freqs[pair];
                {{n.Type}} cos = {{n.Math}}.Cos(angle), sin = {{n.Math}}.Sin(angle);
                long o = row * QkvRow + part * DimInner + h * HeadDim + 2 * pair;
                {{n.Type}} x0 = m[o], x1 = m[o + 1];
                m[o] = x0 * cos - x1 * sin;
                m[o + 1] = x1 * cos + x0 * sin;
            }
            """;

    }
}
