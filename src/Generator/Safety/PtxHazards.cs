using System.Collections.Generic;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace GateLoop.Generator.Safety
{
    /// <summary>
    /// A C# construct that ILGPU 1.5.3's PTX backend compiles to code computing something else than .NET does, or
    /// to a module that fails only once it reaches a GPU. The CPU backends run the IL as written, so only a GPU (or
    /// reading the PTX) shows the difference.
    /// </summary>
    /// <param name="Construct">What the kernel wrote, as the diagnostic names it.</param>
    /// <param name="Why">What the PTX computes instead.</param>
    /// <param name="Instead">How to write it so that the PTX is right.</param>
    internal sealed record PtxHazard(string Construct, string Why, string Instead);

    /// <summary>
    /// The constructs kernels must not use, found on an H200 and by reading ILGPU 1.5.3's frontend, IR conversions
    /// and PTX backend, each confirmed in the PTX it emits. Extend <see cref="Find"/> when another one turns up; a
    /// probe kernel in the tests proves each rule fires (and, where the fault is visible there, that its PTX shows it).
    /// Not refused: integer division by zero does not throw (a GPU has no exceptions). Math.Round is safe here:
    /// ILGPU.Algorithms, which every device enables, supplies its own (without it ILGPU compiles .NET's, which goes
    /// through CopySign).
    /// </summary>
    internal static class PtxHazards
    {
        public static readonly PtxHazard CopySign = new PtxHazard("CopySign",
            "ILGPU emits PTX 'copysign.f32 d, x, y', and PTX takes the sign from its first operand, so the result is CopySign(y, x) (ILGPU issue 1361)",
            "select the sign instead, e.g. v < 0 ? -r : r");

        public static readonly PtxHazard IntegerConditionalToFloat = new PtxHazard("an integer conditional converted to a floating type",
            "for 'c ? 1 : 0' the C# compiler passes the comparison itself, and ILGPU converts a bool to float as the bit pattern 1 (1.4e-45), not 1.0",
            "write the arms as floating-point literals, e.g. c ? 1f : 0f");

        public static readonly PtxHazard BoolToFloat = new PtxHazard("a bool converted to a floating type",
            "ILGPU converts a bool to float as the bit pattern 1 (1.4e-45), not 1.0",
            "select floating-point literals instead, e.g. b ? 1f : 0f");

        public static readonly PtxHazard UnsignedToFloat = new PtxHazard("an unsigned integer converted to a floating type",
            "ILGPU converts through double (an FP64 round trip; ulong is rounded twice), and folds a uint constant of 2^31 or more as if it were near 2^64 (ILGPU issue 1309)",
            "convert from a signed type: (float)(int)u where u < 2^31, else (float)(long)u");

        public static readonly PtxHazard SignedToUnsigned = new PtxHazard("a narrow signed integer cast to an unsigned type",
            "ILGPU's IR keeps no signedness for types of one width, so (ushort)s and (byte)b are sign-extended when widened: -1 becomes -1, not 65535 or 255",
            "widen to int first and mask, e.g. s & 0xFFFF");

        public static readonly PtxHazard FloatToNarrowInteger = new PtxHazard("a floating value cast to sbyte, byte, short or ushort",
            "ILGPU emits a saturating PTX cvt.rzi, while .NET truncates through int and wraps: (byte)300f is 255 on CUDA and 44 on .NET",
            "cast to int first, then to the narrow type: (byte)(int)x");

        public static readonly PtxHazard CompareExchange = new PtxHazard("Interlocked.CompareExchange",
            "ILGPU maps it to Atomic.CompareExchange without reordering the arguments, so the comparand and the new value trade places",
            "call ILGPU.Atomic.CompareExchange(ref target, compare, value)");

        public static readonly PtxHazard InterlockedResult = new PtxHazard("the result of Interlocked.Increment, Decrement or Add",
            "ILGPU maps them to Atomic.Add, which returns the value before the addition; .NET returns the value after it",
            "call ILGPU.Atomic.Add and add the operand to its result");

        public static readonly PtxHazard SignedDivisionByPowerOfTwo = new PtxHazard("a signed division by a power of two of a value not known to be non-negative",
            "ILGPU rewrites x / 2^k as the arithmetic shift x >> k, which rounds negative x toward -infinity: -3 / 2 is -2 on CUDA and -1 on .NET",
            "divide values the kernel derives from its index, lengths and non-negative constants (the analyzer follows locals and loop counters), or write the shift with the rounding you mean");

        public static readonly PtxHazard FloatMinMax = new PtxHazard("Min or Max of floating-point values",
            "ILGPU emits PTX min/max.f32, which return the other operand when one is NaN, where .NET returns NaN: a NaN that reaches Max(v, 0) vanishes on a GPU and a diverging run goes unnoticed",
            "select with a comparison, which PTX and .NET evaluate alike: v < 0 ? 0f : v for Max(v, 0) (it keeps a NaN v), m < x ? x : m for a running maximum");

        public static readonly PtxHazard Unsupported = new PtxHazard("a math method ILGPU cannot compile for CUDA",
            "ILGPU 1.5.3 leaves it an unresolved external call (Log2, FusedMultiplyAdd: the module fails to load) or cannot compile it at all (Sign of a float, Clamp, IEEERemainder, BitIncrement, BitDecrement); the CPU backends run it, so only a GPU shows the failure",
            "write it with the operations the kernels already use (Floor, Abs, comparisons, Exp, Log)");

        static readonly HashSet<string> Uncompilable = new HashSet<string>
        {
            "Log2", "FusedMultiplyAdd", "Clamp", "IEEERemainder", "BitIncrement", "BitDecrement",
        };

        /// <summary>The hazard <paramref name="operation"/> itself is (not its children) and the code to point at, or null.</summary>
        public static (PtxHazard Hazard, SyntaxNode Where)? Find(IOperation operation)
        {
            var (hazard, where) = operation switch
            {
                IInvocationOperation call => (Called(call), call.Syntax),
                IBinaryOperation { OperatorKind: BinaryOperatorKind.Divide } division when division.OperatorMethod is null
                    && IsSignedInteger(division.Type) && IsPowerOfTwo(division.RightOperand.ConstantValue)
                    && !NonNegative.Proves(division.LeftOperand) => (SignedDivisionByPowerOfTwo, division.Syntax),
                IConversionOperation conversion when conversion.OperatorMethod is null => (Converted(conversion.Operand, conversion.Type), conversion.Syntax),
                // Arguments and compound assignments keep their implicit conversions out of the operation tree.
                IArgumentOperation argument when argument.Parameter is not null && argument.InConversion.IsNumeric =>
                    (Converted(argument.Value, argument.Parameter.Type), argument.Value.Syntax),
                ICompoundAssignmentOperation compound when compound.InConversion.IsNumeric =>
                    (Converted(compound.Value, compound.Target.Type), compound.Value.Syntax),
                _ => ((PtxHazard?)null, operation.Syntax),
            };
            return hazard is null ? null : (hazard, where);
        }

        static PtxHazard? Called(IInvocationOperation call)
        {
            var method = call.TargetMethod;
            string type = method.ContainingType?.ToDisplayString() ?? "";
            if (type == "System.Threading.Interlocked")
            {
                if (method.Name == "CompareExchange") return CompareExchange;
                bool used = call.Parent is not IExpressionStatementOperation;
                return used && method.Name is "Increment" or "Decrement" or "Add" ? InterlockedResult : null;
            }
            if (type == "System.Convert" && IsFloating(method.ReturnType) && call.Arguments.Length == 1
                && call.Arguments[0].Value.Type?.SpecialType == SpecialType.System_Boolean)
                return BoolToFloat;
            string ns = method.ContainingNamespace?.ToDisplayString() ?? "";
            // ILGPU's own CopySign (IntrinsicMath) is the same PTX instruction.
            if (method.Name == "CopySign" && (IsDotNetMath(ns) || ns.StartsWith("ILGPU", System.StringComparison.Ordinal))) return CopySign;
            if (!IsDotNetMath(ns)) return null;
            bool floating = call.Arguments.Length > 0 && IsFloating(call.Arguments[0].Value.Type);
            if (method.Name == "Sign" && floating || Uncompilable.Contains(method.Name)) return Unsupported;
            if (method.Name is "Min" or "Max" && floating) return FloatMinMax;
            return null;
        }

        static PtxHazard? Converted(IOperation value, ITypeSymbol? target)
        {
            var source = value.Type;
            if (IsFloating(target))
            {
                // Integer casts between the conditional and the conversion emit no IL ((float)(int)(c ? 1 : 0)).
                var inner = value;
                while (inner is IConversionOperation cast && IsInteger(cast.Type) && IsInteger(cast.Operand.Type)) inner = cast.Operand;
                if (IsIntegerConditional(inner)) return IntegerConditionalToFloat;
                if (source?.SpecialType == SpecialType.System_Boolean) return BoolToFloat;
                // byte and ushort widen to int first, which ILGPU gets right.
                if (source?.SpecialType is SpecialType.System_UInt32 or SpecialType.System_UInt64 or SpecialType.System_UIntPtr) return UnsignedToFloat;
                return null;
            }
            if (IsFloating(source) && target?.SpecialType is SpecialType.System_SByte or SpecialType.System_Byte
                    or SpecialType.System_Int16 or SpecialType.System_UInt16)
                return FloatToNarrowInteger;
            if (IsUnsigned(target) && source?.SpecialType is SpecialType.System_SByte or SpecialType.System_Int16)
                return SignedToUnsigned;
            return null;
        }

        // 'c ? 1 : 0', and bitwise combinations of such (which the C# compiler also leaves as bools).
        static bool IsIntegerConditional(IOperation value) =>
            value is IConditionalOperation conditional && IsInteger(conditional.Type)
            || value is IBinaryOperation { OperatorKind: BinaryOperatorKind.And or BinaryOperatorKind.Or or BinaryOperatorKind.ExclusiveOr } binary
               && IsInteger(binary.Type) && (IsIntegerConditional(binary.LeftOperand) || IsIntegerConditional(binary.RightOperand));

        // Math, MathF, float/double's static members and the generic math interfaces.
        static bool IsDotNetMath(string ns) => ns == "System" || ns == "System.Numerics";

        static bool IsFloating(ITypeSymbol? type) =>
            type is not null && (type.SpecialType is SpecialType.System_Single or SpecialType.System_Double
                                 || type.Name == "Half" && type.ContainingNamespace?.ToDisplayString() is "System" or "ILGPU");

        static bool IsSignedInteger(ITypeSymbol? type) =>
            type?.SpecialType is SpecialType.System_Int32 or SpecialType.System_Int64 or SpecialType.System_Int16 or SpecialType.System_SByte;

        static bool IsPowerOfTwo(Optional<object?> constant)
        {
            if (!constant.HasValue || constant.Value is null) return false;
            long v;
            try { v = System.Math.Abs(System.Convert.ToInt64(constant.Value, System.Globalization.CultureInfo.InvariantCulture)); }
            catch (System.OverflowException) { return true; } // long.MinValue is -2^63
            return v >= 2 && (v & (v - 1)) == 0;
        }

        static bool IsUnsigned(ITypeSymbol? type) =>
            type?.SpecialType is SpecialType.System_Byte or SpecialType.System_UInt16 or SpecialType.System_UInt32
                or SpecialType.System_UInt64 or SpecialType.System_UIntPtr;

        static bool IsInteger(ITypeSymbol? type) =>
            type?.SpecialType is SpecialType.System_Int32 or SpecialType.System_Int64 or SpecialType.System_Int16
                or SpecialType.System_SByte or SpecialType.System_Byte or SpecialType.System_UInt16
                or SpecialType.System_UInt32 or SpecialType.System_UInt64 or SpecialType.System_Char;
    }
}
