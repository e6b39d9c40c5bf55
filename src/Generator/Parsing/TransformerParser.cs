using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using GateLoop.Generator.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace GateLoop.Generator.Parsing
{
    /// <summary>The parse of one declaration: a spec when it is valid, and the diagnostics either way.</summary>
    /// <param name="Attribute">Where the attribute is, for diagnostics found after parsing (the precision).</param>
    internal sealed record ParseResult(TransformerSpec? Spec, EquatableArray<DiagnosticInfo> Diagnostics, LocationInfo Attribute);

    /// <summary>Turns a <c>[GateLoopTransformer]</c> class into a validated <see cref="TransformerSpec"/>.</summary>
    internal static class TransformerParser
    {
        public const string AttributeName = "GateLoop.GateLoopTransformerAttribute";

        static readonly string[] GateLoopOnly = { "GateLoopHeads", "DimGateLoopedAttn", "SubLayerNorm", "CheckpointGateLoopedAttn" };
        static readonly string[] AttentionOnly = { "Heads", "DimHead", "RotaryEmbedding", "DataDependentRelPos", "AttnSoftmaxNormalize" };

        public static ParseResult Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
        {
            var type = (INamedTypeSymbol)context.TargetSymbol;
            var syntax = (ClassDeclarationSyntax)context.TargetNode;
            var attribute = context.Attributes[0];
            var errors = new List<DiagnosticInfo>();
            var typeLocation = syntax.Identifier.GetLocation();
            var attributeLocation = attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken).GetLocation() ?? typeLocation;

            if (!syntax.Modifiers.Any(SyntaxKind.PartialKeyword))
                errors.Add(DiagnosticInfo.Create(Diagnostics.NotPartial, typeLocation, type.Name));
            for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
                if (outer.DeclaringSyntaxReferences.Select(r => r.GetSyntax(cancellationToken)).OfType<TypeDeclarationSyntax>()
                    .All(d => !d.Modifiers.Any(SyntaxKind.PartialKeyword)))
                    errors.Add(DiagnosticInfo.Create(Diagnostics.NotPartial, typeLocation, outer.Name));
            if (type.IsStatic)
                errors.Add(DiagnosticInfo.Create(Diagnostics.StaticModel, typeLocation, type.Name));
            if (Emit.TransformerEmitter.MemberNames.Contains(type.Name))
                errors.Add(DiagnosticInfo.Create(Diagnostics.ReservedName, typeLocation, type.Name));
            if (IsGenericContext(type))
                errors.Add(DiagnosticInfo.Create(Diagnostics.GenericContext, typeLocation, type.Name));
            if (type.BaseType is { SpecialType: not SpecialType.System_Object } baseType && !IsGeneratedBase(baseType))
                errors.Add(DiagnosticInfo.Create(Diagnostics.HasBaseClass, typeLocation, type.Name, baseType.ToDisplayString()));

            var args = attribute.NamedArguments.ToDictionary(a => a.Key, a => a.Value.Value);
            int Int(string name, int fallback) => args.TryGetValue(name, out var v) && v is int i ? i : fallback;
            bool Bool(string name, bool fallback) => args.TryGetValue(name, out var v) && v is bool b ? b : fallback;

            int numTokens = Int("NumTokens", 0), dim = Int("Dim", 0), depth = Int("Depth", 0), mult = Int("FeedForwardMult", 4);
            double frac = args.TryGetValue("FracGradientStateTransition", out var fracValue) && fracValue is double fracDouble ? fracDouble : 0.9;
            bool gateLoop = Bool("UseGateLoopedAttn", true);

            foreach (var (name, value) in new[] { ("NumTokens", numTokens), ("Dim", dim), ("Depth", depth), ("FeedForwardMult", mult) })
                if (value <= 0) errors.Add(DiagnosticInfo.Create(Diagnostics.NonPositive, attributeLocation, name, value.ToString()));
            if (!(frac >= 0 && frac <= 1))
                errors.Add(DiagnosticInfo.Create(Diagnostics.FracGradientOutOfRange, attributeLocation, frac.ToString(System.Globalization.CultureInfo.InvariantCulture)));

            // Options of the other mixer would be silently ignored; say so instead.
            var foreign = gateLoop ? AttentionOnly : GateLoopOnly;
            foreach (var name in foreign.Where(args.ContainsKey))
                errors.Add(DiagnosticInfo.Create(Diagnostics.OtherMixerOption, attributeLocation, name,
                    gateLoop ? "the softmax-attention baseline (UseGateLoopedAttn = false)" : "gate-looped attention (UseGateLoopedAttn = true)"));

            int heads, inner;
            if (gateLoop)
            {
                int gateLoopHeads = Int("GateLoopHeads", 0), dimInner = Int("DimGateLoopedAttn", 0);
                if (dimInner < 0) errors.Add(DiagnosticInfo.Create(Diagnostics.Negative, attributeLocation, "DimGateLoopedAttn", dimInner.ToString(), "Dim"));
                if (gateLoopHeads < 0) errors.Add(DiagnosticInfo.Create(Diagnostics.Negative, attributeLocation, "GateLoopHeads", gateLoopHeads.ToString(), "one head per channel"));
                inner = dimInner == 0 ? dim : dimInner;
                heads = gateLoopHeads == 0 ? inner : gateLoopHeads;
                if (inner > 0 && heads > 0 && inner % heads != 0)
                    errors.Add(DiagnosticInfo.Create(Diagnostics.HeadsDoNotDivide, attributeLocation, inner.ToString(), heads.ToString()));
            }
            else
            {
                heads = Int("Heads", 8);
                int dimHead = Int("DimHead", 64);
                foreach (var (name, value) in new[] { ("Heads", heads), ("DimHead", dimHead) })
                    if (value <= 0) errors.Add(DiagnosticInfo.Create(Diagnostics.NonPositive, attributeLocation, name, value.ToString()));
                inner = heads * dimHead;
                foreach (var option in new[] { "RotaryEmbedding", "DataDependentRelPos" })
                    if (Bool(option, false) && dimHead % 2 != 0)
                        errors.Add(DiagnosticInfo.Create(Diagnostics.OddHeadWidth, attributeLocation, dimHead.ToString(), option));
            }
            int h = heads;

            if (errors.Count == 0)
            {
                // Tensors, the flat parameter buffer and per-row activations are indexed with int on the host.
                long d = dim, i = inner, f = (long)dim * mult, v = numTokens;
                var sizes = new[]
                {
                    ("to_qkv.weight", 3 * i * d), ("to_a.0.weight", 2L * h * d), ("to_out.weight", d * i),
                    ("the feed-forward weight", f * d), ("token_emb.weight", v * d),
                    ("one token's scan state", 2 * i * (i / h)),
                };
                long layer = 3 * i * d + 2L * h * (d + 1) + 2 * i + i * d + d * i + 2 * f * d + f + 3 * d;
                var tooLarge = sizes.Concat(new[] { ("the parameter buffer", 2 * v * d + d + depth * layer) })
                    .FirstOrDefault(x => x.Item2 > int.MaxValue);
                if (tooLarge.Item1 is not null)
                    errors.Add(DiagnosticInfo.Create(Diagnostics.TooLarge, attributeLocation, tooLarge.Item1, tooLarge.Item2.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)));
            }

            var diagnostics = new EquatableArray<DiagnosticInfo>(errors.ToImmutableArray());
            var where = LocationInfo.From(attributeLocation);
            if (errors.Count > 0) return new ParseResult(null, diagnostics, where);

            var spec = new TransformerSpec(
                Locate(type),
                numTokens, dim, depth, h, inner, mult,
                SwishGating: Bool("AttnAddSwishGating", true),
                PostLayerNorm: Bool("PostLayerNorm", false),
                SubLayerNorm: Bool("SubLayerNorm", false),
                FracGradientStateTransition: frac,
                AblateComplex: Bool("AblateComplex", false),
                AblateStateTransition: Bool("AblateStateTransition", false),
                CheckpointGateLoopedAttn: Bool("CheckpointGateLoopedAttn", true),
                UseGateLoopedAttn: gateLoop,
                RotaryEmbedding: Bool("RotaryEmbedding", false),
                DataDependentRelPos: Bool("DataDependentRelPos", false),
                SoftmaxNormalize: Bool("AttnSoftmaxNormalize", !Bool("DataDependentRelPos", false)));
            return new ParseResult(spec, diagnostics, where);
        }

        // A second partial declaration of the class may already name the generated base; that is fine.
        static bool IsGeneratedBase(INamedTypeSymbol baseType) =>
            baseType.OriginalDefinition.ToDisplayString() == "GateLoop.Runtime.TransformerModel<T>";

        static bool IsGenericContext(INamedTypeSymbol type)
        {
            for (var t = type; t is not null; t = t.ContainingType)
                if (t.TypeParameters.Length > 0) return true;
            return false;
        }

        static TypeLocation Locate(INamedTypeSymbol type)
        {
            var containing = new List<string>();
            for (var t = type.ContainingType; t is not null; t = t.ContainingType)
                containing.Insert(0, (t.IsStatic ? "static " : "") + "partial " + Kind(t) + " " + Identifier(t.Name));
            var ns = type.ContainingNamespace.IsGlobalNamespace ? null
                : string.Join(".", type.ContainingNamespace.ToDisplayParts().Where(p => p.Kind == SymbolDisplayPartKind.NamespaceName).Select(p => Identifier(p.ToString())));
            return new TypeLocation(ns, new EquatableArray<string>(containing.ToImmutableArray()), Identifier(type.Name));
        }

        static string Kind(INamedTypeSymbol t) =>
            t.TypeKind == TypeKind.Interface ? "interface"
            : t.IsRecord ? (t.TypeKind == TypeKind.Struct ? "record struct" : "record")
            : t.TypeKind == TypeKind.Struct ? "struct" : "class";

        // A class called @event must be written with its @ in generated code.
        static string Identifier(string name) =>
            SyntaxFacts.GetKeywordKind(name) != SyntaxKind.None ? "@" + name : name;
    }
}
