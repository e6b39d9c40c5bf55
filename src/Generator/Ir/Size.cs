using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace GateLoop.Generator.Ir
{
    /// <summary>
    /// A size (elements of a tensor, indices of a launch) as an expression over the model's constants and the plan's
    /// <c>batch</c> and <c>seq</c> (<c>rows</c> = batch·seq; the schedules' <c>Batch</c>, <c>Seq</c>, <c>R</c> and
    /// <c>Rows</c> name the same). It keeps the text the schedules write it in, and can be evaluated in 64 bits where
    /// constants decide it or rendered as C# that computes it in 64 bits where batch and seq do.
    /// </summary>
    internal sealed class Size
    {
        static readonly Dictionary<string, string> PlanVariables = new Dictionary<string, string>
        {
            ["batch"] = "batch", ["Batch"] = "batch", ["seq"] = "seq", ["Seq"] = "seq",
            ["rows"] = "rows", ["R"] = "rows", ["Rows"] = "rows", ["Chunks"] = "chunks",
        };

        readonly ExpressionSyntax tree;

        public Size(string text)
        {
            Text = text;
            tree = SyntaxFactory.ParseExpression(text);
        }

        public static implicit operator Size(string text) => new Size(text);

        /// <summary>The expression as the schedules write it (int arithmetic, safe once the plan check passed).</summary>
        public string Text { get; }

        /// <summary>Whether batch or seq decide it.</summary>
        public bool OnPlan => Names(tree).Any(PlanVariables.ContainsKey);

        /// <summary>Its value in 64 bits when only <paramref name="constants"/> decide it; null when batch or seq do.</summary>
        public long? Evaluate(IReadOnlyDictionary<string, long> constants) => Evaluate(tree, constants);

        /// <summary>C# computing it in 64 bits from the ints named <paramref name="batch"/> and <paramref name="seq"/>.</summary>
        public string Long(string batch, string seq) => Long(tree, batch, seq);

        public override string ToString() => Text;

        static IEnumerable<string> Names(ExpressionSyntax e) => e.DescendantNodesAndSelf().OfType<ExpressionSyntax>()
            .Where(n => n is IdentifierNameSyntax || n is MemberAccessExpressionSyntax).Select(n => n.ToString());

        static ExpressionSyntax Strip(ExpressionSyntax e) => e switch
        {
            ParenthesizedExpressionSyntax p => Strip(p.Expression),
            CastExpressionSyntax c => Strip(c.Expression),
            _ => e,
        };

        static long? Evaluate(ExpressionSyntax e, IReadOnlyDictionary<string, long> constants)
        {
            e = Strip(e);
            switch (e)
            {
                case LiteralExpressionSyntax literal: return System.Convert.ToInt64(literal.Token.Value);
                case BinaryExpressionSyntax b:
                    var (l, r) = (Evaluate(b.Left, constants), Evaluate(b.Right, constants));
                    if (l is null || r is null) return null;
                    return b.Kind() switch
                    {
                        SyntaxKind.MultiplyExpression => l * r,
                        SyntaxKind.AddExpression => l + r,
                        SyntaxKind.SubtractExpression => l - r,
                        SyntaxKind.DivideExpression => l / r,
                        _ => null,
                    };
                default: return constants.TryGetValue(e.ToString(), out var v) ? v : null;
            }
        }

        static string Long(ExpressionSyntax e, string batch, string seq)
        {
            e = Strip(e);
            switch (e)
            {
                case LiteralExpressionSyntax literal: return literal.Token.ValueText + "L";
                case BinaryExpressionSyntax b: return $"({Long(b.Left, batch, seq)} {b.OperatorToken.Text} {Long(b.Right, batch, seq)})";
                default:
                    string name = e.ToString();
                    if (!PlanVariables.TryGetValue(name, out var variable)) return $"(long){name}";
                    return variable switch
                    {
                        "batch" => $"(long){batch}",
                        "seq" => $"(long){seq}",
                        "rows" => $"((long){batch} * {seq})",
                        _ => $"(((long){seq} + Kernels.Chunk - 1) / Kernels.Chunk)", // the chunked scans' chunks per sequence
                    };
            }
        }
    }
}
