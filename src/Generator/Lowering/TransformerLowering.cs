using System.Collections.Generic;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Model;
using GateLoop.Generator.Ops;

namespace GateLoop.Generator.Lowering
{
    /// <summary>
    /// A GateLoop transformer declaration as ops: the token embedding; per layer a SimpleGateLoop block (a hybrid's),
    /// a mixer block (gate-looped or softmax attention) and a feed-forward block, each pre- or post-norm around its
    /// residual; the head; the cross-entropy loss. The modules and tensor names are the seed's, so the parameters come in its state_dict order.
    /// Here the gradient buffers are chosen: which values share one (a residual stream and its sums share dX, GELU's
    /// input and output share DF) and which get their own.
    /// </summary>
    internal static class TransformerLowering
    {
        static Value Gradient(string field, string size, string why) => Value.Gradient(new Buffer(field, null, size, why, BufferUse.Gradient));

        /// <summary>
        /// The residual stream's elements, one value each (block k's sum is block k+1's input), and the gradients
        /// every element and every normalized input share.
        /// </summary>
        sealed class Stream
        {
            readonly Dictionary<string, Value> elements = new Dictionary<string, Value>();

            public readonly Value Gradient = new Value("dX", "rows * Dim", storage: Block.StreamGradient);

            public readonly Value NormedGradient = Value.Gradient(Block.NormedGradient);

            /// <summary>The partials of the column sums every RMSNorm (pre-norm) or LayerNorm of Dim (post-norm) of the stream shares.</summary>
            public readonly Value RmsPartials = RmsNorm.Partials(), LayerNormPartials = LayerNorm.Partials("Dim");

            /// <summary>The stream at element <paramref name="index"/>, e.g. <c>2 * l + 1</c>.</summary>
            public Value this[string index] => elements.TryGetValue(index, out var v) ? v : elements[index] = new Value($"a.X[{index}]", "rows * Dim", Gradient);
        }

        static Buffer PerLayer(string field, string size, string why) => new Buffer(field, "Depth", size, why);

        public static Graph Lower(TransformerSpec s)
        {
            var dim = ("Dim", s.Dim);
            var stream = new Stream();
            var global = new List<Op> { new Embedding("TokenEmb", "token_emb.weight", ("NumTokens", s.NumTokens), dim, stream["0"]) };
            var layer = new List<Op>();
            if (s.SimpleGateLoopBlocks) layer.Add(SimpleGateLoop(s, stream));
            layer.Add(Mixer(s, stream));
            layer.Add(FeedForward(s, stream));
            var (head, logits) = Head(s, stream);
            return new Graph(global, layer, head, s.Depth, new CrossEntropy(logits));
        }

        // The residual stream has one element per block boundary: block k of layer l is element B·l + k.
        static int BlocksPerLayer(TransformerSpec s) => s.SimpleGateLoopBlocks ? 3 : 2;

        static string Blocks(TransformerSpec s) => $"{BlocksPerLayer(s)} * Depth";

        static string Element(TransformerSpec s, int k) => k == 0 ? $"{BlocksPerLayer(s)} * l" : $"{BlocksPerLayer(s)} * l + {k}";

        // The backward's comment for the gradient a block starts from, e.g. "dX = ∂L/∂X[2l+1]".
        static string Gradient(TransformerSpec s, int k) => $"dX = ∂L/∂X[{Element(s, k).Replace(" * ", "").Replace(" + ", "+")}]";

        // The mixer's and the feed-forward block's place in a layer, after a hybrid's SimpleGateLoop block.
        static int MixerBlock(TransformerSpec s) => s.SimpleGateLoopBlocks ? 1 : 0;

        /// <summary>
        /// A hybrid's SimpleGateLoop block (the seed's SimpleGateLoopLayer without its own norm, in the block's
        /// wrapper): Z = h·Wᵀ, the fused sigmoid, scan and q ⊙ S, added to the stream.
        /// </summary>
        static Op SimpleGateLoop(TransformerSpec s, Stream stream)
        {
            var (x, h, sum, norm) = Residual(s, stream, Element(s, 0), Element(s, 1), "Sgl");
            var z = Value.Stored(PerLayer("SglZ", "rows * 3 * Dim", "SimpleGateLoop [q | kv | gate logits]; after the scan [q | S | a]"),
                Gradient("DSglZ", "rows * 3 * Dim", "gradient of the SimpleGateLoop projection"));
            var output = Value.Stored(new Buffer("SglOut", null, "rows * Dim", "SimpleGateLoop output q ⊙ S of the current layer"), stream.Gradient);
            var scan = new SimpleGateLoopSpec(s.Type, s.Dim, PreNorm: false, PostLayerNorm: false, Reverse: false, Heinsen: false);
            var ops = new List<Op>
            {
                new Linear("SglW", "fn.to_qkva.0", ("3 * Dim", 3 * s.Dim), ("Dim", s.Dim), h, z),
                new SimpleGateLoopScan(scan, z, output, inModel: true),
            };
            return new Block("layers.{i}.0.", ("SimpleGateLoop block", $"SimpleGateLoop block: {Gradient(s, 1)}"), Blocks(s),
                !s.PostLayerNorm, x, sum, norm, ops, output);
        }

        // The block's norm: RMSNorm into h before the ops (pre-norm), or LayerNorm of the sum after them (post-norm).
        static (Value X, Value H, Value Sum, Op Norm) Residual(TransformerSpec s, Stream stream, string index, string next, string norm)
        {
            var x = stream[index];
            if (!s.PostLayerNorm)
            {
                var h = new Value($"a.H[{index}]", "rows * Dim", stream.NormedGradient);
                return (x, h, stream[next],
                    new RmsNorm(norm + "NormG", "norm.gamma", s.Dim, x, h, new Value($"a.InvNorm[{index}]", "rows"), stream.RmsPartials));
            }
            var sum = new Value($"a.Sum[{index}]", "rows * Dim", stream.Gradient);
            return (x, x, sum,
                new LayerNorm(norm + "NormW", norm + "NormB", "norm", ("Dim", s.Dim), sum, stream[next], new Value($"a.NormStats[{index}]", "rows * 2"),
                    stream.LayerNormPartials));
        }

        static Op Mixer(TransformerSpec s, Stream stream)
        {
            int m = MixerBlock(s);
            var (x, h, sum, norm) = Residual(s, stream, Element(s, m), Element(s, m + 1), "Mix");
            var dim = ("Dim", s.Dim);
            var inner = ("DimInner", s.DimInner);
            var ops = new List<Op>();
            var qkv = Value.Stored(PerLayer("Qkv", "rows * 3 * DimInner", "q | k | v"),
                Gradient("DQkv", "rows * 3 * DimInner", "gradient of q | k | v"));

            // The mixer's output goes through the gating (its own gradient) and the output projection (another),
            // or straight into the residual sum, sharing the stream's gradient.
            var projected = s.HasOutProjection ? Gradient("DGated", "rows * DimInner", "gradient of the output projection's input") : null;
            var core = s.SwishGating ? Gradient("DMixed", "rows * DimInner", "gradient of the gated input") : projected;
            Value Output(Buffer storage, Value? gradient) => Value.Stored(storage, gradient ?? stream.Gradient);

            Value mixed;
            if (s.UseGateLoopedAttn)
            {
                ops.Add(new Linear("Qkv", "fn.to_qkv", ("3 * DimInner", 3 * s.DimInner), dim, h, qkv));
                Value? transition = null;
                if (s.AblateStateTransition)
                {
                    ops.Add(new Unused("TransitionW", "fn.to_a.0.weight", new[] { ("2 * Heads", 2 * s.Heads), dim }, s.Dim));
                    ops.Add(new Unused("TransitionB", "fn.to_a.0.bias", new[] { ("2 * Heads", 2 * s.Heads) }, s.Dim));
                }
                else
                {
                    var projection = Value.Stored(PerLayer("TransitionIn", "rows * 2 * Heads", "x·Waᵀ before the bias"),
                        Gradient("DTransitionIn", "rows * 2 * Heads", "gradient of x·Waᵀ + ba"));
                    transition = Value.Stored(PerLayer("Transition", "rows * 2 * Heads", "the complex state transitions a"),
                        Gradient("DTransition", "rows * 2 * Heads", "gradient of a"));
                    ops.Add(new Linear("TransitionW", "fn.to_a.0", ("2 * Heads", 2 * s.Heads), dim, h, projection));
                    ops.Add(new StateTransition("Heads", s.AblateComplex, s.FracGradientStateTransition, projection, transition,
                        ("TransitionB", "fn.to_a.0.bias", ("2 * Heads", 2 * s.Heads), s.Dim)));
                }
                var scanned = PerLayer("ScanOut", "rows * DimInner", "scan outputs o (heads merged)");
                mixed = s.SubLayerNorm ? Value.Stored(scanned, Gradient("DScanOut", "rows * DimInner", "gradient of the scan output")) : Output(scanned, core);
                ops.Add(new GateLoopScan(s, qkv, transition, mixed));
                if (s.SubLayerNorm)
                {
                    var normalized = Output(PerLayer("SubOut", "rows * DimInner", "sub-LayerNorm outputs"), core);
                    ops.Add(new LayerNorm("SubNormW", "SubNormB", "fn.maybe_sub_ln", inner, mixed, normalized,
                        Value.Stored(PerLayer("SubStats", "rows * 2", "sub-LayerNorm mean and rstd")), LayerNorm.Partials("DimInner")));
                    mixed = normalized;
                }
            }
            else
            {
                var attention = new List<Op> { new Linear("Qkv", "fn.to_qkv.0", ("3 * DimInner", 3 * s.DimInner), dim, h, qkv) };
                if (s.RotaryEmbedding) attention.Add(new Rotary("RotaryFreqs", "fn.rotary_emb.freqs", s.HeadDim, qkv));
                if (s.RelPos)
                {
                    var projection = Value.Stored(PerLayer("TransitionIn", "rows * DimInner", "x·Waᵀ: complex relative-position gates"),
                        Gradient("DTransitionIn", "rows * DimInner", "gradient of x·Waᵀ"));
                    var gates = Value.Stored(PerLayer("Transition", "rows * DimInner", "the gates a after the polar sigmoid"),
                        Gradient("DTransition", "rows * DimInner", "gradient of a"));
                    attention.Add(new Linear("RelPosW", "fn.to_a.0", inner, dim, h, projection));
                    attention.Add(new StateTransition("(DimInner / 2)", s.AblateComplex, s.FracGradientStateTransition, projection, gates));
                    attention.Add(new RelativePositions(gates, qkv));
                }
                else if (s.DataDependentRelPos) attention.Add(new Unused("RelPosW", "fn.to_a.0.weight", new[] { inner, dim }, s.Dim));
                mixed = Output(PerLayer("AttnOut", "rows * DimInner", "attention outputs (heads merged)"), core);
                attention.Add(new Attention.Core(s.HeadDim, s.SoftmaxNormalize, qkv, mixed));
                ops.Add(new Attention(attention));
            }

            if (s.SwishGating)
            {
                var gates = Value.Stored(PerLayer("Gates", "rows * DimInner", "x·Wgᵀ before silu"), Gradient("DGates", "rows * DimInner", "gradient of x·Wgᵀ"));
                var gated = Value.Stored(PerLayer("Gated", "rows * DimInner", "mixer output ⊙ silu(gates)"), projected);
                ops.Add(new Linear("GatesW", "fn.to_gates.0", inner, dim, h, gates));
                ops.Add(new SwishGate(mixed, gates, gated));
                mixed = gated;
            }
            if (s.HasOutProjection)
                ops.Add(new Linear("OutW", s.UseGateLoopedAttn ? "fn.to_out" : "fn.to_out.1", dim, inner, mixed, sum,
                    s.UseGateLoopedAttn ? null : "OutB", accumulate: !s.PostLayerNorm));
            var titles = ($"Mixer block: {(s.UseGateLoopedAttn ? "gate-looped attention" : "causal softmax attention")}", $"Mixer block: {Gradient(s, m + 1)}");
            return new Block($"layers.{{i}}.{m}.", titles, Blocks(s), !s.PostLayerNorm, x, sum, norm, ops, s.HasOutProjection ? null : mixed);
        }

        static Op FeedForward(TransformerSpec s, Stream stream)
        {
            int f = MixerBlock(s) + 1;
            var (x, h, sum, norm) = Residual(s, stream, Element(s, f), Element(s, f + 1), "Ff");
            var hidden = ("Hidden", s.Hidden);
            // GELU's backward writes its input's gradient over its output's.
            var dHidden = Gradient("DF", "rows * Hidden", "feed-forward hidden gradient");
            var pre = Value.Stored(PerLayer("FfPre", "rows * Hidden", "feed-forward pre-activations (bias added)"), dHidden);
            var act = Value.Stored(PerLayer("FfAct", "rows * Hidden", "GELU outputs"), dHidden);
            var ops = new List<Op>
            {
                new Linear("Ff1W", "fn.0", hidden, ("Dim", s.Dim), h, pre, "Ff1B"),
                s.FeedForwardReluSquared ? new ReluSquared(pre, act) : new Gelu(pre, act),
                new Linear("Ff2W", "fn.2", ("Dim", s.Dim), hidden, act, sum, "Ff2B", accumulate: !s.PostLayerNorm),
            };
            return new Block($"layers.{{i}}.{f}.", ("Feed-forward block", $"Feed-forward block: {Gradient(s, f + 1)}"), Blocks(s),
                !s.PostLayerNorm, x, sum, norm, ops, null);
        }

        // The head reads the last element of the stream (RMSNorm'ed first when pre-norm).
        static (IReadOnlyList<Op> Ops, Value Logits) Head(TransformerSpec s, Stream stream)
        {
            var final = stream[Blocks(s)];
            var logits = new Value("LogitsView", "rows * NumTokens", new Value("LogitGrads", "rows * NumTokens"));
            var vocabulary = ("NumTokens", s.NumTokens);
            if (s.PostLayerNorm) return (new Op[] { new Linear("HeadW", "to_logits", vocabulary, ("Dim", s.Dim), final, logits) }, logits);
            var h = new Value($"a.H[{Blocks(s)}]", "rows * Dim", stream.NormedGradient);
            return (new Op[]
            {
                new RmsNorm("HeadNormG", "to_logits.0.gamma", s.Dim, final, h, new Value($"a.InvNorm[{Blocks(s)}]", "rows"), stream.RmsPartials),
                new Linear("HeadW", "to_logits.1", vocabulary, ("Dim", s.Dim), h, logits),
            }, logits);
        }
    }
}
