using System.Linq;
using System.Threading;
using GateLoop.Generator.Model;
using Microsoft.CodeAnalysis;

namespace GateLoop.Generator.Parsing
{
    /// <summary>Turns a <c>[GateLoopTransformer]</c> class into a validated <see cref="TransformerSpec"/>.</summary>
    internal static class TransformerParser
    {
        public const string AttributeName = "GateLoop.GateLoopTransformerAttribute";

        static readonly string[] GateLoopOnly = { "GateLoopHeads", "DimGateLoopedAttn", "SubLayerNorm", "CheckpointGateLoopedAttn" };
        static readonly string[] AttentionOnly = { "Heads", "DimHead", "RotaryEmbedding", "DataDependentRelPos", "AttnSoftmaxNormalize", "SimpleGateLoopBlocks" };

        public static ParseResult<TransformerSpec> Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
        {
            var d = ModelDeclaration.Read(context, "GateLoop.Runtime.TransformerModel<T>", cancellationToken);
            var errors = d.Errors;
            var attributeLocation = d.AttributeLocation;

            int numTokens = d.Int("NumTokens", 0), dim = d.Int("Dim", 0), depth = d.Int("Depth", 0), mult = d.Int("FeedForwardMult", 4);
            double frac = d.Double("FracGradientStateTransition", 0.9);
            bool gateLoop = d.Bool("UseGateLoopedAttn", true);

            foreach (var (name, value) in new[] { ("NumTokens", numTokens), ("Dim", dim), ("Depth", depth), ("FeedForwardMult", mult) })
                d.RequirePositive(name, value);
            if (!(frac >= 0 && frac <= 1))
                errors.Add(DiagnosticInfo.Create(Diagnostics.FracGradientOutOfRange, attributeLocation, frac.ToString(System.Globalization.CultureInfo.InvariantCulture)));

            // Options of the other mixer would be silently ignored; say so instead.
            var foreign = gateLoop ? AttentionOnly : GateLoopOnly;
            foreach (var name in foreign.Where(d.Has))
                errors.Add(DiagnosticInfo.Create(Diagnostics.OtherMixerOption, attributeLocation, name,
                    gateLoop ? "the softmax-attention baseline (UseGateLoopedAttn = false)" : "gate-looped attention (UseGateLoopedAttn = true)"));

            int heads, inner;
            if (gateLoop)
            {
                int gateLoopHeads = d.Int("GateLoopHeads", 0), dimInner = d.Int("DimGateLoopedAttn", 0);
                if (dimInner < 0) errors.Add(DiagnosticInfo.Create(Diagnostics.Negative, attributeLocation, "DimGateLoopedAttn", dimInner.ToString(), "Dim"));
                if (gateLoopHeads < 0) errors.Add(DiagnosticInfo.Create(Diagnostics.Negative, attributeLocation, "GateLoopHeads", gateLoopHeads.ToString(), "one head per channel"));
                inner = dimInner == 0 ? dim : dimInner;
                heads = gateLoopHeads == 0 ? inner : gateLoopHeads;
                if (inner > 0 && heads > 0 && inner % heads != 0)
                    errors.Add(DiagnosticInfo.Create(Diagnostics.HeadsDoNotDivide, attributeLocation, inner.ToString(), heads.ToString()));
            }
            else
            {
                heads = d.Int("Heads", 8);
                int dimHead = d.Int("DimHead", 64);
                foreach (var (name, value) in new[] { ("Heads", heads), ("DimHead", dimHead) })
                    d.RequirePositive(name, value);
                inner = heads * dimHead;
                foreach (var option in new[] { "RotaryEmbedding", "DataDependentRelPos" })
                    if (d.Bool(option, false) && dimHead % 2 != 0)
                        errors.Add(DiagnosticInfo.Create(Diagnostics.OddHeadWidth, attributeLocation, dimHead.ToString(), option));
            }
            int h = heads;

            if (errors.Count == 0)
            {
                // Tensors, the flat parameter buffer and per-row activations are indexed with int on the host.
                long dd = dim, i = inner, f = (long)dim * mult, v = numTokens;
                long layer = 3 * i * dd + 2L * h * (dd + 1) + 2 * i + i * dd + dd * i + 2 * f * dd + f + 3 * dd + 3 * dd * dd + 2 * dd;
                d.RequireIndexable(new[]
                {
                    ("to_qkv.weight", 3 * i * dd), ("to_a.0.weight", 2L * h * dd), ("to_out.weight", dd * i),
                    ("the feed-forward weight", f * dd), ("token_emb.weight", v * dd),
                    ("one token's scan state", 2 * i * (i / h)), ("the parameter buffer", 2 * v * dd + dd + depth * layer),
                });
            }

            return d.Result(type => new TransformerSpec(
                type,
                numTokens, dim, depth, h, inner, mult,
                SwishGating: d.Bool("AttnAddSwishGating", true),
                PostLayerNorm: d.Bool("PostLayerNorm", false),
                SubLayerNorm: d.Bool("SubLayerNorm", false),
                FracGradientStateTransition: frac,
                AblateComplex: d.Bool("AblateComplex", false),
                AblateStateTransition: d.Bool("AblateStateTransition", false),
                CheckpointGateLoopedAttn: d.Bool("CheckpointGateLoopedAttn", true),
                UseGateLoopedAttn: gateLoop,
                RotaryEmbedding: d.Bool("RotaryEmbedding", false),
                DataDependentRelPos: d.Bool("DataDependentRelPos", false),
                SoftmaxNormalize: d.Bool("AttnSoftmaxNormalize", !d.Bool("DataDependentRelPos", false)),
                FeedForwardReluSquared: d.Bool("FeedForwardReluSquared", false),
                SimpleGateLoopBlocks: d.Bool("SimpleGateLoopBlocks", false)));
        }
    }
}
