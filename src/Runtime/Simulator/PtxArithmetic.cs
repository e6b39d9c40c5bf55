using System.Numerics;

namespace GateLoop.Runtime;

/// <summary>
/// The value semantics of PTX's arithmetic, comparison and conversion instructions on one thread, as the PTX ISA
/// defines them (section numbers of PTX ISA 8.x). Registers hold raw bits: a 32-bit value in the low half of a
/// <c>ulong</c>, an f32 as its IEEE bits, a predicate as 0 or 1.
/// </summary>
internal static class PtxArithmetic
{
    /// <summary>A case the ISA leaves undefined or the machine does not implement; the machine adds the thread.</summary>
    public sealed class Undefined(string message) : Exception(message);

    public static ulong Mask(int bits) => bits == 64 ? ulong.MaxValue : (1UL << bits) - 1;

    public static long SignExtend(ulong v, int bits) => bits == 64 ? (long)v : (long)(v << (64 - bits)) >> (64 - bits);

    public static float F32(ulong v) => BitConverter.UInt32BitsToSingle((uint)v);

    public static ulong Bits(float f) => BitConverter.SingleToUInt32Bits(f);

    public static double F64(ulong v) => BitConverter.UInt64BitsToDouble(v);

    public static ulong Bits(double d) => BitConverter.DoubleToUInt64Bits(d);

    /// <summary>One arithmetic instruction on one thread's operands.</summary>
    /// <exception cref="Undefined">A case the ISA leaves undefined.</exception>
    public static ulong Evaluate(in PtxInstruction ins, ulong a, ulong b, ulong c)
    {
        var t = ins.Type;
        if (t.Kind == PtxKind.Float) return t.Bits == 32 ? Float32(ins, a, b, c) : Float64(ins, a, b, c);
        if (t.Kind == PtxKind.Pred) return Predicate(ins.Op, a, b);
        return Integer(ins, t, a, b, c);
    }

    // §9.7.1 integer arithmetic, §9.7.7 logic and shift: two's complement, wrapping at the type's width.
    static ulong Integer(in PtxInstruction ins, PtxType t, ulong a, ulong b, ulong c)
    {
        int w = t.Bits;
        ulong m = Mask(w);
        bool signed = t.Kind == PtxKind.Signed;
        long sa = SignExtend(a & m, w), sb = SignExtend(b & m, w);
        ulong ua = a & m, ub = b & m;
        switch (ins.Op)
        {
            case PtxOp.Mov or PtxOp.Cvta: return a & m;
            case PtxOp.Add: return (ua + ub) & m;
            case PtxOp.Sub: return (ua - ub) & m;
            case PtxOp.Mul or PtxOp.Mad:
            {
                ulong product = Multiply(ins.Half, signed, w, ua, ub, sa, sb);
                if (ins.Op == PtxOp.Mul) return product;
                ulong wm = ins.Wide ? Mask(w * 2) : m;
                return (product + c) & wm;
            }
            case PtxOp.Div or PtxOp.Rem:
                if (ub == 0) throw new Undefined($"{(ins.Op == PtxOp.Div ? "division" : "remainder")} by zero (PTX leaves the result undefined)");
                if (signed)
                {
                    // Truncating toward zero; the one overflowing quotient (MIN / -1) wraps.
                    if (sb == -1) return ins.Op == PtxOp.Div ? (ulong)(-sa) & m : 0;
                    return (ulong)(ins.Op == PtxOp.Div ? sa / sb : sa % sb) & m;
                }
                return ins.Op == PtxOp.Div ? ua / ub : ua % ub;
            case PtxOp.Min: return signed ? (ulong)Math.Min(sa, sb) & m : Math.Min(ua, ub);
            case PtxOp.Max: return signed ? (ulong)Math.Max(sa, sb) & m : Math.Max(ua, ub);
            case PtxOp.Neg: return (ulong)(-sa) & m;
            case PtxOp.Abs: return sa < 0 ? (ulong)(-sa) & m : ua; // abs of the most negative value is itself
            case PtxOp.Not: return ~ua & m;
            case PtxOp.And: return ua & ub;
            case PtxOp.Or: return ua | ub;
            case PtxOp.Xor: return ua ^ ub;
            // §9.7.7.7-8: the shift amount is unsigned; amounts past the width give 0, or the sign for shr.s.
            case PtxOp.Shl: return (uint)b >= w ? 0 : (ua << (int)(uint)b) & m;
            case PtxOp.Shr:
                if (signed) return (ulong)(sa >> (int)Math.Min((uint)b, (uint)(w - 1))) & m;
                return (uint)b >= w ? 0 : ua >> (int)(uint)b;
            default: throw new Undefined($"{ins.Op.ToString().ToLowerInvariant()} on .{t}");
        }
    }

    // mul.lo keeps the low half, mul.hi the high half, mul.wide the whole double-width product (§9.7.1.3).
    static ulong Multiply(PtxHalf half, bool signed, int w, ulong ua, ulong ub, long sa, long sb)
    {
        if (w == 64)
        {
            if (half == PtxHalf.Lo) return ua * ub;
            if (half == PtxHalf.Hi) return signed ? (ulong)(long)((Int128)sa * sb >> 64) : (ulong)((UInt128)ua * ub >> 64);
            throw new InvalidOperationException("mul.wide.64 has no 128-bit destination");
        }
        ulong full = signed ? (ulong)(sa * sb) : ua * ub; // exact: both factors have at most 32 bits
        return half switch
        {
            PtxHalf.Lo => full & Mask(w),
            PtxHalf.Hi => (signed ? (ulong)((long)full >> w) : full >> w) & Mask(w),
            _ => full & Mask(w * 2),
        };
    }

    static ulong Predicate(PtxOp op, ulong a, ulong b) => op switch
    {
        PtxOp.Mov => a,
        PtxOp.And => a & b,
        PtxOp.Or => a | b,
        PtxOp.Xor => a ^ b,
        PtxOp.Not => a ^ 1,
        _ => throw new Undefined($"{op.ToString().ToLowerInvariant()} on .pred"),
    };

    // §9.7.3: IEEE 754 binary32 with the rounding written (round to nearest even where none is: add, sub and mul
    // without one may be contracted into fma by ptxas, which a simulator cannot know; it rounds each).
    static ulong Float32(in PtxInstruction ins, ulong ra, ulong rb, ulong rc)
    {
        float a = Input(F32(ra), ins.Ftz), b = Input(F32(rb), ins.Ftz), c = Input(F32(rc), ins.Ftz);
        float r;
        switch (ins.Op)
        {
            case PtxOp.Mov: return ra & 0xFFFFFFFF;
            // neg and abs only touch the sign bit (§9.7.3.7-8), NaNs included.
            case PtxOp.Neg: return Bits(a) ^ 0x80000000;
            case PtxOp.Abs: return Bits(a) & 0x7FFFFFFF;
            // §9.7.3.20 copysign d, a, b: b's magnitude with a's sign (the operand order is the reverse of C's).
            case PtxOp.CopySign: return (Bits(b) & 0x7FFFFFFF) | (Bits(a) & 0x80000000);
            case PtxOp.Add: r = Round(ins.Rounding, a + b, () => TwoSum(a, b)); break;
            case PtxOp.Sub: r = Round(ins.Rounding, a - b, () => TwoSum(a, -b)); break;
            case PtxOp.Mul: r = Round(ins.Rounding, a * b, () => ((double)a * b, 0)); break;
            case PtxOp.Mad or PtxOp.Fma: r = Round(ins.Rounding, MathF.FusedMultiplyAdd(a, b, c), () => TwoSum((double)a * b, c)); break;
            case PtxOp.Div:
                // div.approx/div.full: the ISA bounds their error (2 ulp for div.full); computed exactly here.
                r = ins.Approx ? a / b : Round(ins.Rounding, a / b, () => Quotient(a, b));
                break;
            // rcp.rn and sqrt.rn are IEEE-rounded (§9.7.3.10, 9.7.3.12); the .approx forms are bounded to about
            // 1 ulp by the ISA and computed exactly here.
            case PtxOp.Rcp: r = ins.Approx ? 1 / a : Round(ins.Rounding, 1 / a, () => Quotient(1, a)); break;
            case PtxOp.Sqrt: r = ins.Approx ? MathF.Sqrt(a) : Round(ins.Rounding, MathF.Sqrt(a), () => Root(a)); break;
            case PtxOp.Rsqrt: r = (float)(1 / Math.Sqrt(a)); break; // approx only; max relative error 2^-22.9 (§9.7.3.13)
            // The transcendentals are .approx only; each is computed in double and rounded once, inside the ISA's
            // stated error of the hardware: ex2 2 ulp (§9.7.3.19), lg2 2^-22.6 absolute in the mantissa
            // (§9.7.3.18), sin and cos 2^-20.9 absolute on [-π, π] (§9.7.3.16-17).
            case PtxOp.Ex2: r = (float)Math.Pow(2, a); break;
            case PtxOp.Lg2: r = (float)Math.Log2(a); break;
            case PtxOp.Sin: r = (float)Math.Sin(a); break;
            case PtxOp.Cos: r = (float)Math.Cos(a); break;
            case PtxOp.Min: r = MinMax(a, b, min: true); break;
            case PtxOp.Max: r = MinMax(a, b, min: false); break;
            default: throw new Undefined($"{ins.Op.ToString().ToLowerInvariant()} on .f32");
        }
        if (ins.Sat) r = float.IsNaN(r) ? 0 : Math.Clamp(r, 0f, 1f);
        return Bits(Input(r, ins.Ftz));
    }

    static ulong Float64(in PtxInstruction ins, ulong ra, ulong rb, ulong rc)
    {
        double a = F64(ra), b = F64(rb), c = F64(rc);
        if (ins.Rounding is not (PtxRounding.None or PtxRounding.Rn))
            throw new Undefined($"not implemented: .{ins.Rounding.ToString().ToLowerInvariant()} rounding of f64 arithmetic");
        return ins.Op switch
        {
            PtxOp.Mov => ra,
            PtxOp.Neg => ra ^ 0x8000000000000000,
            PtxOp.Abs => ra & 0x7FFFFFFFFFFFFFFF,
            PtxOp.CopySign => (rb & 0x7FFFFFFFFFFFFFFF) | (ra & 0x8000000000000000),
            PtxOp.Add => Bits(a + b),
            PtxOp.Sub => Bits(a - b),
            PtxOp.Mul => Bits(a * b),
            PtxOp.Mad or PtxOp.Fma => Bits(Math.FusedMultiplyAdd(a, b, c)),
            PtxOp.Div => Bits(a / b),
            PtxOp.Rcp => Bits(1 / a),
            PtxOp.Sqrt => Bits(Math.Sqrt(a)),
            PtxOp.Min => Bits(MinMax(a, b, min: true)),
            PtxOp.Max => Bits(MinMax(a, b, min: false)),
            _ => throw new Undefined($"{ins.Op.ToString().ToLowerInvariant()} on .f64"),
        };
    }

    /// <summary>
    /// §9.7.3.11-12 min/max: if one operand is NaN the result is the other (where .NET's Math.Min/Max return NaN),
    /// NaN only when both are; −0 counts as less than +0.
    /// </summary>
    public static T MinMax<T>(T a, T b, bool min) where T : IFloatingPointIeee754<T>
    {
        if (T.IsNaN(a)) return T.IsNaN(b) ? T.NaN : b;
        if (T.IsNaN(b)) return a;
        if (a == b) return T.IsNegative(a) == min ? a : b; // the signs of zeros decide
        return (a < b) == min ? a : b;
    }

    // .ftz flushes subnormal inputs and results to zero of the same sign (§9.7.3, "Subnormal numbers").
    static float Input(float v, bool ftz) => ftz && float.IsSubnormal(v) ? (float.IsNegative(v) ? -0f : 0f) : v;

    // The exact result as hi + lo (lo the error of rounding it to double), for the directed roundings.
    static (double Hi, double Lo) TwoSum(double a, double b)
    {
        double s = a + b, bb = s - a;
        return (s, (a - (s - bb)) + (b - bb));
    }

    static (double, double) Quotient(float a, float b)
    {
        double q = (double)a / b;
        return (q, double.IsFinite(q) ? Math.FusedMultiplyAdd(-q, b, a) / b : 0);
    }

    static (double, double) Root(float a)
    {
        double s = Math.Sqrt(a);
        return (s, double.IsFinite(s) && s > 0 ? Math.FusedMultiplyAdd(-s, s, a) / (2 * s) : 0);
    }

    /// <summary>
    /// The float the rounding mode gives: <paramref name="nearest"/> for .rn (or none); for .rz/.rm/.rp the exact
    /// value hi + lo decides whether the nearest float or its neighbour toward zero, −∞ or +∞ is the answer.
    /// </summary>
    static float Round(PtxRounding mode, float nearest, Func<(double Hi, double Lo)> exact)
    {
        if (mode is PtxRounding.None or PtxRounding.Rn || float.IsNaN(nearest)) return nearest;
        var (hi, lo) = exact();
        if (!double.IsFinite(hi)) return nearest; // an infinite exact result, or an invalid operation
        bool towardZero = mode == PtxRounding.Rz;
        if (float.IsInfinity(nearest)) // overflow: only rounding toward that infinity reaches it
        {
            bool positive = nearest > 0;
            return mode == (positive ? PtxRounding.Rp : PtxRounding.Rm) ? nearest : positive ? float.MaxValue : float.MinValue;
        }
        int direction = Math.Sign((hi - nearest) + lo); // the exact value against the nearest float
        if (direction == 0) return nearest;
        if (nearest == 0 && towardZero) return direction > 0 ? 0f : -0f;
        bool up = mode == PtxRounding.Rp || (towardZero && nearest < 0);
        if (direction > 0 && up) return MathF.BitIncrement(nearest);
        if (direction < 0 && !up) return MathF.BitDecrement(nearest);
        return nearest;
    }

    /// <summary>setp's comparison (§9.7.3.22 for floats: the ordered forms are false on NaN, the unordered true).</summary>
    public static bool Compare(PtxCompare cmp, PtxType t, ulong a, ulong b)
    {
        if (t.Kind == PtxKind.Float)
        {
            double x = t.Bits == 32 ? F32(a) : F64(a), y = t.Bits == 32 ? F32(b) : F64(b);
            bool unordered = double.IsNaN(x) || double.IsNaN(y);
            return cmp switch
            {
                PtxCompare.Eq => !unordered && x == y,
                PtxCompare.Ne => !unordered && x != y,
                PtxCompare.Lt => !unordered && x < y,
                PtxCompare.Le => !unordered && x <= y,
                PtxCompare.Gt => !unordered && x > y,
                PtxCompare.Ge => !unordered && x >= y,
                PtxCompare.Equ => unordered || x == y,
                PtxCompare.Neu => unordered || x != y,
                PtxCompare.Ltu => unordered || x < y,
                PtxCompare.Leu => unordered || x <= y,
                PtxCompare.Gtu => unordered || x > y,
                PtxCompare.Geu => unordered || x >= y,
                PtxCompare.Num => !unordered,
                PtxCompare.Nan => unordered,
                _ => throw new Undefined($"setp.{cmp.ToString().ToLowerInvariant()} on .{t}"),
            };
        }
        int w = t.Bits;
        ulong m = Mask(w), ua = a & m, ub = b & m;
        long sa = SignExtend(ua, w), sb = SignExtend(ub, w);
        bool signed = t.Kind == PtxKind.Signed;
        return cmp switch
        {
            PtxCompare.Eq => ua == ub,
            PtxCompare.Ne => ua != ub,
            PtxCompare.Lt when t.Kind != PtxKind.Bits => signed ? sa < sb : ua < ub,
            PtxCompare.Le when t.Kind != PtxKind.Bits => signed ? sa <= sb : ua <= ub,
            PtxCompare.Gt when t.Kind != PtxKind.Bits => signed ? sa > sb : ua > ub,
            PtxCompare.Ge when t.Kind != PtxKind.Bits => signed ? sa >= sb : ua >= ub,
            PtxCompare.Lo => ua < ub,
            PtxCompare.Ls => ua <= ub,
            PtxCompare.Hi => ua > ub,
            PtxCompare.Hs => ua >= ub,
            _ => throw new Undefined($"setp.{cmp.ToString().ToLowerInvariant()} on .{t}"),
        };
    }

    /// <summary>cvt (§9.7.9.21): integer widths extended by the source's signedness and wrapped (or clamped with
    /// .sat), floats rounded as written, float-to-integer clamped to the destination's range with NaN as 0.</summary>
    public static ulong Convert(in PtxInstruction ins, ulong a)
    {
        PtxType d = ins.Type, s = ins.SourceType;
        if (!d.IsFloat && !s.IsFloat)
        {
            bool signedSource = s.Kind == PtxKind.Signed;
            Int128 v = signedSource ? SignExtend(a & Mask(s.Bits), s.Bits) : (Int128)(a & Mask(s.Bits));
            if (ins.Sat) v = Int128.Clamp(v, Min(d), Max(d));
            return (ulong)(v & Mask(d.Bits));
        }
        if (d.IsFloat && !s.IsFloat)
        {
            if (ins.Rounding is not (PtxRounding.Rn or PtxRounding.None))
                throw new Undefined($"not implemented: cvt.{ins.Rounding.ToString().ToLowerInvariant()} from an integer");
            bool signedSource = s.Kind == PtxKind.Signed;
            long sv = SignExtend(a & Mask(s.Bits), s.Bits);
            ulong uv = a & Mask(s.Bits);
            // .NET's conversions from long and ulong round to nearest even once, as PTX's .rn does.
            return d.Bits == 32 ? Bits(signedSource ? (float)sv : (float)uv) : Bits(signedSource ? (double)sv : (double)uv);
        }
        double x = s.Bits == 32 ? Input(F32(a), ins.Ftz) : F64(a);
        if (d.IsFloat)
        {
            if (ins.Rounding is PtxRounding.Rni or PtxRounding.Rzi or PtxRounding.Rmi or PtxRounding.Rpi)
                x = Integral(ins.Rounding, x);
            if (d.Bits == 64) return Bits(x);
            float f = s.Bits == 32 ? (float)x : Round(ins.Rounding is PtxRounding.None ? PtxRounding.Rn : ins.Rounding, (float)x, () => (x, 0));
            if (ins.Sat) f = float.IsNaN(f) ? 0 : Math.Clamp(f, 0f, 1f);
            return Bits(Input(f, ins.Ftz));
        }
        if (ins.Rounding is not (PtxRounding.Rni or PtxRounding.Rzi or PtxRounding.Rmi or PtxRounding.Rpi))
            throw new Undefined("cvt from a float to an integer without an integer rounding (.rni, .rzi, .rmi, .rpi)");
        if (double.IsNaN(x)) return 0;
        double r = Integral(ins.Rounding, x);
        Int128 clamped = r <= (double)Min(d) ? Min(d) : r >= (double)Max(d) ? Max(d) : (Int128)r;
        return (ulong)(clamped & Mask(d.Bits));
    }

    static Int128 Min(PtxType t) => t.Kind == PtxKind.Signed ? -((Int128)1 << (t.Bits - 1)) : 0;

    static Int128 Max(PtxType t) => t.Kind == PtxKind.Signed ? ((Int128)1 << (t.Bits - 1)) - 1 : ((Int128)1 << t.Bits) - 1;

    static double Integral(PtxRounding mode, double x) => mode switch
    {
        PtxRounding.Rni => Math.Round(x, MidpointRounding.ToEven),
        PtxRounding.Rzi => Math.Truncate(x),
        PtxRounding.Rmi => Math.Floor(x),
        _ => Math.Ceiling(x),
    };
}
