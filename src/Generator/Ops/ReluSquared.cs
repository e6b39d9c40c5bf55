using System.Collections.Generic;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// The feed-forward block's first bias and the squared ReLU, relu(u)² (Primer; x-transformers' ff_relu_squared),
    /// fused in one kernel in place of <see cref="Gelu"/>; the bias is the first nn.Linear's. Backward:
    /// du = dz·2·relu(u) in place, then the bias's column sums.
    /// </summary>
    internal sealed class ReluSquared : Op
    {
        readonly Param bias;
        readonly Value pre, output;

        /// <param name="pre">x·Wᵀ, to which the bias is added in place (kept for backward); its gradient may be the output's buffer.</param>
        public ReluSquared(string field, string name, (string, int) width, int fanIn, Value pre, Value output)
        {
            bias = new Param(field, name, new[] { width }, "Uniform", fanIn);
            this.pre = pre;
            this.output = output;
        }

        public override IEnumerable<Param> Parameters => new[] { bias };

        public override IEnumerable<Value> Outputs => new[] { output };

        public override void Forward(Schedule s) => s.Launch("BiasReluSquaredForward", "R * Hidden", pre.Expr, s.W(bias), output.Expr);

        public override void Backward(Schedule s)
        {
            s.Launch("ReluSquaredBackward", "R * Hidden", pre.Expr, output.Grad!, pre.Grad!);
            s.ColumnSum("Hidden", pre.Grad!, s.G(bias));
        }

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return new KernelSource("ReluSquared", Kernel(n));
        }

        // Max against zero, not a comparison turned into a number: a bool-to-float conversion is one of ILGPU's PTX faults.
        static string Kernel(Numeric n) => $$"""
            /// <summary>u += b1 in place (u is kept for backward); z = relu(u)².</summary>
            public static void BiasReluSquaredForward(Index1D index, ArrayView<{{n.Type}}> u, ArrayView<{{n.Type}}> bias, ArrayView<{{n.Type}}> z)
            {
                {{n.Type}} v = u[index] + bias[index.X % Hidden], r = v < 0 ? {{n.Lit(0)}} : v; // relu that keeps a NaN (PTX's max drops it)
                u[index] = v;
                z[index] = r * r;
            }

            /// <summary>du = dz·2·relu(u); du may alias dz.</summary>
            public static void ReluSquaredBackward(Index1D index, ArrayView<{{n.Type}}> u, ArrayView<{{n.Type}}> dz, ArrayView<{{n.Type}}> du)
            {
                du[index] = dz[index] * 2 * (u[index] < 0 ? {{n.Lit(0)}} : u[index]);
            }
            """;
    }
}
