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
            foreach (var source in KernelSource.Of(ForwardMap, n)) yield return source;
            foreach (var source in KernelSource.Of(BackwardMap, n)) yield return source;
        }

        // relu as a select of floats, which keeps a NaN (PTX's max drops it), not a comparison turned into a number
        // (a bool-to-float conversion is one of ILGPU's PTX faults).
        static Lane Relu(Lane v) => Lane.IfLess(v, 0, 0, v);

        static readonly LaneMap ForwardMap = new LaneMap("ReluSquaredForward", "z = relu(u)².",
            new[] { ("u", "v") }, new[] { ("r", Relu("v")) }, new[] { ("z", (Lane)"r" * "r") });

        static readonly LaneMap BackwardMap = new LaneMap("ReluSquaredBackward", "du = dz·2·relu(u); du may alias dz.",
            new[] { ("u", "v"), ("dz", "d") }, new (string, Lane)[0], new[] { ("du", (Lane)"d" * 2 * Relu("v")) });
    }
}
