using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace GateLoop.Generator.Emit
{
    /// <summary>
    /// Derives the host twins of a kernels class from its source: each method that takes views is copied with
    /// <c>HostView</c> (a raw pointer) in place of <c>ArrayView</c>, and each kernel (first parameter
    /// <c>Index1D</c>) gets a range entry point that runs a span of indices in one call. The host backend calls
    /// those, so a CPU launch pays one delegate call per chunk and plain pointer loads per element, while ILGPU
    /// compiles the original methods. The bodies are the kernels' own, so both backends run one text.
    /// </summary>
    internal static class HostTwins
    {
        const string HostView = ModelSource.Runtime + "HostView";

        /// <summary>The members of the nested <c>Host</c> class for the kernel members in <paramref name="kernels"/>.</summary>
        public static string Emit(string kernels)
        {
            var type = (ClassDeclarationSyntax)SyntaxFactory.ParseCompilationUnit("class Kernels\n{\n" + kernels + "\n}").Members[0];
            var w = new CodeWriter();
            foreach (var method in type.Members.OfType<MethodDeclarationSyntax>().Where(TakesViews))
            {
                if (IsKernel(method)) RangeEntry(w, method);
                Twin(w, method);
            }
            return w.ToString().TrimEnd('\n');
        }

        static bool IsView(TypeSyntax type) => type is GenericNameSyntax g && g.Identifier.Text == "ArrayView";

        static bool TakesViews(MethodDeclarationSyntax m) => m.ParameterList.Parameters.Any(p => p.Type is not null && IsView(p.Type));

        static bool IsKernel(MethodDeclarationSyntax m) =>
            m.ParameterList.Parameters.FirstOrDefault()?.Type?.ToString() == "Index1D";

        // Runs indices from…to−1: the views become pointers once, then each index is a direct (inlined) call.
        static void RangeEntry(CodeWriter w, MethodDeclarationSyntax kernel)
        {
            var name = kernel.Identifier.Text;
            var parameters = kernel.ParameterList.Parameters.Skip(1).ToList();
            string Pointer(ParameterSyntax p) => IsView(p.Type!) ? p.Identifier.Text + "Host" : p.Identifier.Text;
            w.Line($"/// <summary>Runs <see cref=\"Kernels.{name}\"/> for indices <paramref name=\"from\"/>…<paramref name=\"to\"/>−1 on this thread.</summary>")
             .Open($"public static void {name}(int from, int to{string.Concat(parameters.Select(p => ", " + p.ToString()))})");
            foreach (var p in parameters.Where(p => IsView(p.Type!)))
                w.Line($"var {Pointer(p)} = new {HostView}{((GenericNameSyntax)p.Type!).TypeArgumentList}({p.Identifier.Text});");
            w.Line($"for (int index = from; index < to; index++) {name}(index{string.Concat(parameters.Select(p => ", " + Pointer(p)))});")
             .Close()
             .Line();
        }

        // The method itself with every ArrayView<T> read as HostView<T>; inlined into the range loop.
        static void Twin(CodeWriter w, MethodDeclarationSyntax method)
        {
            var twin = (MethodDeclarationSyntax)new ViewToPointer().Visit(method.WithoutLeadingTrivia())!;
            twin = twin.WithModifiers(SyntaxFactory.TokenList(SyntaxFactory.Token(SyntaxKind.StaticKeyword).WithTrailingTrivia(SyntaxFactory.Space)));
            w.Line("[global::System.Runtime.CompilerServices.MethodImpl(global::System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]")
             .Block(twin.ToFullString().TrimEnd())
             .Line();
        }

        sealed class ViewToPointer : CSharpSyntaxRewriter
        {
            public override SyntaxNode? VisitGenericName(GenericNameSyntax node) =>
                IsView(node)
                    ? SyntaxFactory.ParseTypeName(HostView + node.TypeArgumentList).WithTriviaFrom(node)
                    : base.VisitGenericName(node);
        }
    }
}
