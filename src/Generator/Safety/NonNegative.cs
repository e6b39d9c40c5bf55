using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace GateLoop.Generator.Safety
{
    /// <summary>
    /// A syntactic proof that an integer expression in a kernel cannot be negative, for the signed divisions ILGPU
    /// turns into shifts: non-negative constants; a kernel's ILGPU index, its components and ILGPU's group and grid
    /// indices and sizes; view lengths; sums, products, quotients, remainders and right shifts of such; a sum with a
    /// constant minus at most that constant (<c>(seq + Chunk - 1) / Chunk</c>); and locals (loop counters included)
    /// that are only ever set to such values or incremented. Integer kernel parameters are sizes the runtime has
    /// checked positive (batch, seq, rows) and count as non-negative. Overflow is not considered: an index past
    /// 2^31 is wrong whatever the division does.
    /// </summary>
    internal static class NonNegative
    {
        public static bool Proves(IOperation value) => Proves(value, new HashSet<ILocalSymbol>(SymbolEqualityComparer.Default));

        static bool Proves(IOperation value, HashSet<ILocalSymbol> assumed)
        {
            if (value.ConstantValue.HasValue)
                return value.ConstantValue.Value is { } c && IsNumber(c) && System.Convert.ToDecimal(c, System.Globalization.CultureInfo.InvariantCulture) >= 0;
            switch (value)
            {
                case IParenthesizedOperation p:
                    return Proves(p.Operand, assumed);
                case IConversionOperation conversion:
                    return IsIlgpuIndex(conversion.Operand.Type) || Proves(conversion.Operand, assumed);
                case IParameterReferenceOperation parameter:
                    return IsIlgpuIndex(parameter.Type)
                        || parameter.Parameter.ContainingSymbol is IMethodSymbol { Parameters.Length: > 0 } kernel && IsIlgpuIndex(kernel.Parameters[0].Type) && IsInteger(parameter.Type);
                case IPropertyReferenceOperation property:
                    string owner = property.Property.ContainingType?.ToDisplayString() ?? "";
                    return property.Instance is { } instance && IsIlgpuIndex(instance.Type)
                        || owner is "ILGPU.Group" or "ILGPU.Grid" or "ILGPU.Warp"
                        || property.Property.Name is "Length" or "IntLength" && owner.StartsWith("ILGPU", System.StringComparison.Ordinal);
                case IBinaryOperation binary when binary.OperatorMethod is null:
                    switch (binary.OperatorKind)
                    {
                        case BinaryOperatorKind.Add or BinaryOperatorKind.Multiply or BinaryOperatorKind.Divide
                            or BinaryOperatorKind.Remainder or BinaryOperatorKind.RightShift:
                            return Proves(binary.LeftOperand, assumed) && Proves(binary.RightOperand, assumed);
                        case BinaryOperatorKind.And:
                            return Proves(binary.LeftOperand, assumed) || Proves(binary.RightOperand, assumed);
                        case BinaryOperatorKind.Subtract:
                            return binary.RightOperand.ConstantValue.HasValue && binary.LeftOperand is IBinaryOperation { OperatorKind: BinaryOperatorKind.Add } sum
                                && Constant(binary.RightOperand) is { } c && c >= 0
                                && (Constant(sum.RightOperand) >= c && Proves(sum.LeftOperand, assumed) || Constant(sum.LeftOperand) >= c && Proves(sum.RightOperand, assumed));
                        default:
                            return false;
                    }
                case ILocalReferenceOperation local:
                    return Local(local, assumed);
                default:
                    return false;
            }
        }

        // Every write to the local, anywhere in its method, is non-negative (assuming the local itself is, for v++).
        static bool Local(ILocalReferenceOperation reference, HashSet<ILocalSymbol> assumed)
        {
            var symbol = reference.Local;
            if (!assumed.Add(symbol)) return true;
            IOperation top = reference;
            while (top.Parent is not null) top = top.Parent;
            foreach (var op in top.DescendantsAndSelf())
            {
                switch (op)
                {
                    case IVariableDeclaratorOperation declarator when SymbolEqualityComparer.Default.Equals(declarator.Symbol, symbol):
                        if (declarator.Initializer is null || !Proves(declarator.Initializer.Value, assumed)) return false;
                        break;
                    case ISimpleAssignmentOperation assignment when Targets(assignment.Target, symbol):
                        if (!Proves(assignment.Value, assumed)) return false;
                        break;
                    case ICompoundAssignmentOperation compound when Targets(compound.Target, symbol):
                        if (compound.OperatorKind is not (BinaryOperatorKind.Add or BinaryOperatorKind.Multiply or BinaryOperatorKind.Divide
                                or BinaryOperatorKind.RightShift) || !Proves(compound.Value, assumed))
                            return false;
                        break;
                    case IIncrementOrDecrementOperation step when Targets(step.Target, symbol):
                        if (step.Kind == OperationKind.Decrement) return false;
                        break;
                    case IArgumentOperation argument when argument.Parameter?.RefKind is RefKind.Ref or RefKind.Out && Targets(argument.Value, symbol):
                        return false;
                }
            }
            return true;
        }

        static bool Targets(IOperation target, ILocalSymbol symbol) =>
            target is ILocalReferenceOperation l && SymbolEqualityComparer.Default.Equals(l.Local, symbol);

        static decimal? Constant(IOperation value) =>
            value.ConstantValue.HasValue && value.ConstantValue.Value is { } c && IsNumber(c)
                ? System.Convert.ToDecimal(c, System.Globalization.CultureInfo.InvariantCulture)
                : null;

        static bool IsNumber(object value) => value is int or long or short or sbyte or byte or ushort or uint or ulong or char;

        static bool IsInteger(ITypeSymbol? type) =>
            type?.SpecialType is SpecialType.System_Int32 or SpecialType.System_Int64 or SpecialType.System_Int16 or SpecialType.System_SByte;

        static bool IsIlgpuIndex(ITypeSymbol? type) =>
            type?.ContainingNamespace?.ToDisplayString() == "ILGPU" && type.Name is "Index1D" or "Index2D" or "Index3D" or "LongIndex1D" or "LongIndex2D" or "LongIndex3D";
    }
}
