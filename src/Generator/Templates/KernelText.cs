using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace GateLoop.Generator.Templates
{
    /// <summary>
    /// The one reader of kernel text as C# (Roslyn's parser), for every stage that looks into it: the methods a
    /// source declares, a parameter list's types and names, and what makes a method a kernel or a view a view.
    /// </summary>
    internal static class KernelText
    {
        /// <summary>The methods <paramref name="members"/> declares, as members of one class.</summary>
        public static IEnumerable<MethodDeclarationSyntax> Methods(string members) =>
            ((ClassDeclarationSyntax)SyntaxFactory.ParseCompilationUnit("class K\n{\n" + members + "\n}").Members[0]).Members.OfType<MethodDeclarationSyntax>();

        /// <summary>Each parameter's type and name in <paramref name="parameters"/> (a list without its parentheses).</summary>
        public static IEnumerable<(string Type, string Name)> Parameters(string parameters) =>
            SyntaxFactory.ParseParameterList("(" + parameters + ")").Parameters.Select(p => (p.Type!.ToString(), p.Identifier.Text));

        /// <summary>Whether <paramref name="type"/> is an <c>ArrayView&lt;T&gt;</c>.</summary>
        public static bool IsView(TypeSyntax type) => type is GenericNameSyntax g && g.Identifier.Text == "ArrayView";

        /// <summary>Whether <paramref name="method"/> is a kernel: its first parameter is an <c>Index1D</c>.</summary>
        public static bool IsKernel(MethodDeclarationSyntax method) => method.ParameterList.Parameters.FirstOrDefault()?.Type?.ToString() == "Index1D";
    }
}
