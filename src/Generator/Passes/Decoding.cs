using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace GateLoop.Generator.Passes
{
    /// <summary>
    /// The forward of a generated token on a GPU, a rewrite of the forward schedules into the branch a choice by
    /// <see cref="Condition"/> takes: at a few rows every Linear product is a matrix–vector product, which a launch
    /// of a warp per (row, output) does in a few microseconds where a cuBLAS call costs its overhead. The products
    /// of one input become one such launch (<see cref="Products"/>), and the launches around them join it: an
    /// elementwise op on one product's output over its rows × outputs (the bias and activation, the residual add)
    /// runs in the lane that has the output's sum, and a row kernel over the input's rows that writes the input
    /// only at its lanes' own elements in its last pass (the post-norm block's LayerNorm) runs in every warp of the
    /// row, each holding the elements it multiplies, the warps of the row's first output writing what it writes.
    /// </summary>
    internal static class Decoding
    {
        /// <summary>The schedules' name of the switch; <see cref="Member"/> defines it in the model class.</summary>
        public const string Condition = "Decoding";

        /// <summary>
        /// The most rows (sequences of one position) the branch runs at: the cost model puts the seed config's token
        /// ahead of the GEMMs up to 4 rows and behind them at 8, 1.78 against 1.68 ms
        /// (bench/results/decode-products-20261204; estimates).
        /// </summary>
        public const int RowsAtMost = 4;

        /// <summary>The model member that says when the forward takes the decoding branch.</summary>
        public static KernelSource Member => new KernelSource("Decoding", $$"""
            // Above this many rows a warp per (row, output) reads each weight matrix once per row: a GEMM reads it once.
            const int DecodingRowsAtMost = {{RowsAtMost}};

            /// <summary>
            /// Whether the forward runs its decoding launches (a warp per row and output of each Linear, the ops around
            /// them joined in): on a GPU, inferring (no backward follows), for one position of at most DecodingRowsAtMost
            /// sequences, with fp32 products.
            /// </summary>
            bool Decoding(int batch, int seq) => Inferring && Device.IsGpu && seq == 1 && batch <= DecodingRowsAtMost && Device.GemmPrecision == {{Numeric.Runtime}}GemmPrecision.Fp32;
            """);

        /// <summary>
        /// <paramref name="steps"/> with each run of Linear products of one input as one launch, the elementwise ops
        /// after it and the row kernel before it joined where they can be; null when no product could be.
        /// </summary>
        public static (IReadOnlyList<Step> Steps, IReadOnlyList<KernelSource> Sources)? Variant(Program program, IReadOnlyList<Step> steps)
        {
            if (!program.Kernels.Any(k => k.Key == "RowLanes")) return null;
            var result = new List<Step>();
            var sources = new List<KernelSource>();
            for (int i = 0; i < steps.Count; i++)
            {
                if (steps[i] is LinearProduct first)
                {
                    var group = steps.Skip(i).TakeWhile(s => s is LinearProduct p && p.X == first.X && p.Ins.Text == first.Ins.Text)
                        .Cast<LinearProduct>().ToList();
                    int next = i + group.Count;
                    var epilogues = new Launch?[group.Count];
                    while (next < steps.Count && steps[next] is Launch e && EpilogueOf(program, e, group, epilogues) is int k)
                    {
                        epilogues[k] = e;
                        next++;
                    }
                    // The launch before them, past comments.
                    int at = result.FindLastIndex(s => s is not Comment);
                    var before = at >= 0 ? result[at] as Launch : null;
                    var prologue = before is not null && IsPrologue(program, before, group, epilogues) ? Products(program, before, group, epilogues) : null;
                    if ((prologue ?? Products(program, null, group, epilogues)) is var (launch, source))
                    {
                        if (prologue is not null) result.RemoveAt(at);
                        result.Add(launch);
                        sources.Add(source);
                        i = next - 1;
                        continue;
                    }
                }
                result.Add(steps[i]);
            }
            return sources.Count == 0 ? null : (result, sources);
        }

        // The product whose output e is an elementwise op on, when e can run where that output is summed: over its
        // rows × outputs, touching what it is passed only at its index (a parameter's view anywhere), with no other
        // product's output and nothing another such op writes among what it touches, nor the input among what it writes.
        static int? EpilogueOf(Program program, Launch e, IReadOnlyList<LinearProduct> group, Launch?[] taken)
        {
            if (!Fusion.Bound(e) || program.Kernel(e.Kernel) is not { } kernel || kernel.Method.Body is not { } body || Fusion.Branches(body)
                || Fusion.HostEntry(kernel.Source, e.Kernel) is null) return null;
            var read = Enumerable.Range(0, group.Count).Where(k => e.Reads.Contains(group[k].Y)).ToList();
            if (read.Count != 1 || taken[read[0]] is not null || e.Domain.Text != "R * " + group[read[0]].Outs.Text) return null;
            var own = group[read[0]].Y;
            if (!e.Bindings.Where(b => b.Arg is TensorArg).All(b => Fusion.Uses(body, b.Parameter.Name)
                .All(u => u.Parent is ElementAccessExpressionSyntax a && a.Expression == u && Fusion.Subscript(a) == "index"))) return null;
            var products = group.Select(p => p.Y).Where(y => y != own).Append(group[0].X).ToList();
            if (e.Reads.Concat(e.Writes).Any(products.Contains)) return null;
            if (taken.Any(t => t is not null && (t.Writes.Intersect(e.Reads.Concat(e.Writes)).Any() || e.Writes.Intersect(t.Reads).Any()))) return null;
            return read[0];
        }

        // Whether a row kernel over the input's rows that writes it (and none of the products' outputs, nor reads
        // what it writes) may run in the products' warps; the form of its code is checked where it is rewritten.
        static bool IsPrologue(Program program, Launch row, IReadOnlyList<LinearProduct> group, Launch?[] epilogues)
        {
            if (!Fusion.Bound(row) || row.Domain.Text != LaneRow.Domain("R") || !row.Writes.Contains(group[0].X)) return false;
            if (program.Kernel(row.Kernel) is not { } kernel || Fusion.RowWidth(kernel.Method) != group[0].Ins.Text
                || Fusion.HostEntry(kernel.Source, row.Kernel) is null) return false;
            if (row.Reads.Intersect(row.Writes).Any() || group.Any(p => row.Reads.Contains(p.Y) || row.Writes.Contains(p.Y))) return false;
            return !epilogues.Any(e => e is not null && (e.Reads.Concat(e.Writes).Intersect(row.Writes).Any() || e.Writes.Intersect(row.Reads).Any()));
        }

        // The locals of the products' kernel and host entry, which what joins them must not declare.
        static readonly string[] KernelLocals = { "lane", "warp", "row", "output", "o", "stores", "dot", "d", "xd", "weight", "at" };
        static readonly string[] HostLocals = { "warpFrom", "warpTo", "rowsFrom", "rowsTo", "warp", "row", "output", "o", "dot", "d", "at", "atFrom", "atTo" };

        static IEnumerable<string> Locals(SyntaxNode node) =>
            node.DescendantNodes().OfType<VariableDeclaratorSyntax>().Select(v => v.Identifier.Text);

        /// <summary>
        /// One launch of a warp per row and output of every product in <paramref name="group"/> (one input, the
        /// outputs one after the other), each lane summing its strided share of the input times the weights' row and
        /// the warp adding the shares up; the lane that has the sum writes it and runs the output's
        /// <paramref name="epilogues"/> there. With <paramref name="prologue"/>, every warp first runs the row kernel on
        /// its row, keeping the input's elements it writes in its last pass to multiply; the warps of a row's first
        /// output store what it writes. Null when some piece's code is not of the form this needs.
        /// </summary>
        static (Launch, KernelSource)? Products(Program program, Launch? prologue, IReadOnlyList<LinearProduct> group, Launch?[] epilogues)
        {
            string T = program.Numeric.Type, view = $"ArrayView<{T}>", ins = group[0].Ins.Text;
            var starts = new List<string>();
            for (int k = 0; k < group.Count; k++) starts.Add(k == 0 ? "0" : string.Join(" + ", group.Take(k).Select(p => p.Outs.Text)));
            string outs = Parenthesized(string.Join(" + ", group.Select(p => p.Outs.Text)));

            // The parameters: the prologue's under its own names, then the input, the weights and outputs, the
            // epilogues'; one for each value, named apart from every local the kernel will hold.
            var names = new List<string>();
            var types = new List<string>();
            var args = new List<Arg>();
            var taken = new HashSet<string>(KernelLocals.Concat(HostLocals));
            var pieces = new[] { prologue }.Concat(epilogues).Where(l => l is not null).Select(l => program.Kernel(l!.Kernel)!.Value).ToList();
            foreach (var piece in pieces)
                foreach (var local in Locals(piece.Method).Concat(Locals(Fusion.HostEntry(piece.Source, piece.Method.Identifier.Text)!))) taken.Add(local);
            string Add(string name, string type, Arg arg)
            {
                int same = args.FindIndex(a => Same(a, arg));
                if (same >= 0) return names[same];
                while (taken.Contains(name) || names.Contains(name)) name += "2";
                names.Add(name);
                types.Add(type);
                args.Add(arg);
                return name;
            }
            Dictionary<string, string> Bind(Launch launch) =>
                launch.Bindings.ToDictionary(b => b.Parameter.Name, b => Add(b.Parameter.Name, b.Parameter.Type, b.Arg));

            string kernelStart = "int lane = index.X % RowLanes;\n" +
                $"long warp = index.X / RowLanes, row = warp / {outs}, output = warp % {outs}, o = row * {ins};\n";
            string xd;
            MethodDeclarationSyntax? rowKernel = null;
            var prologueNames = new Dictionary<string, string>();
            if (prologue is not null)
            {
                rowKernel = program.Kernel(prologue.Kernel)!.Value.Method;
                if (Locals(rowKernel).Intersect(KernelLocals.Where(l => l != "row" && l != "o" && l != "lane" && l != "d")).Any()) return null;
                prologueNames = Bind(prologue);
                if (prologueNames.Any(n => n.Key != n.Value)) return null;
                var written = prologue.Bindings.First(b => b.Arg is TensorArg t && t.Value == group[0].X).Parameter.Name;
                if (Joined(rowKernel, written, T) is not { } joined) return null;
                kernelStart += "bool stores = output == 0; // the warps of the row's first output store what the row kernel writes\n" + joined.Start;
                xd = joined.Loop;
            }
            else xd = $"{T} xd = {Add("x", view, group[0].X)}[o + d];\n";

            var weights = group.Select(p => Add(Camel(p.Weight.Field), view, new ParamArg(p.Weight, false))).ToList();
            var outputs = group.Select(p => Add(Camel(Field(p)) + "Y", view, p.Y)).ToList();
            var epilogueNames = epilogues.Select(e => e is null ? null : Bind(e)).ToList();
            string x = names[args.FindIndex(a => a is TensorArg t && t.Value == group[0].X)];
            // An epilogue's locals sit among the kernel's top-level ones and its parameters.
            var topLevel = new HashSet<string>(KernelLocals.Concat(names).Concat(rowKernel is null ? new string[0]
                : rowKernel.Body!.Statements.OfType<LocalDeclarationStatementSyntax>().SelectMany(Locals)));
            if (epilogues.Any(e => e is not null && Locals(program.Kernel(e.Kernel)!.Value.Method).Any(topLevel.Contains))) return null;

            string weight = group.Count == 1
                ? $"{T} weight = {weights[0]}[output * {ins} + d];\n"
                : $"{T} weight;\n" + string.Concat(group.Select((p, k) =>
                    (k == 0 ? "" : "else ") + (k < group.Count - 1 ? $"if (output < {Parenthesized(starts[k + 1])}) " : "") +
                    $"weight = {weights[k]}[{Minus("output", starts[k])} * {ins} + d];\n"));
            // One block per product, chosen by the output.
            string Branches(System.Func<int, string> body) => group.Count == 1 ? body(0) : string.Concat(group.Select((p, k) =>
            {
                string test = k < group.Count - 1 ? $"if (output < {Parenthesized(starts[k + 1])})" : "";
                string head = k == 0 ? test : test.Length == 0 ? "else" : "else " + test;
                return (head.Length == 0 ? "" : head + "\n") + "{\n" + Fusion.Indent(body(k)) + "}\n";
            }));
            string Assign(int k, string target) => $"{target} {(group[k].Accumulate ? "+=" : "=")} dot;\n";

            string kernel = $"/// <summary>{Summary(prologue, group, epilogues)}</summary>\n" +
                $"public static void {Name(prologue, group, epilogues)}(Index1D index, {Parameters(names, types)})\n{{\n" +
                Fusion.Indent(kernelStart +
                    $"{T} dot = 0;\n" +
                    $"for (int d = lane; d < {ins}; d += RowLanes)\n{{\n" + Fusion.Indent(xd + weight + "dot += xd * weight;\n") + "}\n" +
                    "dot = RowSum(dot);\n" +
                    "if (lane == 0)\n{\n" + Fusion.Indent(Branches(k =>
                        $"Index1D at = (int)(row * {Parenthesized(group[k].Outs.Text)} + {Minus("output", starts[k])});\n" + Assign(k, $"{outputs[k]}[at]") +
                        (epilogues[k] is { } e ? Fusion.Body(program.Kernel(e.Kernel)!.Value.Method, Renames(epilogueNames[k]!, "at")) : ""))) + "}\n") +
                "}";

            // The host entry: the row kernel's entry over the rows of the warps, then each warp's sum in order and
            // the epilogue's entry on that one element.
            string Entry(Launch launch, IReadOnlyDictionary<string, string> bound, string from, string to)
            {
                var host = Fusion.HostEntry(program.Kernel(launch.Kernel)!.Value.Source, launch.Kernel)!;
                var renamed = Fusion.Positional(host, launch.Signature!.Parameters.Select(p => bound[p.Name]).ToList());
                renamed[host.ParameterList.Parameters[0].Identifier.Text] = from;
                renamed[host.ParameterList.Parameters[1].Identifier.Text] = to;
                return Fusion.Body(host, renamed);
            }
            var hostViews = new[] { x }.Concat(weights).Concat(outputs).Distinct().ToDictionary(v => v, v => v + "Host");
            if (hostViews.Values.Any(taken.Contains) || pieces.Any(p => Locals(Fusion.HostEntry(p.Source, p.Method.Identifier.Text)!)
                .Intersect(HostLocals.Concat(hostViews.Values)).Any())) return null;
            string name = Name(prologue, group, epilogues);
            string hostEntry =
                $"/// <summary>Runs <see cref=\"Kernels.{name}\"/> for the warps whose first lane is among indices <paramref name=\"from\"/>…<paramref name=\"to\"/>−1: " +
                $"{(prologue is null ? "" : $"the host entry of {prologue.Kernel} on their rows, then ")}each warp's sum in turn{(epilogues.Any(e => e is not null) ? " and the host entry of its output's op on it" : "")}.</summary>\n" +
                $"public static void {name}(int from, int to, {Parameters(names, types)})\n{{\n" +
                Fusion.Indent(
                    "int warpFrom = (from + Kernels.RowLanes - 1) / Kernels.RowLanes, warpTo = (to + Kernels.RowLanes - 1) / Kernels.RowLanes;\n" +
                    "if (warpFrom >= warpTo) return;\n" +
                    (prologue is null ? "" : "{\n" + Fusion.Indent(
                        $"int rowsFrom = (int)(warpFrom / {outs}) * Kernels.RowLanes, rowsTo = (int)((warpTo - 1) / {outs} + 1) * Kernels.RowLanes;\n" +
                        Entry(prologue, prologueNames, "rowsFrom", "rowsTo")) + "}\n") +
                    string.Concat(hostViews.Select(v => $"var {v.Value} = new {Numeric.Runtime}HostView<{T}>({v.Key});\n")) +
                    "for (long warp = warpFrom; warp < warpTo; warp++)\n{\n" + Fusion.Indent(
                        $"long row = warp / {outs}, output = warp % {outs}, o = row * {ins};\n" +
                        Branches(k =>
                            $"{T} dot = 0;\n" +
                            $"for (int d = 0; d < {ins}; d++) dot += {hostViews[x]}[o + d] * {hostViews[weights[k]]}[{Minus("output", starts[k])} * {ins} + d];\n" +
                            $"long at = row * {Parenthesized(group[k].Outs.Text)} + {Minus("output", starts[k])};\n" + Assign(k, $"{hostViews[outputs[k]]}[at]") +
                            (epilogues[k] is { } e ? "{\n" + Fusion.Indent("int atFrom = (int)at, atTo = atFrom + 1;\n" + Entry(e, epilogueNames[k]!, "atFrom", "atTo")) + "}\n" : ""))) +
                    "}\n") +
                "}";
            var signature = KernelSignature.Read(kernel).SingleOrDefault();
            if (signature is null) return null;
            return (new Launch(name, signature, $"R * {outs} * Kernels.RowLanes", args), new KernelSource(name, kernel, hostEntry));
        }

        // The row kernel's statements after its lanes' two, the last a pass over the lane's elements that writes the
        // input (as written[o + d] = e, once): they start the kernel, but for that pass, whose body opens the
        // products' loop with the element kept as xd. Every other write is the storing warps'. Null when not of that form.
        static (string Start, string Loop)? Joined(MethodDeclarationSyntax row, string written, string T)
        {
            var statements = row.Body!.Statements;
            if (statements.Count < 3 || row.DescendantNodes().OfType<ReturnStatementSyntax>().Any()) return null;
            if (statements.Last() is not ForStatementSyntax { Statement: BlockSyntax loop } last
                || last.Declaration?.Variables.SingleOrDefault() is not { Identifier.Text: "d" } d || d.Initializer?.Value.ToString() != "lane"
                || last.Incrementors.ToString() != "d += RowLanes") return null;
            var views = new HashSet<string>(row.ParameterList.Parameters.Where(p => p.Type is GenericNameSyntax { Identifier.Text: "ArrayView" }).Select(p => p.Identifier.Text));
            bool Writes(StatementSyntax s) => s.DescendantNodesAndSelf().OfType<AssignmentExpressionSyntax>()
                .Any(a => a.Left is ElementAccessExpressionSyntax { Expression: IdentifierNameSyntax v } && views.Contains(v.Identifier.Text));
            string Guarded(StatementSyntax s)
            {
                string text = Fusion.Dedent(s.ToFullString());
                return Writes(s) ? "if (stores)\n{\n" + Fusion.Indent(text) + "}\n" : text;
            }
            var middle = statements.Skip(2).Take(statements.Count - 3).ToList();
            if (middle.Concat(loop.Statements).Any(s => s is LocalDeclarationStatementSyntax && Writes(s))) return null;
            // The input appears once, as the target of that pass's one plain assignment.
            var uses = Fusion.Uses(row.Body, written).ToList();
            if (uses.Count != 1 || uses[0].Parent is not ElementAccessExpressionSyntax access || Fusion.Subscript(access) != "o + d"
                || access.Parent is not AssignmentExpressionSyntax assignment || !assignment.IsKind(SyntaxKind.SimpleAssignmentExpression)
                || assignment.Left != access || assignment.Parent is not ExpressionStatementSyntax store || store.Parent != loop) return null;
            string body = string.Concat(loop.Statements.Select(s => s == store
                ? $"{T} xd = {assignment.Right};\nif (stores) {written}[o + d] = xd;\n"
                : Guarded(s)));
            return (string.Concat(middle.Select(Guarded)), body);
        }

        static Dictionary<string, string> Renames(Dictionary<string, string> bound, string index) =>
            new Dictionary<string, string>(bound) { ["index"] = index };

        static bool Same(Arg a, Arg b) =>
            a is TensorArg t && b is TensorArg u && t.Value == u.Value
            || a is ParamArg p && b is ParamArg q && p.Param == q.Param && p.IsGradient == q.IsGradient;

        static string Parameters(List<string> names, List<string> types) => string.Join(", ", names.Select((n, i) => $"{types[i]} {n}"));

        static string Parenthesized(string size) => SyntaxFactory.ParseExpression(size) is IdentifierNameSyntax or LiteralExpressionSyntax ? size : $"({size})";

        static string Minus(string value, string start) => start == "0" ? value : $"({value} - ({start}))";

        // A weight's field without its trailing W: what the products are named by.
        static string Field(LinearProduct p) => p.Weight.Field.EndsWith("W") && p.Weight.Field.Length > 1 ? p.Weight.Field.Substring(0, p.Weight.Field.Length - 1) : p.Weight.Field;

        static string Camel(string name) => char.ToLowerInvariant(name[0]) + name.Substring(1);

        static string Name(Launch? prologue, IReadOnlyList<LinearProduct> group, Launch?[] epilogues) =>
            (prologue is null ? "" : Fusion.Stem(prologue.Kernel)) + "Products" + string.Concat(group.Select(Field))
            + string.Concat(epilogues.Where(e => e is not null).Select(e => Fusion.Stem(e!.Kernel)));

        static string Summary(Launch? prologue, IReadOnlyList<LinearProduct> group, Launch?[] epilogues) =>
            $"x·Wᵀ for the Linear{(group.Count > 1 ? "s" : "")} {string.Join(", ", group.Select(p => p.Weight.Field))} at a few rows, a warp per row and output" +
            (prologue is null ? "" : $", each running {prologue.Kernel} on its row first") +
            (epilogues.Any(e => e is not null) ? $", then {string.Join(" and ", epilogues.Where(e => e is not null).Select(e => e!.Kernel))} where the sum is" : "") +
            " (fused by a rewrite).";
    }
}
