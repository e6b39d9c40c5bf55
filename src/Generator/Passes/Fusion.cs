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
    /// </summary>
    internal static class Fusion
    {
        /// <summary>A Linear's bias followed by an elementwise op on its output (the feed-forward's activation) as one kernel, named Bias + the op's kernel.</summary>
        public static (Launch, KernelSource)? BiasActivation(Program program, Launch first, Launch second) =>
            first.Kernel.StartsWith("AddBias") && first.Writes.Intersect(second.Reads).Any()
                ? Elementwise(program, first, second, "Bias" + second.Kernel)
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
            var shared = first.Writes.Intersect(second.Reads.Concat(second.Writes)).Concat(second.Writes.Intersect(first.Reads)).ToList();
            bool IndexOnly(MethodDeclarationSyntax method, Launch launch) => launch.Bindings
                .Where(binding => binding.Arg is TensorArg t && shared.Contains(t.Value))
                .All(binding => method.DescendantNodes().OfType<IdentifierNameSyntax>().Where(i => i.Identifier.Text == binding.Parameter.Name)
                    .All(i => i.Parent is ElementAccessExpressionSyntax e && e.Expression == i && e.ArgumentList.Arguments.Count == 1
                        && e.ArgumentList.Arguments[0].ToString() == "index"));
            if (!IndexOnly(a.Value.Method, first) || !IndexOnly(b.Value.Method, second)) return null;

            // The fused parameters: the first kernel's, then the second's, one parameter for a value both are passed.
            var names = first.Signature.Parameters.Select(p => p.Name).ToList();
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
            string parameters = string.Join(", ", names.Select((n, i) => $"{types[i]} {n}"));
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

        // A host entry's views are named by position after (from, to): map them to the fused kernel's names.
        static Dictionary<string, string> Positional(MethodDeclarationSyntax host, IReadOnlyList<string> names) =>
            host.ParameterList.Parameters.Skip(2).Select((p, i) => (p.Identifier.Text, names[i])).ToDictionary(x => x.Item1, x => x.Item2);

        static MethodDeclarationSyntax? HostEntry(KernelSource source, string kernel) =>
            source.HostEntry.Length == 0 ? null : KernelText.Methods(source.HostEntry).FirstOrDefault(m => m.Identifier.Text == kernel);

        // The method's statements with its parameters renamed, in a block of their own when they declare locals, which then stay apart.
        static string Body(MethodDeclarationSyntax method, IReadOnlyDictionary<string, string> renamed)
        {
            SyntaxNode body = (SyntaxNode?)method.Body ?? method.ExpressionBody!.Expression;
            var uses = body.DescendantNodesAndSelf().OfType<IdentifierNameSyntax>()
                .Where(i => renamed.ContainsKey(i.Identifier.Text) && renamed[i.Identifier.Text] != i.Identifier.Text);
            body = body.ReplaceNodes(uses, (old, _) => SyntaxFactory.IdentifierName(renamed[old.Identifier.Text]).WithTriviaFrom(old));
            if (body is not BlockSyntax block) return body.ToString().Trim() + ";\n";
            string statements = string.Concat(block.Statements.Select(s => Dedent(s.ToFullString())));
            return block.Statements.OfType<LocalDeclarationStatementSyntax>().Any() ? "{\n" + Indent(statements) + "}\n" : statements;
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
