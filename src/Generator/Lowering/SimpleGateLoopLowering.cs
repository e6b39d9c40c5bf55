using System.Collections.Generic;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Model;
using GateLoop.Generator.Ops;

namespace GateLoop.Generator.Lowering
{
    /// <summary>
    /// A SimpleGateLoop layer declaration as ops, the seed's SimpleGateLoopLayer: [RMSNorm] → Z = h·Wᵀ → the fused
    /// sigmoid, scan and q ⊙ S → [LayerNorm], on the caller's x and y. The forward's buffers are the activations
    /// <c>a</c>; the backward's gradients live in their own plan <c>d</c>, made on the first backward.
    /// </summary>
    internal static class SimpleGateLoopLowering
    {
        public static Graph Lower(SimpleGateLoopSpec s)
        {
            var dim = ("Dim", s.Dim);
            var x = new Value("x", "rows * Dim", new Value("dx", "rows * Dim"));
            var y = new Value("y", "rows * Dim", new Value("dy", "rows * Dim"));
            // One buffer serves ∂L/∂h and, before it, LayerNorm's ∂L/∂(q ⊙ S) (dead once ∂L/∂h is written).
            var dh = Value.Gradient(new Buffer("DH", null, "rows * Dim",
                s.PostLayerNorm && s.PreNorm ? "gradient of q ⊙ S, then of h" : s.PostLayerNorm ? "gradient of q ⊙ S" : "gradient of h", BufferUse.Gradient), "d");
            var ops = new List<Op>();
            var h = x;
            if (s.PreNorm)
            {
                h = Value.Stored(new Buffer("H", null, "rows * Dim", "RMSNorm(x)"), dh);
                ops.Add(new RmsNorm("NormGamma", "norm.gamma", s.Dim, x, h, Value.Stored(new Buffer("InvNorm", null, "rows", "1/‖x‖ per position")), RmsNorm.Partials("d")));
            }
            var z = Value.Stored(new Buffer("Z", null, "rows * 3 * Dim", "[q | kv | gate logits] = h·Wᵀ; after the scan [q | S | a]"),
                Value.Gradient(new Buffer("DZ", null, "rows * 3 * Dim", "gradient of Z", BufferUse.Gradient), "d"));
            ops.Add(new Linear("QkvaW", "to_qkva.0", ("3 * Dim", 3 * s.Dim), dim, h, z));
            var mixed = s.PostLayerNorm ? Value.Stored(new Buffer("Out", null, "rows * Dim", "q ⊙ S before the LayerNorm"), dh) : y;
            ops.Add(new SimpleGateLoopScan(s, z, mixed));
            if (s.PostLayerNorm)
                ops.Add(new LayerNorm("PostLnW", "PostLnB", "maybe_post_ln", dim, mixed, y,
                    Value.Stored(new Buffer("Stats", null, "rows * 2", "LayerNorm mean and rstd per position")), LayerNorm.Partials("Dim", "d")));
            return new Graph(ops, new Op[0], new Op[0], 1);
        }
    }
}
