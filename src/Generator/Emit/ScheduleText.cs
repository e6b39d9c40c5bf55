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
    /// shape a schedule runs at as <c>Batch</c>, <c>Seq</c>, <c>Rows</c>, <c>Chunks</c>, <c>Chunked</c> and <c>Decoding</c>, and the
    /// model's views as <c>Inputs</c>, <c>LogitsView</c>, …; <see cref="PlanNames"/> renders them as what the schedule
    /// method was passed, so no schedule reads a shape from the model's state. A buffer only matrix products read (see
    /// <see cref="Passes.MemoryPlan.GemmInputs"/>) is a <c>GemmInput</c>: the products take it whole, every other step its values.
    /// </summary>
    internal sealed class ScheduleText
    {
        readonly CodeWriter w;
        readonly Numeric n;
        readonly System.Func<Param, bool> inLayer;
        readonly IReadOnlyDictionary<string, string> names;
        readonly HashSet<string> declared = new HashSet<string>();
        readonly HashSet<Buffer> gemmInputs;

        public ScheduleText(CodeWriter writer, Numeric numeric, System.Func<Param, bool> inLayer, IReadOnlyDictionary<string, string> names,
            IEnumerable<Buffer>? gemmInputs = null)
        {
            w = writer;
            n = numeric;
            this.inLayer = inLayer;
            this.names = names;
            this.gemmInputs = new HashSet<Buffer>(gemmInputs ?? new Buffer[0]);
        }

        /// <summary>
        /// The ops' names for the shape, rendered from the schedule method's <c>batch</c> and <c>seq</c> (and
        /// <c>R</c> = batch·seq), and for the chunked scans' switch and count and the decoding switch, which take them as arguments.
        /// </summary>
        public static readonly IReadOnlyDictionary<string, string> PlanNames = new Dictionary<string, string>
        {
            ["Batch"] = "batch", ["Seq"] = "seq", ["Rows"] = "R", ["Chunks"] = "Chunks(seq)", ["Chunked"] = "Chunked(batch, seq)",
            ["Decoding"] = "Decoding(batch, seq)",
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
                    // A local a branch declares is that branch's: the other declares its own.
                    var outer = new HashSet<string>(declared);
                    w.Open($"if ({Render(c.Condition)})");
                    Write(c.Then);
                    w.Close();
                    declared.IntersectWith(outer);
                    if (c.Otherwise.Count == 1 && c.Otherwise[0] is not Choice) w.Line("else").Line("    " + Statement(c.Otherwise[0]));
                    else
                    {
                        w.Open("else");
                        Write(c.Otherwise);
                        w.Close();
                    }
                    declared.IntersectWith(outer);
                    break;
                default:
                    w.Line(Statement(step));
                    break;
            }
        }

        string Statement(Step step) => step switch
        {
            Launch l => $"Device.Launch(Kernels.{l.Kernel}, Kernels.Host.{l.Kernel}, {Render(l.Domain.Text)}, {string.Join(", ", l.Args.Select(a => Arg(a)))});",
            Gemm g => $"Device.Gemm({Bool(g.TransA)}, {Bool(g.TransB)}, {Render(g.M.Text)}, {Render(g.N.Text)}, {Render(g.K.Text)}, {n.Lit(1)}, {Arg(g.A, product: true)}, {Arg(g.B, product: true)}, {Arg(g.Beta)}, {Arg(g.C)});",
            LinearProduct p => $"Linear(R, {p.Outs}, {p.Ins}, {Render(p.X.Name)}, {Offset(p.Weight)}, {n.Lit(p.Accumulate ? 1 : 0)}, {Tensor(p.Y)});",
            ColumnSum c => $"Device.ColumnSum(R, {c.Columns}, {Tensor(c.M)}, {Arg(c.Dst)});",
            Copy c => $"Device.Copy({Tensor(c.From)}, {Tensor(c.To)});",
            Zero z => z.Unless is null ? $"{Tensor(z.Target)}.MemSetToZero();" : $"if (!{z.Unless}) {Tensor(z.Target)}.MemSetToZero();",
            Comment c => "// " + c.Text,
            Select s => $"{(declared.Add(s.Local.Name) ? "var " : "")}{s.Local} = {s.Condition} ? {Tensor(s.IfTrue)} : {Tensor(s.IfFalse)};",
            _ => throw new System.InvalidOperationException($"no rendering for {step.GetType().Name}"),
        };

        static string Bool(bool b) => b ? "true" : "false";

        string Offset(Param p) => $"{(inLayer(p) ? "p + " : "")}{p.Field}";

        // A tensor where a step other than a product takes it: a GemmInput's values.
        string Tensor(Value v) => Render(v.Name) + (v.Storage is { } b && gemmInputs.Contains(b) ? ".Values" : "");

        string Arg(Arg arg, bool product = false) => arg switch
        {
            TensorArg t => product ? Render(t.Value.Name) : Tensor(t.Value),
            ParamArg p => $"{(p.IsGradient ? "G" : "W")}({Offset(p.Param)}, {p.Param.LengthExpr})",
            ScalarArg s => Render(s.Expr),
            _ => throw new System.InvalidOperationException($"no rendering for {arg.GetType().Name}"),
        };
    }
}
