using GateLoop.Generator.Emit;
using GateLoop.Generator.Parsing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace GateLoop.Generator
{
    /// <summary>
    /// Compiles each <c>[GateLoopTransformer]</c> declaration into a model class with constant-size kernels.
    /// Pipeline: attribute → <see cref="TransformerParser"/> (value-equal spec + diagnostics) → <see cref="TransformerEmitter"/>.
    /// </summary>
    [Generator(LanguageNames.CSharp)]
    public sealed class GateLoopGenerator : IIncrementalGenerator
    {
        /// <summary>Tracking name of the parse step, for incremental-caching tests.</summary>
        public const string ParseStep = "ParseTransformer";

        /// <inheritdoc />
        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            var precision = context.AnalyzerConfigOptionsProvider.Select((options, _) =>
                options.GlobalOptions.TryGetValue("build_property.GateLoopPrecision", out var value) ? value.Trim() : "");

            var models = context.SyntaxProvider
                .ForAttributeWithMetadataName(TransformerParser.AttributeName,
                    static (node, _) => node is ClassDeclarationSyntax,
                    static (ctx, ct) => TransformerParser.Parse(ctx, ct))
                .WithTrackingName(ParseStep);

            context.RegisterSourceOutput(models.Combine(precision), static (spc, pair) =>
            {
                var (result, precisionName) = pair;
                foreach (var diagnostic in result.Diagnostics) spc.ReportDiagnostic(diagnostic.ToDiagnostic());
                if (result.Spec is null) return;
                var numeric = Numeric.FromPrecision(precisionName);
                if (numeric is null)
                {
                    spc.ReportDiagnostic(DiagnosticInfo.Create(Diagnostics.UnknownPrecision, result.Attribute, precisionName).ToDiagnostic());
                    return;
                }
                spc.AddSource(result.Spec.Type.HintName + ".g.cs", TransformerEmitter.Emit(result.Spec, numeric));
            });
        }
    }
}
