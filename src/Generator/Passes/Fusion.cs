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

        /// <summary>
        /// A bias or residual add over rows (the post-norm block's sum) followed by a row kernel reading its output (the
        /// LayerNorm) as one row kernel: Bias, Residual or BiasResidual + the row kernel.
        /// </summary>
        public static (Launch, KernelSource)? AddsIntoRow(Program program, Launch first, Launch second) =>
            AddsPrefix(first.Kernel) is { } prefix && first.Writes.Intersect(second.Reads).Any()
                ? ElementwiseRow(program, first, second, prefix + second.Kernel)
                : null;

        static string? AddsPrefix(string kernel) =>
            kernel.StartsWith("AddBias") ? "Bias" : kernel == "AddResidual" ? "Residual" : kernel == "BiasAddResidual" ? "BiasResidual" : null;

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

            var (names, types, args, renamed) = Merged(first, second);
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

        /// <summary>
        /// A producer of one complex pair per index (the gate loop's state transition) computed inside the scan that
        /// reads its pairs, where the scan reads them, as one kernel named the producer's stem + the scan's kernel. The
        /// pairs are still written (a backward reads them) and read back at once. It applies when the producer writes
        /// its output at i = 2·index and i + 1 only, the scan reads it only at v[E] and v[E + 1] in one block, once
        /// per position of its sequence (or once), E declared as twice an index, and the scan's threads read as many
        /// pairs as the producer has indices: with the layouts' one pair per thread and position, each pair is then
        /// computed by the one thread that reads it.
        /// </summary>
        public static (Launch, KernelSource)? PairsWhereRead(Program program, Launch first, Launch second, IReadOnlyDictionary<string, long> constants)
        {
            if (!Bound(first) || !Bound(second) || first.Writes.Distinct().Count() != 1) return null;
            var pairs = first.Writes.First();
            if (!second.Reads.Contains(pairs) || second.Writes.Contains(pairs) || second.Writes.Intersect(first.Reads).Any()) return null;
            var a = program.Kernel(first.Kernel);
            var b = program.Kernel(second.Kernel);
            if (a is null || b is null || a.Value.Method.Body is not { } producer || Branches(producer)) return null;
            if (producer.Statements.FirstOrDefault()?.ToString() != "long i = 2 * (long)index.X;") return null;
            if (!Accesses(producer, ParameterOf(first, pairs)).All(e => Subscript(e) is "i" or "i + 1")) return null;

            var (names, types, args, renamed) = Merged(first, second);
            var consumer = Renamed(b.Value.Method, renamed);
            var reads = Accesses(consumer, renamed[ParameterOf(second, pairs)]).ToList();
            string at = Subscript(reads[0]);
            if (!SyntaxFacts.IsValidIdentifier(at) || !reads.All(e => Subscript(e) == at || Subscript(e) == at + " + 1")) return null;
            // E is twice something (the pair's first element), so the producer's index E / 2 writes both elements read.
            var declared = consumer.DescendantNodes().OfType<VariableDeclaratorSyntax>().Where(v => v.Identifier.Text == at).ToList();
            if (declared.Count != 1 || declared[0].Initializer?.Value is not BinaryExpressionSyntax twice
                || !twice.IsKind(SyntaxKind.MultiplyExpression) || !(twice.Left.ToString() == "2" || twice.Right.ToString() == "2")) return null;
            var statements = reads.Select(e => e.Ancestors().OfType<StatementSyntax>().First(st => st.Parent is BlockSyntax)).ToList();
            if (statements.Any(st => st.Parent != statements[0].Parent) || PerThread(statements[0]) is not { } positions) return null;
            if (!Covers(second.Domain, positions, first.Domain, constants)) return null;

            string index = Fresh("pair", consumer);
            var body = Renamed(a.Value.Method, new Dictionary<string, string> { ["index"] = index }).Body!;
            var inlined = Inlined(body, consumer, $"int {index} = (int)({at} / 2); // the index of {first.Kernel} whose pair is read here");
            if (inlined is null) return null;
            var method = consumer.InsertNodesBefore(statements.OrderBy(st => st.SpanStart).First(), new[] { inlined });
            return Fused($"{Stem(first.Kernel) + second.Kernel}", method, names, types, args, second.Domain,
                $"{second.Kernel} computing {first.Kernel} where it reads the pairs, in one launch (fused by a rewrite).");
        }

        /// <summary>
        /// An elementwise op on what a scan writes, done by the scan where it writes it (the swish gate on the scan's
        /// output), as one kernel named the scan's stem + the op's kernel. The scan still writes its output (a
        /// backward reads it) and the op reads it back at once. It applies when the op touches every view only at its
        /// own index, the scan writes the value in one statement, once per position of its sequence (or once), and
        /// the scan's threads write as many elements as the op has indices: each index is then done where it is written.
        /// </summary>
        public static (Launch, KernelSource)? ElementwiseWhereWritten(Program program, Launch first, Launch second, IReadOnlyDictionary<string, long> constants)
        {
            if (!Bound(first) || !Bound(second)) return null;
            var shared = first.Writes.Intersect(second.Reads).Distinct().ToList();
            if (shared.Count != 1 || second.Writes.Intersect(first.Reads.Concat(first.Writes)).Any()) return null;
            var a = program.Kernel(first.Kernel);
            var b = program.Kernel(second.Kernel);
            if (a is null || b is null || b.Value.Method.Body is not { } op || Branches(op)) return null;
            // The op's index appears only as the subscript of a view, and every view only with it.
            var views = second.Signature!.Parameters.Where(p => p.ViewElement is not null).Select(p => p.Name).ToList();
            if (op.DescendantNodes().OfType<IdentifierNameSyntax>().Any(i => i.Identifier.Text == "index" && !(i.Parent?.Parent?.Parent is ElementAccessExpressionSyntax)))
                return null;
            if (!views.All(v => Uses(op, v).All(i => i.Parent is ElementAccessExpressionSyntax e && e.Expression == i && Subscript(e) == "index"))) return null;

            var writes = Accesses(a.Value.Method, ParameterOf(first, shared[0])).ToList();
            if (writes.Count != 1 || writes[0].Parent is not AssignmentExpressionSyntax assignment || assignment.Left != writes[0]
                || !assignment.IsKind(SyntaxKind.SimpleAssignmentExpression) || assignment.Parent is not ExpressionStatementSyntax written) return null;
            if (PerThread(written) is not { } positions || !Covers(first.Domain, positions, second.Domain, constants)) return null;

            // The op's parameters are named apart from the scan's locals, which its code will sit among.
            var (names, types, args, renamed) = Merged(first, second, a.Value.Method.DescendantNodes().OfType<VariableDeclaratorSyntax>().Select(v => v.Identifier.Text).ToList());
            string index = Fresh("at", a.Value.Method);
            var body = Renamed(b.Value.Method, new Dictionary<string, string>(renamed) { ["index"] = index }).Body!;
            var inlined = Inlined(body, a.Value.Method, $"long {index} = {Subscript(writes[0])}; // the index of {second.Kernel} written here");
            if (inlined is null) return null;
            var method = a.Value.Method.InsertNodesAfter(written, new[] { inlined });
            return Fused(Stem(first.Kernel) + second.Kernel, method, names, types, args, first.Domain,
                $"{first.Kernel} doing {second.Kernel} where it writes its input, in one launch (fused by a rewrite).");
        }

        internal static bool Bound(Launch launch) => launch.Signature is not null && launch.Args.Count == launch.Signature.Parameters.Count;

        // A kernel's name without its trailing Forward, to name what it is fused into.
        internal static string Stem(string kernel) => kernel.EndsWith("Forward") ? kernel.Substring(0, kernel.Length - "Forward".Length) : kernel;

        static string ParameterOf(Launch launch, Value value) => launch.Bindings.First(b => b.Arg is TensorArg t && t.Value == value).Parameter.Name;

        internal static IEnumerable<IdentifierNameSyntax> Uses(SyntaxNode node, string name) =>
            node.DescendantNodes().OfType<IdentifierNameSyntax>().Where(i => i.Identifier.Text == name);

        // The element accesses of the view <paramref name="view"/>.
        internal static IEnumerable<ElementAccessExpressionSyntax> Accesses(SyntaxNode node, string view) =>
            Uses(node, view).Select(i => i.Parent).OfType<ElementAccessExpressionSyntax>();

        internal static string Subscript(ElementAccessExpressionSyntax e) => e.ArgumentList.Arguments.Count == 1 ? e.ArgumentList.Arguments[0].ToString() : "";

        internal static bool Branches(SyntaxNode body) => body.DescendantNodes().Any(n => n is ReturnStatementSyntax || n is ForStatementSyntax
            || n is WhileStatementSyntax || n is DoStatementSyntax || n is ForEachStatementSyntax);

        // How often one thread runs a statement: once outside any loop ("1"), once per position inside one loop over
        // the sequence ("Seq"), else unknown (null).
        static string? PerThread(StatementSyntax statement)
        {
            var loops = statement.Ancestors().Where(n => n is ForStatementSyntax || n is WhileStatementSyntax || n is DoStatementSyntax || n is ForEachStatementSyntax).ToList();
            if (loops.Count == 0) return "1";
            return loops.Count == 1 && loops[0] is ForStatementSyntax { Condition: BinaryExpressionSyntax c } && c.IsKind(SyntaxKind.LessThanExpression)
                && c.Right is IdentifierNameSyntax { Identifier.Text: "seq" } ? "Seq" : null;
        }

        // Whether threads × perThread equals elements at two shapes of the plan (the sizes are products of them and constants).
        static bool Covers(Size threads, string perThread, Size elements, IReadOnlyDictionary<string, long> constants) =>
            new[] { (2L, 3L), (1L, 5L) }.All(shape =>
            {
                var at = constants.ToDictionary(c => c.Key, c => c.Value);
                foreach (var name in new[] { "Batch", "batch" }) at[name] = shape.Item1;
                foreach (var name in new[] { "Seq", "seq" }) at[name] = shape.Item2;
                foreach (var name in new[] { "R", "Rows", "rows" }) at[name] = shape.Item1 * shape.Item2;
                return threads.Evaluate(at) * new Size(perThread).Evaluate(at) is long n && n == elements.Evaluate(at);
            });

        // A name not declared or used in the method.
        internal static string Fresh(string name, SyntaxNode method)
        {
            var taken = new HashSet<string>(method.DescendantTokens().Where(t => t.IsKind(SyntaxKind.IdentifierToken)).Select(t => t.Text));
            while (taken.Contains(name)) name += "2";
            return name;
        }

        // The method with the identifiers in renamed replaced (names after a dot stay).
        internal static MethodDeclarationSyntax Renamed(MethodDeclarationSyntax method, IReadOnlyDictionary<string, string> renamed)
        {
            var uses = method.DescendantNodes().OfType<IdentifierNameSyntax>()
                .Where(i => renamed.ContainsKey(i.Identifier.Text) && renamed[i.Identifier.Text] != i.Identifier.Text
                    && !(i.Parent is MemberAccessExpressionSyntax m && m.Name == i));
            var result = method.ReplaceNodes(uses, (old, _) => SyntaxFactory.IdentifierName(renamed[old.Identifier.Text]).WithTriviaFrom(old));
            // index.X of a fused-in kernel is the index itself, an int.
            var members = result.DescendantNodes().OfType<MemberAccessExpressionSyntax>()
                .Where(m => m.Name.Identifier.Text == "X" && m.Expression is IdentifierNameSyntax e && renamed.TryGetValue("index", out var i) && e.Identifier.Text == i);
            return result.ReplaceNodes(members, (old, _) => SyntaxFactory.ParenthesizedExpression(old.Expression.WithoutTrivia()));
        }

        // The body as a block to place in host, opened by the declaration of its index; null when a name it uses
        // from outside (a parameter) would be hidden by one of host's locals. Its own locals that host declares too
        // are renamed apart.
        static BlockSyntax? Inlined(BlockSyntax body, MethodDeclarationSyntax host, string index)
        {
            var hostLocals = new HashSet<string>(host.DescendantNodes().OfType<VariableDeclaratorSyntax>().Select(v => v.Identifier.Text));
            var own = body.DescendantNodes().OfType<VariableDeclaratorSyntax>().Select(v => v.Identifier.Text).ToList();
            if (body.DescendantNodes().OfType<IdentifierNameSyntax>()
                .Any(i => !own.Contains(i.Identifier.Text) && hostLocals.Contains(i.Identifier.Text) && !(i.Parent is MemberAccessExpressionSyntax m && m.Name == i)))
                return null;
            var apart = own.Where(hostLocals.Contains).ToDictionary(n => n, n => Fresh(n + "2", host));
            var renamedBody = apart.Count == 0 ? body : body.ReplaceNodes(
                body.DescendantNodes().OfType<IdentifierNameSyntax>().Where(i => apart.ContainsKey(i.Identifier.Text)),
                (old, _) => SyntaxFactory.IdentifierName(apart[old.Identifier.Text]).WithTriviaFrom(old));
            renamedBody = renamedBody.ReplaceTokens(renamedBody.DescendantTokens().Where(t => t.IsKind(SyntaxKind.IdentifierToken) && apart.ContainsKey(t.Text) && t.Parent is VariableDeclaratorSyntax),
                (old, _) => SyntaxFactory.Identifier(apart[old.Text]).WithTriviaFrom(old));
            return (BlockSyntax)SyntaxFactory.ParseStatement("{\n" + index + "\n" + string.Concat(renamedBody.Statements.Select(st => st.ToFullString())) + "}");
        }

        // The fused launch and its kernel source: the method renamed, its parameters the merged ones, formatted anew.
        static (Launch, KernelSource) Fused(string name, MethodDeclarationSyntax method,
            List<string> names, List<string> types, List<Arg> args, Size domain, string summary)
        {
            string parameters = string.Join(", ", names.Select((n, i) => $"{types[i]} {n}"));
            var text = SyntaxFactory.ParseMemberDeclaration($"public static void {name}(Index1D index, {parameters})\n" + method.Body!.ToFullString())!
                .NormalizeWhitespace().ToFullString();
            string kernel = $"/// <summary>{summary}</summary>\n" + text;
            return (new Launch(name, KernelSignature.Read(kernel).Single(), domain, args), new KernelSource(name, kernel, ""));
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

            var (names, types, args, renamed) = Merged(first, second);
            string parameters = string.Join(", ", names.Select((n, i) => $"{types[i]} {n}"));
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
        internal static string? RowWidth(MethodDeclarationSyntax method)
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

        // The fused parameters: the first kernel's, then the second's, one parameter for a value both are passed; the
        // second's parameters renamed where they are the first's value or would clash with its names.
        static (List<string> Names, List<string> Types, List<Arg> Args, Dictionary<string, string> Renamed) Merged(Launch first, Launch second,
            ICollection<string>? taken = null)
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
                while (names.Contains(fresh) || taken?.Contains(fresh) == true) fresh += "2";
                renamed[parameter.Name] = fresh;
                names.Add(fresh);
                types.Add(parameter.Type);
                args.Add(arg);
            }
            return (names, types, args, renamed);
        }

        // A host entry's views are named by position after (from, to): map them to the fused kernel's names.
        internal static Dictionary<string, string> Positional(MethodDeclarationSyntax host, IReadOnlyList<string> names) =>
            host.ParameterList.Parameters.Skip(2).Select((p, i) => (p.Identifier.Text, names[i])).ToDictionary(x => x.Item1, x => x.Item2);

        internal static MethodDeclarationSyntax? HostEntry(KernelSource source, string kernel) =>
            source.HostEntry.Length == 0 ? null : KernelText.Methods(source.HostEntry).FirstOrDefault(m => m.Identifier.Text == kernel);

        // The method's statements with its parameters renamed, in a block of their own when they declare locals, which then stay apart.
        internal static string Body(MethodDeclarationSyntax method, IReadOnlyDictionary<string, string> renamed)
        {
            var statements = Statements(method, renamed);
            return method.Body is not null && method.Body.Statements.OfType<LocalDeclarationStatementSyntax>().Any()
                ? "{\n" + Indent(string.Concat(statements)) + "}\n"
                : string.Concat(statements);
        }

        // The method's statements (an expression body's as one), each its own text with its parameters renamed.
        internal static List<string> Statements(MethodDeclarationSyntax method, IReadOnlyDictionary<string, string> renamed)
        {
            SyntaxNode body = (SyntaxNode?)method.Body ?? method.ExpressionBody!.Expression;
            var uses = body.DescendantNodesAndSelf().OfType<IdentifierNameSyntax>()
                .Where(i => renamed.ContainsKey(i.Identifier.Text) && renamed[i.Identifier.Text] != i.Identifier.Text);
            body = body.ReplaceNodes(uses, (old, _) => SyntaxFactory.IdentifierName(renamed[old.Identifier.Text]).WithTriviaFrom(old));
            return body is BlockSyntax block
                ? block.Statements.Select(s => Dedent(s.ToFullString())).ToList()
                : new List<string> { body.ToString().Trim() + ";\n" };
        }

        internal static string Dedent(string statement)
        {
            var lines = statement.Replace("\r\n", "\n").TrimEnd().Split('\n').Where(l => l.Trim().Length > 0).ToList();
            int indent = lines.Min(l => l.Length - l.TrimStart().Length);
            return string.Concat(lines.Select(l => l.Substring(indent) + "\n"));
        }

        internal static string Indent(string text) => string.Concat(text.TrimEnd('\n').Split('\n').Select(l => "    " + l + "\n"));
    }
}
