namespace GateLoop.Runtime;

/// <summary>The operations <see cref="PtxMachine"/> executes (PTX ISA §9.7; the section is cited where each runs).</summary>
internal enum PtxOp : byte
{
    Mov, Add, Sub, Mul, Mad, Fma, Div, Rem, Min, Max, Neg, Abs, Not, And, Or, Xor, Shl, Shr, CopySign,
    Rcp, Sqrt, Rsqrt, Ex2, Lg2, Sin, Cos, Setp, Selp, Cvt, Cvta, Ld, St, Atom, Red, Bra, BrxIdx, Ret, Exit, Bar, Shfl,
}

internal enum PtxKind : byte { Bits, Signed, Unsigned, Float, Pred }

internal enum PtxSpace : byte { None, Global, Shared, Param }

internal enum PtxRounding : byte { None, Rn, Rz, Rm, Rp, Rni, Rzi, Rmi, Rpi }

internal enum PtxCompare : byte { Eq, Ne, Lt, Le, Gt, Ge, Lo, Ls, Hi, Hs, Equ, Neu, Ltu, Leu, Gtu, Geu, Num, Nan }

internal enum PtxCombine : byte { None, And, Or, Xor }

internal enum PtxAtomic : byte { None, Add, Cas, Exch, Min, Max }

/// <summary>Where <c>shfl.sync</c> takes each lane's value from (the ISA's shfl.sync): lane − b, lane + b, lane ^ b, or lane b.</summary>
internal enum PtxShuffle : byte { None, Up, Down, Bfly, Idx }

/// <summary>The part of a multiplication kept: the low half (same width), the high half, or the whole (twice the width).</summary>
internal enum PtxHalf : byte { None, Lo, Hi, Wide }

/// <summary>Forms the machine runs in a tight loop over the lanes, decided once when the kernel is decoded.</summary>
internal enum PtxFast : byte
{
    None, Mov32, Mov64, AddF32, SubF32, MulF32, FmaF32, Add32, Sub32, MulLo32, MadLo32, Add64, Sub64, MulLo64, MadLo64,
    MulWideU32, MulWideS32, CvtS64S32, CvtU64U32, SetpS32, SetpS64, SetpF32,
}

/// <summary>What the simulator's counters call an instruction's class (see <see cref="LaunchCounters"/>).</summary>
public enum InstructionClass
{
    /// <summary>Integer and logic arithmetic, comparisons, selects, moves.</summary>
    Integer,

    /// <summary>Single-precision arithmetic and conversions.</summary>
    Fp32,

    /// <summary>Double-precision arithmetic and conversions.</summary>
    Fp64,

    /// <summary>Transcendentals, and IEEE division, reciprocal and square root (an estimate refined in fp32).</summary>
    SpecialFunction,

    /// <summary>Loads, stores and atomics in any space.</summary>
    Memory,

    /// <summary>Branches, returns and barriers.</summary>
    Control,
}

/// <summary>A PTX type: its kind and width (<c>.s32</c> is Signed, 32; <c>.pred</c> is Pred, 1).</summary>
internal readonly record struct PtxType(PtxKind Kind, int Bits)
{
    public static readonly PtxType U32 = new(PtxKind.Unsigned, 32);
    public static readonly PtxType Pred = new(PtxKind.Pred, 1);

    public int Bytes => Kind == PtxKind.Pred ? 1 : Bits / 8;

    public bool IsFloat => Kind == PtxKind.Float;

    public PtxType Widened() => this with { Bits = Bits * 2 };

    public override string ToString() => Kind == PtxKind.Pred ? "pred" : $"{Kind switch { PtxKind.Bits => "b", PtxKind.Signed => "s", PtxKind.Unsigned => "u", _ => "f" }}{Bits}";

    /// <summary>"s32" → Signed 32; null for what is not a PTX type the machine holds (f16 and bf16 included).</summary>
    public static PtxType? Parse(string text) => text switch
    {
        "pred" => Pred,
        "b8" or "b16" or "b32" or "b64" => new(PtxKind.Bits, int.Parse(text[1..])),
        "s8" or "s16" or "s32" or "s64" => new(PtxKind.Signed, int.Parse(text[1..])),
        "u8" or "u16" or "u32" or "u64" => new(PtxKind.Unsigned, int.Parse(text[1..])),
        "f32" or "f64" => new(PtxKind.Float, int.Parse(text[1..])),
        _ => null,
    };
}

/// <summary>One decoded instruction. Operand fields are register-file slots (-1 when absent).</summary>
internal struct PtxInstruction
{
    public PtxOp Op;
    public PtxType Type;
    public PtxType SourceType;      // cvt's source
    public PtxSpace Space;
    public PtxRounding Rounding;
    public PtxCompare Compare;
    public PtxCombine Combine;
    public PtxAtomic Atomic;
    public PtxHalf Half;
    public PtxShuffle Shuffle;
    public bool Ftz, Sat, Approx, Uniform;
    public bool DenormalConstant;   // an f32/f64 operand is a denormal immediate
    public PtxFast Fast;
    public bool MayHazard;          // an operation whose operands can make PTX differ from .NET (see PtxMachine.Hazard)
    public InstructionClass Class;
    public int D, A, B, C, P;       // destination, sources, predicate source (selp, setp's combine); shfl's member mask
    public bool PNegated;
    public int Guard;               // predicate slot guarding the instruction, -1 for none
    public bool GuardNegated;
    public long Offset;             // address offset; the parameter's offset for ld.param
    public int Target;              // branch target, or the branch table of brx.idx
    public int Line;                // 0-based PTX line

    public readonly bool Wide => Half == PtxHalf.Wide;
}

/// <summary>Reads an opcode's dotted modifiers into an instruction, refusing any the machine does not implement.</summary>
internal static class PtxDecoder
{
    static readonly Dictionary<string, PtxOp> Ops = new()
    {
        ["mov"] = PtxOp.Mov, ["add"] = PtxOp.Add, ["sub"] = PtxOp.Sub, ["mul"] = PtxOp.Mul, ["mad"] = PtxOp.Mad,
        ["fma"] = PtxOp.Fma, ["div"] = PtxOp.Div, ["rem"] = PtxOp.Rem, ["min"] = PtxOp.Min, ["max"] = PtxOp.Max,
        ["neg"] = PtxOp.Neg, ["abs"] = PtxOp.Abs, ["not"] = PtxOp.Not, ["and"] = PtxOp.And, ["or"] = PtxOp.Or,
        ["xor"] = PtxOp.Xor, ["shl"] = PtxOp.Shl, ["shr"] = PtxOp.Shr, ["copysign"] = PtxOp.CopySign,
        ["rcp"] = PtxOp.Rcp, ["sqrt"] = PtxOp.Sqrt, ["rsqrt"] = PtxOp.Rsqrt, ["ex2"] = PtxOp.Ex2, ["lg2"] = PtxOp.Lg2,
        ["sin"] = PtxOp.Sin, ["cos"] = PtxOp.Cos, ["setp"] = PtxOp.Setp, ["selp"] = PtxOp.Selp, ["cvt"] = PtxOp.Cvt,
        ["cvta"] = PtxOp.Cvta, ["ld"] = PtxOp.Ld, ["st"] = PtxOp.St, ["atom"] = PtxOp.Atom, ["red"] = PtxOp.Red,
        ["bra"] = PtxOp.Bra, ["brx"] = PtxOp.BrxIdx, ["ret"] = PtxOp.Ret, ["exit"] = PtxOp.Exit, ["bar"] = PtxOp.Bar,
        ["barrier"] = PtxOp.Bar, ["shfl"] = PtxOp.Shfl,
    };

    /// <summary>Source operands of the arithmetic forms (the destination not counted).</summary>
    public static int Arity(PtxOp op) => op switch
    {
        PtxOp.Mov or PtxOp.Neg or PtxOp.Abs or PtxOp.Not or PtxOp.Rcp or PtxOp.Sqrt or PtxOp.Rsqrt or PtxOp.Ex2
            or PtxOp.Lg2 or PtxOp.Sin or PtxOp.Cos or PtxOp.Cvta => 1,
        PtxOp.Mad or PtxOp.Fma => 3,
        _ => 2,
    };

    /// <summary>The tight-loop form of a decoded instruction, if it has one.</summary>
    public static PtxFast FastForm(in PtxInstruction ins)
    {
        var t = ins.Type;
        bool plainFloat = t is { Kind: PtxKind.Float, Bits: 32 } && !ins.Ftz && !ins.Sat && ins.Rounding is PtxRounding.None or PtxRounding.Rn && !ins.DenormalConstant;
        bool int32 = t.Kind is PtxKind.Bits or PtxKind.Signed or PtxKind.Unsigned && t.Bits == 32;
        bool int64 = t.Kind is PtxKind.Bits or PtxKind.Signed or PtxKind.Unsigned && t.Bits == 64;
        return ins.Op switch
        {
            PtxOp.Mov when t.Bits == 32 && !ins.DenormalConstant => PtxFast.Mov32,
            PtxOp.Mov when t.Bits == 64 && !ins.DenormalConstant => PtxFast.Mov64,
            PtxOp.Add when plainFloat => PtxFast.AddF32,
            PtxOp.Sub when plainFloat => PtxFast.SubF32,
            PtxOp.Mul when plainFloat => PtxFast.MulF32,
            PtxOp.Fma or PtxOp.Mad when plainFloat => PtxFast.FmaF32,
            PtxOp.Add when int32 => PtxFast.Add32,
            PtxOp.Sub when int32 => PtxFast.Sub32,
            PtxOp.Mul when int32 && ins.Half == PtxHalf.Lo => PtxFast.MulLo32,
            PtxOp.Mad when int32 && ins.Half == PtxHalf.Lo => PtxFast.MadLo32,
            PtxOp.Add when int64 => PtxFast.Add64,
            PtxOp.Sub when int64 => PtxFast.Sub64,
            PtxOp.Mul when int64 && ins.Half == PtxHalf.Lo => PtxFast.MulLo64,
            PtxOp.Mad when int64 && ins.Half == PtxHalf.Lo => PtxFast.MadLo64,
            PtxOp.Mul when ins.Half == PtxHalf.Wide && t is { Kind: PtxKind.Unsigned, Bits: 32 } => PtxFast.MulWideU32,
            PtxOp.Mul when ins.Half == PtxHalf.Wide && t is { Kind: PtxKind.Signed, Bits: 32 } => PtxFast.MulWideS32,
            PtxOp.Cvt when t is { Kind: PtxKind.Signed, Bits: 64 } && ins.SourceType is { Kind: PtxKind.Signed, Bits: 32 } && !ins.Sat => PtxFast.CvtS64S32,
            PtxOp.Cvt when t is { Kind: PtxKind.Unsigned, Bits: 64 } && ins.SourceType is { Kind: PtxKind.Unsigned, Bits: 32 } && !ins.Sat => PtxFast.CvtU64U32,
            PtxOp.Setp when ins.Combine == PtxCombine.None && t is { Kind: PtxKind.Signed, Bits: 32 } && ins.Compare <= PtxCompare.Ge => PtxFast.SetpS32,
            PtxOp.Setp when ins.Combine == PtxCombine.None && t is { Kind: PtxKind.Signed, Bits: 64 } && ins.Compare <= PtxCompare.Ge => PtxFast.SetpS64,
            PtxOp.Setp when ins.Combine == PtxCombine.None && t is { Kind: PtxKind.Float, Bits: 32 } && !ins.Ftz && ins.Compare <= PtxCompare.Ge => PtxFast.SetpF32,
            _ => PtxFast.None,
        };
    }

    public static void Opcode(ref PtxInstruction ins, string opcode, Func<string, PtxFault> fault)
    {
        var parts = opcode.Split('.');
        if (!Ops.TryGetValue(parts[0], out var op)) throw fault($"the instruction {opcode}");
        ins.Op = op;
        var types = new List<PtxType>();
        for (int k = 1; k < parts.Length; k++)
        {
            var m = parts[k];
            if (PtxType.Parse(m) is { } t) { types.Add(t); continue; }
            switch (m)
            {
                case "rn": ins.Rounding = PtxRounding.Rn; break;
                case "rz": ins.Rounding = PtxRounding.Rz; break;
                case "rm": ins.Rounding = PtxRounding.Rm; break;
                case "rp": ins.Rounding = PtxRounding.Rp; break;
                case "rni": ins.Rounding = PtxRounding.Rni; break;
                case "rzi": ins.Rounding = PtxRounding.Rzi; break;
                case "rmi": ins.Rounding = PtxRounding.Rmi; break;
                case "rpi": ins.Rounding = PtxRounding.Rpi; break;
                case "ftz": ins.Ftz = true; break;
                case "sat": ins.Sat = true; break;
                case "approx": ins.Approx = true; break;
                case "full" when op == PtxOp.Div: ins.Approx = true; break;
                case "uni" when op is PtxOp.Bra or PtxOp.BrxIdx: ins.Uniform = true; break;
                case "idx" when op == PtxOp.BrxIdx: break;
                case "sync" or "aligned" when op == PtxOp.Bar: break;
                case "sync" when op == PtxOp.Shfl: break;
                case "up" when op == PtxOp.Shfl: ins.Shuffle = PtxShuffle.Up; break;
                case "down" when op == PtxOp.Shfl: ins.Shuffle = PtxShuffle.Down; break;
                case "bfly" when op == PtxOp.Shfl: ins.Shuffle = PtxShuffle.Bfly; break;
                case "idx" when op == PtxOp.Shfl: ins.Shuffle = PtxShuffle.Idx; break;
                case "to" when op == PtxOp.Cvta: break;
                case "lo" when op is PtxOp.Mul or PtxOp.Mad: ins.Half = PtxHalf.Lo; break;
                case "hi" when op is PtxOp.Mul or PtxOp.Mad: ins.Half = PtxHalf.Hi; break;
                case "wide" when op is PtxOp.Mul or PtxOp.Mad: ins.Half = PtxHalf.Wide; break;
                case "global": ins.Space = PtxSpace.Global; break;
                case "shared": ins.Space = PtxSpace.Shared; break;
                case "param": ins.Space = PtxSpace.Param; break;
                case "and" when op == PtxOp.Setp: ins.Combine = PtxCombine.And; break;
                case "or" when op == PtxOp.Setp: ins.Combine = PtxCombine.Or; break;
                case "xor" when op == PtxOp.Setp: ins.Combine = PtxCombine.Xor; break;
                case "add" when op is PtxOp.Atom or PtxOp.Red: ins.Atomic = PtxAtomic.Add; break;
                case "cas" when op == PtxOp.Atom: ins.Atomic = PtxAtomic.Cas; break;
                case "exch" when op == PtxOp.Atom: ins.Atomic = PtxAtomic.Exch; break;
                case "min" when op is PtxOp.Atom or PtxOp.Red: ins.Atomic = PtxAtomic.Min; break;
                case "max" when op is PtxOp.Atom or PtxOp.Red: ins.Atomic = PtxAtomic.Max; break;
                default:
                    if (op == PtxOp.Setp && Enum.TryParse<PtxCompare>(m, ignoreCase: true, out var cmp) && m == m.ToLowerInvariant())
                    {
                        ins.Compare = cmp;
                        break;
                    }
                    throw fault($"the modifier .{m} of {opcode}");
            }
        }

        // The last type is the instruction's; cvt writes the destination's first, then the source's.
        if (op == PtxOp.Cvt)
        {
            if (types.Count != 2) throw fault($"{opcode} without a destination and a source type");
            (ins.Type, ins.SourceType) = (types[0], types[1]);
        }
        else if (types.Count == 1) ins.Type = types[0];
        else if (types.Count == 0 && op is PtxOp.Bra or PtxOp.BrxIdx or PtxOp.Ret or PtxOp.Exit or PtxOp.Bar) { }
        else throw fault($"{opcode}: expected one type");

        if (op is PtxOp.Ld or PtxOp.St or PtxOp.Atom or PtxOp.Red && ins.Space == PtxSpace.None)
            throw fault($"{opcode}: a generic address (the machine holds global, shared and parameter spaces apart)");
        if (op == PtxOp.St && ins.Space == PtxSpace.Param) throw fault($"{opcode}: a store to the parameter space");
        if (op is PtxOp.Atom or PtxOp.Red && ins.Atomic == PtxAtomic.None) throw fault($"{opcode} without an operation");
        if (op == PtxOp.Cvta && (ins.Space != PtxSpace.Global)) throw fault($"{opcode}: only conversions to the global space are implemented");
        if (op is PtxOp.Mul or PtxOp.Mad && !ins.Type.IsFloat && ins.Half == PtxHalf.None) throw fault($"{opcode} without .lo, .hi or .wide");
        if (ins.Type.IsFloat && op is PtxOp.Mad && ins.Rounding == PtxRounding.None) throw fault($"{opcode}: mad.f32 without a rounding modifier (its fusion is target dependent)");
        if (op is PtxOp.Fma && ins.Rounding == PtxRounding.None) throw fault($"{opcode} without a rounding modifier");
        if (ins.Type.IsFloat && op is PtxOp.Div && !ins.Approx && ins.Rounding == PtxRounding.None) throw fault($"{opcode} without a rounding modifier or .approx");
        if (op is PtxOp.Ex2 or PtxOp.Lg2 or PtxOp.Sin or PtxOp.Cos && !ins.Approx) throw fault($"{opcode} without .approx");
        if (ins.Type.Kind == PtxKind.Float && ins.Type.Bits == 64 && ins.Ftz) throw fault($"{opcode}: .ftz on f64");
        if (op == PtxOp.Shfl && (ins.Shuffle == PtxShuffle.None || !parts.Contains("sync") || ins.Type != new PtxType(PtxKind.Bits, 32)))
            throw fault($"{opcode}: only shfl.sync.(up|down|bfly|idx).b32 is implemented");

        ins.Class = op switch
        {
            // A shuffle crosses lanes through the shared-memory crossbar.
            PtxOp.Ld or PtxOp.St or PtxOp.Atom or PtxOp.Red or PtxOp.Shfl => InstructionClass.Memory,
            PtxOp.Bra or PtxOp.BrxIdx or PtxOp.Ret or PtxOp.Exit or PtxOp.Bar => InstructionClass.Control,
            // Transcendentals run on the special-function units; IEEE division, reciprocal and square root are a
            // special-function estimate refined by fp32 (or fp64) iterations.
            PtxOp.Ex2 or PtxOp.Lg2 or PtxOp.Sin or PtxOp.Cos or PtxOp.Rsqrt => InstructionClass.SpecialFunction,
            PtxOp.Rcp or PtxOp.Sqrt or PtxOp.Div when ins.Type.IsFloat => InstructionClass.SpecialFunction,
            PtxOp.Cvt when ins.Type is { IsFloat: true, Bits: 64 } || ins.SourceType is { IsFloat: true, Bits: 64 } => InstructionClass.Fp64,
            PtxOp.Cvt when ins.Type.IsFloat || ins.SourceType.IsFloat => InstructionClass.Fp32,
            _ when ins.Type is { IsFloat: true, Bits: 64 } => InstructionClass.Fp64,
            _ when ins.Type.IsFloat => InstructionClass.Fp32,
            _ => InstructionClass.Integer,
        };
    }
}
