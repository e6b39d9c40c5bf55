using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Templates;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace GateLoop.Generator.Ir
{
    /// <summary>One parameter of a kernel: its name, its C# type, and for a view whether the kernel reads and writes it.</summary>
    internal sealed record KernelParameter(string Name, string Type, bool Reads, bool Writes)
    {
        /// <summary>The element type of an <c>ArrayView&lt;E&gt;</c>, or null for a scalar.</summary>
        public string? ViewElement => Type.StartsWith("ArrayView<") ? Type.Substring(10, Type.Length - 11) : null;
    }

    /// <summary>
    /// A kernel as a launch binds it: its name and its parameters after the index, read off the kernel's own source,
    /// with what its body does to each view (an element assigned with <c>=</c> is written; any other use reads it, and a
    /// view handed to another method is taken as read and written).
    /// </summary>
    internal sealed class KernelSignature
    {
        KernelSignature(string name, IReadOnlyList<KernelParameter> parameters)
        {
            Name = name;
            Parameters = parameters;
        }

        public string Name { get; }

        public IReadOnlyList<KernelParameter> Parameters { get; }

        /// <summary>Every kernel (a static method whose first parameter is an <c>Index1D</c>) in <paramref name="source"/>.</summary>
        public static IEnumerable<KernelSignature> Read(string source) =>
            KernelText.Methods(source).Where(KernelText.IsKernel)
                .Select(m => new KernelSignature(m.Identifier.Text, m.ParameterList.Parameters.Skip(1).Select(p => Parameter(m, p)).ToList()));

        static KernelParameter Parameter(MethodDeclarationSyntax method, ParameterSyntax p)
        {
            string name = p.Identifier.Text, type = p.Type!.ToString();
            bool reads = false, writes = false;
            var body = (Microsoft.CodeAnalysis.SyntaxNode?)method.Body ?? method.ExpressionBody;
            foreach (var use in body!.DescendantNodes().OfType<IdentifierNameSyntax>().Where(i => i.Identifier.Text == name))
            {
                if (use.Parent is ElementAccessExpressionSyntax access && access.Expression == use)
                {
                    if (access.Parent is AssignmentExpressionSyntax assignment && assignment.Left == access)
                    {
                        writes = true;
                        if (assignment.Kind() != SyntaxKind.SimpleAssignmentExpression) reads = true;
                    }
                    else reads = true;
                }
                else if (use.Parent is ArgumentSyntax || use.Parent is MemberAccessExpressionSyntax) reads = writes = true;
                else reads = true;
            }
            return new KernelParameter(name, type, reads, writes);
        }
    }
}
