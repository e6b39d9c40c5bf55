using System.Collections.Generic;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// The squared ReLU of the feed-forward block, relu(u)² (Primer; x-transformers' ff_relu_squared), in place of
    /// <see cref="Gelu"/>. Backward: du = dz·2·relu(u) in place. The first Linear's bias before it is fused into its
    /// kernel by a rewrite.
    /// </summary>
    internal sealed class ReluSquared : Op
    {
        readonly Value pre, output;

        /// <param name="pre">Its input, kept for backward; its gradient may be the output's buffer.</param>
        public ReluSquared(Value pre, Value output)
        {
            this.pre = pre;
            this.output = output;
        }

        public override IEnumerable<Value> Outputs => new[] { output };

        public override void Forward(Schedule s) => s.Launch("ReluSquaredForward", "R * Hidden", pre, output);

        public override void Backward(Schedule s) => s.Launch("ReluSquaredBackward", "R * Hidden", pre, output.Grad!, pre.Grad!);

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return new KernelSource("ReluSquaredForward", Forward(n));
            yield return new KernelSource("ReluSquaredBackward", Backward(n));
        }

        // Max against zero, not a comparison turned into a number: a bool-to-float conversion is one of ILGPU's PTX faults.
        static string Forward(Numeric n) => $$"""
            /// <summary>z = relu(u)².</summary>
            public static void ReluSquaredForward(Index1D index, ArrayView<{{n.Type}}> u, ArrayView<{{n.Type}}> z)
            {
                {{n.Type}} v = u[index], r = v < 0 ? {{n.Lit(0)}} : v; // relu that keeps a NaN (PTX's max drops it)
                z[index] = r * r;
            }
            """;

        static string Backward(Numeric n) => $$"""
            /// <summary>du = dz·2·relu(u); du may alias dz.</summary>
            public static void ReluSquaredBackward(Index1D index, ArrayView<{{n.Type}}> u, ArrayView<{{n.Type}}> dz, ArrayView<{{n.Type}}> du)
            {
                du[index] = dz[index] * 2 * (u[index] < 0 ? {{n.Lit(0)}} : u[index]);
            }
            """;
    }
}
