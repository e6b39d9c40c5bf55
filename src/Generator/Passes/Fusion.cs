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
    /// Fusions as rewrites of a program: a rule looks at two adjacent launches and may return one launch of a new
    /// kernel that does both, made from the two kernels' own source, so the ops that contributed them know nothing of
    /// it. Two elementwise launches fuse when they cover the same domain and every value one writes and the other
    /// touches is touched only at the launch's own index: each index then does the first's work, then the
    /// second's, with no other index in between. The host entry of the fused kernel runs the pieces' host entries
    /// one after the other on the same range, when both pieces have one (else the host runs its generated twin).
    /// An elementwise launch over a row kernel's rows × width fuses into that row launch (<see cref="ElementwiseRow"/>)
    /// when the row kernel touches what they share only at its lanes' own elements: each lane then does the elementwise
    /// work on its elements of the row before the row's passes read them.
    /// </summary>
    internal static class Fusion
    {
        /// <summary>A Linear's bias followed by an elementwise op on its output (the feed-forward's activation) as one kernel, named Bias + the op's kernel.</summary>
        public static (Launch, KernelSource)? BiasActivation(Program program, Launch first, Launch second) =>
            first.Kernel.StartsWith("AddBias") && first.Writes.Intersect(second.Reads).Any()
                ? Elementwise(program, first, second, "Bias" + second.Kernel)
                : null;

        /// <summary>A bias add over rows (a block's residual branch) followed by a row kernel reading its output (the post-norm LayerNorm) as one row kernel, named Bias + the row kernel.</summary>
        public static (Launch, KernelSource)? BiasRow(Program program, Launch first, Launch second) =>
            first.Kernel.StartsWith("AddBias") && first.Writes.Intersect(second.Reads).Any()
                ? ElementwiseRow(program, first, second, "Bias" + second.Kernel)
                : null;

        /// <summary>The launch of one kernel doing <paramref name="first"/> then <paramref name="second"/> at each index, or null when that is not the same.</summary>
        public static (Launch, KernelSource)? Elementwise(Program program, Launch first, Launch second, string name)
        {
            if (first.Signature is null || second.Signature is null || first.Domain.Text != second.Domain.Text) return null;
            if (first.Args.Count != first.Signature.Parameters.Count || second.Args.Count != second.Signature.Parameters.Count) return null;
            var a = program.Kernel(first.Kernel);
            var b = program.Kernel(second.Kernel);
            if (a is null || b is null || a.Value.Method.DescendantNodes().OfType<ReturnStatementSyntax>().Any()) return null;

            // Values one writes and the other touches must be touched only at [index] in both.
            if (!TouchedOnlyAt(a.Value.Method, first, second, "index") || !TouchedOnlyAt(b.Value.Method, second, first, "index")) return null;

            var (parameters, args, renamed) = Merge(first, second);
            string kernel =
                $"/// <summary>{first.Kernel}, then {second.Kernel}, at each index in one launch (fused by a rewrite).</summary>\n" +
                $"public static void {name}(Index1D index, {parameters})\n{{\n" +
                Indent(Body(a.Value.Method, new Dictionary<string, string>())) + Indent(Body(b.Value.Method, renamed)) + "}";

            // The host entry: the pieces' own host entries over the same range, their view parameters renamed as above.
            string host = "";
            var (hostA, hostB) = (HostEntry(a.Value.Source, first.Kernel), HostEntry(b.Value.Source, second.Kernel));
            if (hostA is not null && hostB is not null)
            {
                host = $"/// <summary>Runs <see cref=\"Kernels.{name}\"/> for indices <paramref name=\"from\"/>…<paramref name=\"to\"/>−1: the host entries of {first.Kernel} and {second.Kernel} in turn.</summary>\n" +
                    $"public static void {name}(int from, int to, {parameters})\n{{\n" +
                    Indent(Body(hostA, Positional(hostA, first.Signature.Parameters.Select(p => p.Name).ToList()))) +
                    Indent(Body(hostB, Positional(hostB, second.Signature.Parameters.Select(p => renamed[p.Name]).ToList()))) + "}";
            }
            var source = new KernelSource(name, kernel, host);
            return (new Launch(name, KernelSignature.Read(kernel).Single(), first.Domain, args), source);
        }

        /// <summary>
        /// The launch of one row kernel doing the elementwise <paramref name="first"/> on each of the row's elements
        /// and then the row kernel <paramref name="second"/> (the form <see cref="LaneRow"/> renders), or null when
        /// that is not the same: <paramref name="first"/> must cover the rows × width of <paramref name="second"/>, and
        /// what they share be touched at [index] by the first and only at the lane's own elements [o + d] by the second.
        /// Both need host entries (the fused kernel's lanes work together, which a generated twin cannot run).
        /// </summary>
        public static (Launch, KernelSource)? ElementwiseRow(Program program, Launch first, Launch second, string name)
        {
            if (first.Signature is null || second.Signature is null) return null;
            if (first.Args.Count != first.Signature.Parameters.Count || second.Args.Count != second.Signature.Parameters.Count) return null;
            var a = program.Kernel(first.Kernel);
            var b = program.Kernel(second.Kernel);
            if (a is null || b is null || a.Value.Method.DescendantNodes().OfType<ReturnStatementSyntax>().Any()) return null;
            if (a.Value.Method.DescendantNodes().OfType<IdentifierNameSyntax>().Any(i => i.Identifier.Text == Element)) return null;
            string? width = RowWidth(b.Value.Method);
            string domain = LaneRow.Domain("");
            if (width is null || !second.Domain.Text.EndsWith(domain) || first.Domain.Text != second.Domain.Text.Substring(0, second.Domain.Text.Length - domain.Length) + " * " + width)
                return null;
            if (!TouchedOnlyAt(a.Value.Method, first, second, "index") || !TouchedOnlyAt(b.Value.Method, second, first, "o + d")) return null;
            // The second's elements o + d are its lanes' own: every loop over d is the lanes' stride.
            if (b.Value.Method.DescendantNodes().OfType<ForStatementSyntax>().Any(f => f.Declaration?.Variables.Any(v => v.Identifier.Text == "d") == true
                && (f.Declaration.Variables.Single().Initializer?.Value.ToString() != "lane" || f.Incrementors.ToString() != "d += RowLanes")))
                return null;
            var (hostA, hostB) = (HostEntry(a.Value.Source, first.Kernel), HostEntry(b.Value.Source, second.Kernel));
            if (hostA is null || hostB is null) return null;

            var (parameters, args, renamed) = Merge(first, second);
            var rowStatements = Statements(b.Value.Method, renamed);
            string kernel =
                $"/// <summary>{first.Kernel} on each element of the row, then {second.Kernel}, a warp per row in one launch (fused by a rewrite).</summary>\n" +
                $"public static void {name}(Index1D index, {parameters})\n{{\n" +
                Indent(rowStatements[0] + rowStatements[1] +
                    $"for (int d = lane; d < {width}; d += RowLanes)\n{{\n" +
                    Indent($"Index1D {Element} = (int)(o + d);\n" + Body(a.Value.Method, new Dictionary<string, string> { ["index"] = Element })) + "}\n" +
                    string.Concat(rowStatements.Skip(2))) + "}";

            // The host entry: the elementwise entry over the elements of the rows the row entry runs, then that.
            var elementRange = Positional(hostA, first.Signature.Parameters.Select(p => p.Name).ToList());
            elementRange[hostA.ParameterList.Parameters[0].Identifier.Text] = "elementFrom";
            elementRange[hostA.ParameterList.Parameters[1].Identifier.Text] = "elementTo";
            string host =
                $"/// <summary>Runs <see cref=\"Kernels.{name}\"/> for the rows whose first lane is among indices <paramref name=\"from\"/>…<paramref name=\"to\"/>−1: the host entry of {first.Kernel} on their elements, then {second.Kernel}'s.</summary>\n" +
                $"public static void {name}(int from, int to, {parameters})\n{{\n" +
                Indent("{\n" + Indent(
                    $"int elementFrom = (from + Kernels.RowLanes - 1) / Kernels.RowLanes * {width}, elementTo = (to + Kernels.RowLanes - 1) / Kernels.RowLanes * {width};\n" +
                    Body(hostA, elementRange)) + "}\n") +
                Indent(Body(hostB, Positional(hostB, second.Signature.Parameters.Select(p => renamed[p.Name]).ToList()))) + "}";
            var source = new KernelSource(name, kernel, host);
            return (new Launch(name, KernelSignature.Read(kernel).Single(), second.Domain, args), source);
        }

        // The element index the elementwise piece runs at inside a fused row kernel.
        const string Element = "element";

        // A row kernel's width: its first statements are LaneRow's "int lane = index.X % RowLanes;" and
        // "long row = index.X / RowLanes, o = row * W;".
        static string? RowWidth(MethodDeclarationSyntax method)
        {
            var statements = method.Body?.Statements;
            if (statements is null || statements.Value.Count < 2) return null;
            if (statements.Value[0].ToString() != "int lane = index.X % RowLanes;") return null;
            if (statements.Value[1] is not LocalDeclarationStatementSyntax rows || rows.Declaration.Variables.Count != 2
                || rows.Declaration.Variables[0].ToString() != "row = index.X / RowLanes") return null;
            var o = rows.Declaration.Variables[1];
            return o.Identifier.Text == "o" && o.Initializer?.Value is BinaryExpressionSyntax product && product.Left.ToString() == "row"
                ? product.Right.ToString()
                : null;
        }

        // Whether every value that one launch writes and the other touches is touched by launch (of method) only as view[at].
        static bool TouchedOnlyAt(MethodDeclarationSyntax method, Launch launch, Launch other, string at)
        {
            var shared = launch.Writes.Intersect(other.Reads.Concat(other.Writes)).Concat(other.Writes.Intersect(launch.Reads)).ToList();
            return launch.Bindings
                .Where(binding => binding.Arg is TensorArg t && shared.Contains(t.Value))
                .All(binding => method.DescendantNodes().OfType<IdentifierNameSyntax>().Where(i => i.Identifier.Text == binding.Parameter.Name)
                    .All(i => i.Parent is ElementAccessExpressionSyntax e && e.Expression == i && e.ArgumentList.Arguments.Count == 1
                        && e.ArgumentList.Arguments[0].ToString() == at));
        }

        // The fused parameters: the first kernel's, then the second's, one parameter for a value both are passed; and
        // the second's parameter names as the fused kernel has them.
        static (string Parameters, List<Arg> Args, Dictionary<string, string> Renamed) Merge(Launch first, Launch second)
        {
            var names = first.Signature!.Parameters.Select(p => p.Name).ToList();
            var types = first.Signature.Parameters.Select(p => p.Type).ToList();
            var args = first.Args.ToList();
            var renamed = new Dictionary<string, string>();
            foreach (var (parameter, arg) in second.Bindings)
            {
                int same = arg is TensorArg t ? args.FindIndex(x => x is TensorArg u && u.Value == t.Value) : -1;
                if (same >= 0)
                {
                    renamed[parameter.Name] = names[same];
                    continue;
                }
                string fresh = parameter.Name;
                while (names.Contains(fresh)) fresh += "2";
                renamed[parameter.Name] = fresh;
                names.Add(fresh);
                types.Add(parameter.Type);
                args.Add(arg);
            }
            return (string.Join(", ", names.Select((n, i) => $"{types[i]} {n}")), args, renamed);
        }

        // A host entry's views are named by position after (from, to): map them to the fused kernel's names.
        static Dictionary<string, string> Positional(MethodDeclarationSyntax host, IReadOnlyList<string> names) =>
            host.ParameterList.Parameters.Skip(2).Select((p, i) => (p.Identifier.Text, names[i])).ToDictionary(x => x.Item1, x => x.Item2);

        static MethodDeclarationSyntax? HostEntry(KernelSource source, string kernel) =>
            source.HostEntry.Length == 0 ? null : KernelText.Methods(source.HostEntry).FirstOrDefault(m => m.Identifier.Text == kernel);

        // The method's statements with its parameters renamed, in a block of their own when they declare locals, which then stay apart.
        static string Body(MethodDeclarationSyntax method, IReadOnlyDictionary<string, string> renamed)
        {
            var statements = Statements(method, renamed);
            return method.Body is not null && method.Body.Statements.OfType<LocalDeclarationStatementSyntax>().Any()
                ? "{\n" + Indent(string.Concat(statements)) + "}\n"
                : string.Concat(statements);
        }

        // The method's statements (an expression body's as one), each its own text with its parameters renamed.
        static List<string> Statements(MethodDeclarationSyntax method, IReadOnlyDictionary<string, string> renamed)
        {
            SyntaxNode body = (SyntaxNode?)method.Body ?? method.ExpressionBody!.Expression;
            var uses = body.DescendantNodesAndSelf().OfType<IdentifierNameSyntax>()
                .Where(i => renamed.ContainsKey(i.Identifier.Text) && renamed[i.Identifier.Text] != i.Identifier.Text);
            body = body.ReplaceNodes(uses, (old, _) => SyntaxFactory.IdentifierName(renamed[old.Identifier.Text]).WithTriviaFrom(old));
            return body is BlockSyntax block
                ? block.Statements.Select(s => Dedent(s.ToFullString())).ToList()
                : new List<string> { body.ToString().Trim() + ";\n" };
        }

        static string Dedent(string statement)
        {
            var lines = statement.Replace("\r\n", "\n").TrimEnd().Split('\n').Where(l => l.Trim().Length > 0).ToList();
            int indent = lines.Min(l => l.Length - l.TrimStart().Length);
            return string.Concat(lines.Select(l => l.Substring(indent) + "\n"));
        }

        static string Indent(string text) => string.Concat(text.TrimEnd('\n').Split('\n').Select(l => "    " + l + "\n"));
    }
}
