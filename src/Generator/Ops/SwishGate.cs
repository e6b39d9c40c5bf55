using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// The seed's swish gating of a mixer's output: y = x·silu(g), g = h·Wgᵀ from its own projection (a separate
    /// Linear op). Backward: dx = dy·silu(g), dg = dy·x·σ(g)·(1 + g·(1 − σ(g))).
    /// </summary>
    internal sealed class SwishGate : Op
    {
        readonly Value input, gates, output;

        public SwishGate(Value input, Value gates, Value output)
        {
            this.input = input;
            this.gates = gates;
            this.output = output;
        }

        public override IEnumerable<Value> Outputs => new[] { output };

        public override void Forward(Schedule s) => s.Launch("SwishGateForward", "R * DimInner", input, gates, output);

        public override void Backward(Schedule s) =>
            s.Launch("SwishGateBackward", "R * DimInner", input, gates, output.Grad!, input.Grad!, gates.Grad!);

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return Sigmoid.Helper(n);
            foreach (var source in KernelSource.Of(ForwardMap, n).Concat(KernelSource.Of(BackwardMap, n))) yield return source;
        }

        static readonly LaneMap ForwardMap = new LaneMap("SwishGateForward", "y = x·silu(g), silu(g) = g·σ(g).",
            new[] { ("x", "xv"), ("g", "gv") }, new (string, Lane)[0],
            new[] { ("y", (Lane)"xv" * "gv" * Sigmoid.Function.Call("gv")) });

        static readonly LaneMap BackwardMap = new LaneMap("SwishGateBackward", "dx = dy·silu(g); dg = dy·x·σ(g)·(1 + g·(1 − σ(g))).",
            new[] { ("x", "xv"), ("g", "gv"), ("dy", "d") }, new[] { ("s", Sigmoid.Function.Call("gv")) },
            new[] { ("dx", (Lane)"d" * "gv" * "s"), ("dg", (Lane)"d" * "xv" * "s" * (1 + (Lane)"gv" * (1 - (Lane)"s"))) });
    }
}
