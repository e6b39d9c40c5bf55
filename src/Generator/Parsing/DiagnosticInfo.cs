using System.Linq;
using GateLoop.Generator.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace GateLoop.Generator.Parsing
{
    /// <summary>A diagnostic kept as plain values (no syntax trees) so it survives incremental caching.</summary>
    internal sealed record DiagnosticInfo(string Id, string FilePath, TextSpan Span, LinePositionSpan Lines, EquatableArray<string> Arguments)
    {
        public Diagnostic ToDiagnostic() =>
            Diagnostic.Create(Diagnostics.ById(Id), Location.Create(FilePath, Span, Lines), Arguments.Items.ToArray());

        public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, Location location, params string[] arguments)
        {
            var lines = location.GetLineSpan();
            return new DiagnosticInfo(descriptor.Id, lines.Path, location.SourceSpan, lines.Span,
                new EquatableArray<string>(System.Collections.Immutable.ImmutableArray.Create(arguments)));
        }
    }
}
