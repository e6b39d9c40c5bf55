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
    /// <param name="Declaration">Where the class name is, for diagnostics found in what was emitted (a colliding name).</param>
    internal sealed record ParseResult<TSpec>(TSpec? Spec, EquatableArray<DiagnosticInfo> Diagnostics, LocationInfo Attribute, LocationInfo Declaration)
        where TSpec : class;

    /// <summary>
    /// One attributed class as every generator pipeline sees it: the checks that do not depend on what the
    /// attribute declares (partial, not static, not generic, no foreign base class), the attribute's named
    /// arguments, and where to report problems. (A name a generated member takes is found in what is emitted.)
    /// </summary>
    internal sealed class ModelDeclaration
    {
        readonly Dictionary<string, object?> arguments;

        ModelDeclaration(INamedTypeSymbol type, Location typeLocation, Location attributeLocation, Dictionary<string, object?> arguments)
        {
            Type = type;
            TypeLocation = typeLocation;
            AttributeLocation = attributeLocation;
            this.arguments = arguments;
        }

        public INamedTypeSymbol Type { get; }

        /// <summary>The class name: declaration problems are reported here.</summary>
        public Location TypeLocation { get; }

        /// <summary>The attribute: problems with its values are reported here.</summary>
        public Location AttributeLocation { get; }

        public List<DiagnosticInfo> Errors { get; } = new List<DiagnosticInfo>();

        /// <param name="generatedBase">The generic base the generator supplies, e.g. <c>GateLoop.Runtime.SimpleGateLoopLayer&lt;T&gt;</c>.</param>
        public static ModelDeclaration Read(GeneratorAttributeSyntaxContext context, string generatedBase, CancellationToken cancellationToken)
        {
            var type = (INamedTypeSymbol)context.TargetSymbol;
            var syntax = (ClassDeclarationSyntax)context.TargetNode;
            var attribute = context.Attributes[0];
            var typeLocation = syntax.Identifier.GetLocation();
            var attributeLocation = attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken).GetLocation() ?? typeLocation;
            var declaration = new ModelDeclaration(type, typeLocation, attributeLocation,
                attribute.NamedArguments.ToDictionary(a => a.Key, a => a.Value.Value));
            var errors = declaration.Errors;

            if (!syntax.Modifiers.Any(SyntaxKind.PartialKeyword))
                errors.Add(DiagnosticInfo.Create(Diagnostics.NotPartial, typeLocation, type.Name));
            for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
                if (outer.DeclaringSyntaxReferences.Select(r => r.GetSyntax(cancellationToken)).OfType<TypeDeclarationSyntax>()
                    .All(d => !d.Modifiers.Any(SyntaxKind.PartialKeyword)))
                    errors.Add(DiagnosticInfo.Create(Diagnostics.NotPartial, typeLocation, outer.Name));
            if (type.IsStatic)
                errors.Add(DiagnosticInfo.Create(Diagnostics.StaticModel, typeLocation, type.Name));
            if (IsGenericContext(type))
                errors.Add(DiagnosticInfo.Create(Diagnostics.GenericContext, typeLocation, type.Name));
            // A second partial declaration of the class may already name the generated base; that is fine.
            if (type.BaseType is { SpecialType: not SpecialType.System_Object } baseType && baseType.OriginalDefinition.ToDisplayString() != generatedBase)
                errors.Add(DiagnosticInfo.Create(Diagnostics.HasBaseClass, typeLocation, type.Name, baseType.ToDisplayString()));
            return declaration;
        }

        public int Int(string name, int fallback) => arguments.TryGetValue(name, out var v) && v is int i ? i : fallback;

        public bool Bool(string name, bool fallback) => arguments.TryGetValue(name, out var v) && v is bool b ? b : fallback;

        public double Double(string name, double fallback) => arguments.TryGetValue(name, out var v) && v is double d ? d : fallback;

        /// <summary>Whether the declaration sets <paramref name="name"/> at all (its default then does not apply).</summary>
        public bool Has(string name) => arguments.ContainsKey(name);

        /// <summary>Reports <paramref name="name"/> = <paramref name="value"/> when it is not positive (GL0003).</summary>
        public void RequirePositive(string name, int value)
        {
            if (value <= 0) Errors.Add(DiagnosticInfo.Create(Diagnostics.NonPositive, AttributeLocation, name, value.ToString()));
        }

        /// <summary>Reports the first of <paramref name="sizes"/> that an int-indexed buffer cannot hold (GL0009).</summary>
        public void RequireIndexable(IEnumerable<(string What, long Elements)> sizes)
        {
            var tooLarge = sizes.FirstOrDefault(x => x.Elements > int.MaxValue);
            if (tooLarge.What is not null)
                Errors.Add(DiagnosticInfo.Create(Diagnostics.TooLarge, AttributeLocation, tooLarge.What,
                    tooLarge.Elements.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)));
        }

        /// <summary>The result: the spec built by <paramref name="spec"/> when nothing was reported, else the diagnostics alone.</summary>
        public ParseResult<TSpec> Result<TSpec>(System.Func<TypeLocation, TSpec> spec) where TSpec : class =>
            new ParseResult<TSpec>(Errors.Count == 0 ? spec(Locate(Type)) : null,
                new EquatableArray<DiagnosticInfo>(Errors.ToImmutableArray()), LocationInfo.From(AttributeLocation), LocationInfo.From(TypeLocation));

        static bool IsGenericContext(INamedTypeSymbol type)
        {
            for (var t = type; t is not null; t = t.ContainingType)
                if (t.TypeParameters.Length > 0) return true;
            return false;
        }

        /// <summary>Where <paramref name="type"/> is declared, for emitting another part of it.</summary>
        public static TypeLocation Locate(INamedTypeSymbol type)
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
