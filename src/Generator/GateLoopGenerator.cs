using System.Linq;
using GateLoop.Generator.Emit;
using GateLoop.Generator.Lowering;
using GateLoop.Generator.Parsing;
using GateLoop.Generator.Templates;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace GateLoop.Generator
{
    /// <summary>
    /// Compiles each <c>[GateLoopTransformer]</c> declaration into a model class with constant-size kernels, in stages
    /// that only look downstream: the attribute → <see cref="TransformerParser"/> (a value-equal spec and its
    /// diagnostics) → <see cref="TransformerLowering"/> (the graph of ops) → the passes and <see cref="ModelEmitter"/>
    /// (the C# source); likewise each <c>[SimpleGateLoop]</c> layer through <see cref="SimpleGateLoopParser"/>,
    /// <see cref="SimpleGateLoopLowering"/> and <see cref="LayerEmitter"/>; and each hand-written <c>[HostTwins]</c>
    /// kernel class gets the host twins generated kernels carry (<see cref="HostTwins"/>).
    /// </summary>
    [Generator(LanguageNames.CSharp)]
    public sealed class GateLoopGenerator : IIncrementalGenerator
    {
        /// <summary>Tracking name of the parse step, for incremental-caching tests.</summary>
        public const string ParseStep = "ParseTransformer";

        /// <summary>Tracking name of the SimpleGateLoop parse step, for incremental-caching tests.</summary>
        public const string ParseLayerStep = "ParseSimpleGateLoop";

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
                Output(spc, pair.Left, pair.Right, static spec => spec.Type, static (spec, n) => ModelEmitter.Emit(spec, TransformerLowering.Lower(spec), n)));

            var layers = context.SyntaxProvider
                .ForAttributeWithMetadataName(SimpleGateLoopParser.AttributeName,
                    static (node, _) => node is ClassDeclarationSyntax,
                    static (ctx, ct) => SimpleGateLoopParser.Parse(ctx, ct))
                .WithTrackingName(ParseLayerStep);

            context.RegisterSourceOutput(layers.Combine(precision), static (spc, pair) =>
                Output(spc, pair.Left, pair.Right, static spec => spec.Type, static (spec, n) => LayerEmitter.Emit(spec, SimpleGateLoopLowering.Lower(spec), n)));

            var kernelClasses = context.SyntaxProvider
                .ForAttributeWithMetadataName(HostTwins.AttributeName,
                    static (node, _) => node is ClassDeclarationSyntax,
                    static (ctx, _) => new HostTwins.KernelClass(ModelDeclaration.Locate((INamedTypeSymbol)ctx.TargetSymbol),
                        string.Concat(((ClassDeclarationSyntax)ctx.TargetNode).Members.Select(m => m.ToFullString()))));

            context.RegisterSourceOutput(kernelClasses, static (spc, kernels) =>
                spc.AddSource(kernels.Type.HintName + ".Host.g.cs", HostTwins.Emit(kernels)));
        }

        /// <summary>
        /// Reports a parse's diagnostics, then adds its source in the project's precision (GL0008 when that is unknown),
        /// unless a launch fails the launch check (GL0040) or the class's name is one of the members the source gives it (GL0011).
        /// </summary>
        static void Output<TSpec>(SourceProductionContext spc, ParseResult<TSpec> result, string precisionName,
            System.Func<TSpec, Model.TypeLocation> type, System.Func<TSpec, Numeric, (string Source, System.Collections.Generic.IReadOnlyList<string> Problems)> emit) where TSpec : class
        {
            foreach (var diagnostic in result.Diagnostics) spc.ReportDiagnostic(diagnostic.ToDiagnostic());
            if (result.Spec is null) return;
            var numeric = Numeric.FromPrecision(precisionName);
            if (numeric is null)
            {
                spc.ReportDiagnostic(DiagnosticInfo.Create(Diagnostics.UnknownPrecision, result.Attribute, precisionName).ToDiagnostic());
                return;
            }
            var location = type(result.Spec);
            var (source, problems) = emit(result.Spec, numeric);
            foreach (var problem in problems)
                spc.ReportDiagnostic(DiagnosticInfo.Create(Diagnostics.BadLaunch, result.Attribute, problem).ToDiagnostic());
            if (problems.Count > 0) return;
            if (ModelSource.MemberNames(source, location).Contains(location.Name.TrimStart('@')))
            {
                spc.ReportDiagnostic(DiagnosticInfo.Create(Diagnostics.ReservedName, result.Declaration, location.Name.TrimStart('@')).ToDiagnostic());
                return;
            }
            spc.AddSource(location.HintName + ".g.cs", source);
        }
    }
}
