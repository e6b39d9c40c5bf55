using System.Linq;
using GateLoop.Generator.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace GateLoop.Generator.Parsing
{
    /// <summary>A source location as plain values (no syntax trees), so it survives incremental caching.</summary>
    internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan Lines)
    {
        public Location ToLocation() => Location.Create(FilePath, Span, Lines);

        public static LocationInfo From(Location location)
        {
            var lines = location.GetLineSpan();
            return new LocationInfo(lines.Path, location.SourceSpan, lines.Span);
        }
    }

    /// <summary>A diagnostic kept as plain values so it survives incremental caching.</summary>
    internal sealed record DiagnosticInfo(string Id, LocationInfo Where, EquatableArray<string> Arguments)
    {
        public Diagnostic ToDiagnostic() =>
            Diagnostic.Create(Diagnostics.ById(Id), Where.ToLocation(), Arguments.Items.ToArray());

        public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, Location location, params string[] arguments) =>
            Create(descriptor, LocationInfo.From(location), arguments);

        public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, LocationInfo where, params string[] arguments) =>
            new DiagnosticInfo(descriptor.Id, where, new EquatableArray<string>(System.Collections.Immutable.ImmutableArray.Create(arguments)));
    }
}
