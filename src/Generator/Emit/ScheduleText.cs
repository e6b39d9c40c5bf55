using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Emit
{
    /// <summary>
    /// Renders a program's steps as the C# statements of a schedule: launches on the model's device with the
    /// kernel and its host entry, GEMMs, the module's Linear products, column sums, copies, zeroing, choices.
    /// Parameters are views of the flat weights (a layer's addressed from the layer base <c>p</c>). The ops name the
    /// shape a schedule runs at as <c>Batch</c>, <c>Seq</c>, <c>Rows</c>, <c>Chunks</c> and <c>Chunked</c>, and the
    /// model's views as <c>Inputs</c>, <c>LogitsView</c>, …; <see cref="PlanNames"/> renders them as what the schedule
    /// method was passed, so no schedule reads a shape from the model's state.
    /// </summary>
    internal sealed class ScheduleText
    {
        readonly CodeWriter w;
        readonly Numeric n;
        readonly System.Func<Param, bool> inLayer;
        readonly IReadOnlyDictionary<string, string> names;
        readonly HashSet<string> declared = new HashSet<string>();

        public ScheduleText(CodeWriter writer, Numeric numeric, System.Func<Param, bool> inLayer, IReadOnlyDictionary<string, string> names)
        {
            w = writer;
            n = numeric;
            this.inLayer = inLayer;
            this.names = names;
        }

        /// <summary>
        /// The ops' names for the shape, rendered from the schedule method's <c>batch</c> and <c>seq</c> (and
        /// <c>R</c> = batch·seq), and for the chunked scans' switch and count, which take them as arguments.
        /// </summary>
        public static readonly IReadOnlyDictionary<string, string> PlanNames = new Dictionary<string, string>
        {
            ["Batch"] = "batch", ["Seq"] = "seq", ["Rows"] = "R", ["Chunks"] = "Chunks(seq)", ["Chunked"] = "Chunked(batch, seq)",
        };

        /// <summary><paramref name="expr"/> with every name in <see cref="names"/> (not a member after a dot) replaced.</summary>
        string Render(string expr)
        {
            var e = SyntaxFactory.ParseExpression(expr);
            var renamed = e.DescendantNodesAndSelf().OfType<IdentifierNameSyntax>()
                .Where(id => names.ContainsKey(id.Identifier.ValueText) && !(id.Parent is MemberAccessExpressionSyntax m && m.Name == id));
            return e.ReplaceNodes(renamed, (old, _) => SyntaxFactory.ParseExpression(names[old.Identifier.ValueText]).WithTriviaFrom(old)).ToFullString();
        }

        public void Write(IEnumerable<Step> steps)
        {
            foreach (var step in steps) Write(step);
        }

        void Write(Step step)
        {
            switch (step)
            {
                case Choice c:
                    w.Open($"if ({Render(c.Condition)})");
                    Write(c.Then);
                    w.Close();
                    if (c.Otherwise.Count == 1) w.Line("else").Line("    " + Statement(c.Otherwise[0]));
                    else
                    {
                        w.Open("else");
                        Write(c.Otherwise);
                        w.Close();
                    }
                    break;
                default:
                    w.Line(Statement(step));
                    break;
            }
        }

        string Statement(Step step) => step switch
        {
            Launch l => $"Device.Launch(Kernels.{l.Kernel}, Kernels.Host.{l.Kernel}, {Render(l.Domain.Text)}, {string.Join(", ", l.Args.Select(Arg))});",
            Gemm g => $"Device.Gemm({Bool(g.TransA)}, {Bool(g.TransB)}, {Render(g.M.Text)}, {Render(g.N.Text)}, {Render(g.K.Text)}, {n.Lit(1)}, {Arg(g.A)}, {Arg(g.B)}, {Arg(g.Beta)}, {Arg(g.C)});",
            LinearProduct p => $"Linear(R, {p.Outs}, {p.Ins}, {Render(p.X.Name)}, {Offset(p.Weight)}, {n.Lit(p.Accumulate ? 1 : 0)}, {Render(p.Y.Name)});",
            ColumnSum c => $"Device.ColumnSum(R, {c.Columns}, {Render(c.M.Name)}, {Arg(c.Dst)});",
            Copy c => $"{Render(c.From.Name)}.CopyTo({Render(c.To.Name)});",
            Zero z => z.Unless is null ? $"{Render(z.Target.Name)}.MemSetToZero();" : $"if (!{z.Unless}) {Render(z.Target.Name)}.MemSetToZero();",
            Comment c => "// " + c.Text,
            Select s => $"{(declared.Add(s.Local.Name) ? "var " : "")}{s.Local} = {s.Condition} ? {Render(s.IfTrue.Name)} : {Render(s.IfFalse.Name)};",
            _ => throw new System.InvalidOperationException($"no rendering for {step.GetType().Name}"),
        };

        static string Bool(bool b) => b ? "true" : "false";

        string Offset(Param p) => $"{(inLayer(p) ? "p + " : "")}{p.Field}";

        string Arg(Arg arg) => arg switch
        {
            TensorArg t => Render(t.Value.Name),
            ParamArg p => $"{(p.IsGradient ? "G" : "W")}({Offset(p.Param)}, {p.Param.LengthExpr})",
            ScalarArg s => Render(s.Expr),
            _ => throw new System.InvalidOperationException($"no rendering for {arg.GetType().Name}"),
        };
    }
}
