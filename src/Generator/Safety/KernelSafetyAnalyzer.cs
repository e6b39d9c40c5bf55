using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace GateLoop.Generator.Safety
{
    /// <summary>
    /// Refuses, in device code, the constructs of <see cref="PtxHazards"/>: ILGPU compiles them to PTX that computes
    /// something else than the CPU backends do. Device code is every kernel (a static method whose first parameter
    /// is an ILGPU index, or a method handed to an ILGPU kernel loader) and every method of this compilation a
    /// kernel calls, directly or not. Generated sources are analyzed too: that is where the model kernels live.
    /// Host twins take <c>HostView</c>s and never reach a GPU, so they are not kernels.
    /// </summary>
    [DiagnosticAnalyzer(LanguageNames.CSharp)]
    public sealed class KernelSafetyAnalyzer : DiagnosticAnalyzer
    {
        static readonly HashSet<string> IndexTypes = new HashSet<string>
        {
            "ILGPU.Index1D", "ILGPU.Index2D", "ILGPU.Index3D", "ILGPU.LongIndex1D", "ILGPU.LongIndex2D", "ILGPU.LongIndex3D",
        };

        /// <inheritdoc />
        public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => ImmutableArray.Create(Diagnostics.PtxHazard);

        /// <inheritdoc />
        public override void Initialize(AnalysisContext context)
        {
            context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.Analyze | GeneratedCodeAnalysisFlags.ReportDiagnostics);
            context.EnableConcurrentExecution();
            context.RegisterCompilationStartAction(start =>
            {
                if (start.Compilation.GetTypeByMetadataName("ILGPU.Index1D") is null) return;
                var methods = new ConcurrentDictionary<IMethodSymbol, MethodFacts>(SymbolEqualityComparer.Default);
                var loaded = new ConcurrentBag<IMethodSymbol>();
                start.RegisterOperationBlockAction(block =>
                {
                    if (block.OwningSymbol is not IMethodSymbol method) return;
                    var facts = new MethodFacts();
                    foreach (var operation in block.OperationBlocks.SelectMany(b => b.DescendantsAndSelf()))
                    {
                        if (PtxHazards.Find(operation) is { } found) facts.Hazards.Add((found.Hazard, found.Where.GetLocation()));
                        foreach (var callee in Callees(operation)) facts.Callees.Add(callee);
                        if (LoadedKernel(operation) is { } kernel) loaded.Add(kernel);
                    }
                    methods[method.OriginalDefinition] = facts;
                });
                start.RegisterCompilationEndAction(end => Report(end, methods, loaded));
            });
        }

        sealed class MethodFacts
        {
            public readonly List<(PtxHazard Hazard, Location Where)> Hazards = new List<(PtxHazard, Location)>();
            public readonly HashSet<IMethodSymbol> Callees = new HashSet<IMethodSymbol>(SymbolEqualityComparer.Default);
        }

        // Walks from every kernel through what it calls; a hazard is reported once, naming the kernels that reach it.
        static void Report(CompilationAnalysisContext end, ConcurrentDictionary<IMethodSymbol, MethodFacts> methods, ConcurrentBag<IMethodSymbol> loaded)
        {
            var kernels = methods.Keys.Where(IsKernel).Concat(loaded.Select(m => m.OriginalDefinition))
                .Distinct<IMethodSymbol>(SymbolEqualityComparer.Default)
                .OrderBy(m => m.ToDisplayString(), System.StringComparer.Ordinal);
            var reachedFrom = new Dictionary<IMethodSymbol, List<string>>(SymbolEqualityComparer.Default);
            foreach (var kernel in kernels)
            {
                var stack = new Stack<IMethodSymbol>();
                var seen = new HashSet<IMethodSymbol>(SymbolEqualityComparer.Default) { kernel };
                stack.Push(kernel);
                while (stack.Count > 0)
                {
                    var method = stack.Pop();
                    if (!reachedFrom.TryGetValue(method, out var names)) reachedFrom[method] = names = new List<string>();
                    names.Add(kernel.Name);
                    if (!methods.TryGetValue(method, out var facts)) continue;
                    foreach (var callee in facts.Callees)
                        if (seen.Add(callee)) stack.Push(callee);
                }
            }
            foreach (var pair in reachedFrom)
            {
                if (!methods.TryGetValue(pair.Key, out var facts)) continue;
                string names = string.Join(", ", pair.Value.Take(3).Select(n => "'" + n + "'")) + (pair.Value.Count > 3 ? $" and {pair.Value.Count - 3} more" : "");
                string where = pair.Value.Count == 1 && pair.Value[0] == pair.Key.Name ? "" : $" (in '{pair.Key.Name}')";
                foreach (var (hazard, location) in facts.Hazards)
                    end.ReportDiagnostic(Diagnostic.Create(Diagnostics.PtxHazard, location,
                        "kernel" + (pair.Value.Count > 1 ? "s " : " ") + names + where, hazard.Construct, hazard.Why, hazard.Instead));
            }
        }

        static bool IsKernel(IMethodSymbol method) =>
            method.IsStatic && method.Parameters.Length > 0 && IndexTypes.Contains(method.Parameters[0].Type.ToDisplayString())
            && !method.Parameters.Any(p => p.Type.Name == "HostView");

        // Methods of this compilation that an operation runs: calls, property accessors, constructors, operators.
        static IEnumerable<IMethodSymbol> Callees(IOperation operation)
        {
            IMethodSymbol? target = operation switch
            {
                IInvocationOperation call => call.TargetMethod,
                IPropertyReferenceOperation property => property.Property.GetMethod,
                IObjectCreationOperation creation => creation.Constructor,
                IBinaryOperation binary => binary.OperatorMethod,
                IUnaryOperation unary => unary.OperatorMethod,
                IConversionOperation conversion => conversion.OperatorMethod,
                _ => null,
            };
            if (target is null) yield break;
            target = target.OriginalDefinition;
            if (target.PartialImplementationPart is { } implementation) target = implementation;
            if (target.DeclaringSyntaxReferences.Length > 0 && target.MethodKind != MethodKind.LocalFunction) yield return target;
        }

        // A method group handed to an ILGPU loader (Accelerator.LoadStreamKernel(Kernel) and the like) is a kernel.
        static IMethodSymbol? LoadedKernel(IOperation operation)
        {
            if (operation is not IMethodReferenceOperation reference) return null;
            for (var parent = reference.Parent; parent is not null; parent = parent.Parent)
                if (parent is IInvocationOperation call)
                    return call.TargetMethod.ContainingNamespace?.ToDisplayString().StartsWith("ILGPU", System.StringComparison.Ordinal) == true
                        ? reference.Method
                        : null;
            return null;
        }
    }
}
