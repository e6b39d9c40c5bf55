using System.Threading;
using GateLoop.Generator.Model;
using Microsoft.CodeAnalysis;

namespace GateLoop.Generator.Parsing
{
    /// <summary>Turns a <c>[SimpleGateLoop]</c> class into a validated <see cref="SimpleGateLoopSpec"/>.</summary>
    internal static class SimpleGateLoopParser
    {
        public const string AttributeName = "GateLoop.SimpleGateLoopAttribute";

        const string LayerBase = "GateLoop.Runtime.SimpleGateLoopLayer<T>";

        public static ParseResult<SimpleGateLoopSpec> Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
        {
            var declaration = ModelDeclaration.Read(context, LayerBase, cancellationToken);
            foreach (var other in declaration.Type.GetAttributes())
                if (other.AttributeClass?.ToDisplayString() == TransformerParser.AttributeName)
                    declaration.Errors.Add(DiagnosticInfo.Create(Diagnostics.LayerAndModel, declaration.TypeLocation, declaration.Type.Name));

            int dim = declaration.Int("Dim", 0);
            declaration.RequirePositive("Dim", dim);
            // to_qkva.0.weight is the largest tensor, and whenever it fits the whole buffer (3·Dim more) does too.
            if (dim > 0) declaration.RequireIndexable(new[] { ("to_qkva.0.weight", 3L * dim * dim) });

            return declaration.Result(type => new SimpleGateLoopSpec(type, dim,
                PreNorm: declaration.Bool("PreNorm", true),
                PostLayerNorm: declaration.Bool("PostLayerNorm", false),
                Reverse: declaration.Bool("Reverse", false),
                Heinsen: declaration.Bool("Heinsen", false)));
        }
    }
}
