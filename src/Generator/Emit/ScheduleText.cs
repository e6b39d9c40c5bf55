using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Emit
{
    /// <summary>
    /// Renders a program's steps as the C# statements of a schedule: launches on the model's device with the
    /// kernel and its host entry, GEMMs, the module's Linear products, column sums, copies, zeroing, choices.
    /// Parameters are views of the flat weights (a layer's addressed from the layer base <c>p</c>).
    /// </summary>
    internal sealed class ScheduleText
    {
        readonly CodeWriter w;
        readonly Numeric n;
        readonly System.Func<Param, bool> inLayer;
        readonly HashSet<string> declared = new HashSet<string>();

        public ScheduleText(CodeWriter writer, Numeric numeric, System.Func<Param, bool> inLayer)
        {
            w = writer;
            n = numeric;
            this.inLayer = inLayer;
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
                    w.Open($"if ({c.Condition})");
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
            Launch l => $"Device.Launch(Kernels.{l.Kernel}, Kernels.Host.{l.Kernel}, {l.Domain}, {string.Join(", ", l.Args.Select(Arg))});",
            Gemm g => $"Device.Gemm({Bool(g.TransA)}, {Bool(g.TransB)}, {g.M}, {g.N}, {g.K}, {n.Lit(1)}, {Arg(g.A)}, {Arg(g.B)}, {Arg(g.Beta)}, {Arg(g.C)});",
            LinearProduct p => $"Linear(R, {p.Outs}, {p.Ins}, {p.X}, {Offset(p.Weight)}, {n.Lit(p.Accumulate ? 1 : 0)}, {p.Y});",
            ColumnSum c => $"Device.ColumnSum(R, {c.Columns}, {c.M}, {Arg(c.Dst)});",
            Copy c => $"{c.From}.CopyTo({c.To});",
            Zero z => z.Unless is null ? $"{z.Target}.MemSetToZero();" : $"if (!{z.Unless}) {z.Target}.MemSetToZero();",
            Comment c => "// " + c.Text,
            Select s => $"{(declared.Add(s.Local.Name) ? "var " : "")}{s.Local} = {s.Condition} ? {s.IfTrue} : {s.IfFalse};",
            _ => throw new System.InvalidOperationException($"no rendering for {step.GetType().Name}"),
        };

        static string Bool(bool b) => b ? "true" : "false";

        string Offset(Param p) => $"{(inLayer(p) ? "p + " : "")}{p.Field}";

        string Arg(Arg arg) => arg switch
        {
            TensorArg t => t.Value.Name,
            ParamArg p => $"{(p.IsGradient ? "G" : "W")}({Offset(p.Param)}, {p.Param.LengthExpr})",
            ScalarArg s => s.Expr,
            _ => throw new System.InvalidOperationException($"no rendering for {arg.GetType().Name}"),
        };
    }
}
