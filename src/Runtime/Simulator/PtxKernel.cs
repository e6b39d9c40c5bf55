using System.Globalization;

namespace GateLoop.Runtime;

/// <summary>
/// One PTX entry point decoded for <see cref="PtxMachine"/>: its parameters as laid out in the parameter space,
/// its shared variables, and its instructions with every operand resolved to a register slot (immediates and
/// special registers are slots too, filled when a warp starts), every label to an instruction index. Decoding
/// refuses what the machine does not implement, naming the kernel, the PTX line and the construct.
/// </summary>
public sealed class PtxKernel
{
    /// <summary>A parameter: its name, where it starts in the parameter space, its size and alignment in bytes.</summary>
    public sealed record Param(string Name, int Offset, int Size, int Align);

    /// <summary>The entry's name as PTX writes it (ILGPU's <c>Kernel_</c> + the method name).</summary>
    public string Name { get; }

    /// <summary>The parameters in declaration order.</summary>
    public IReadOnlyList<Param> Params { get; }

    /// <summary>Bytes of the parameter space (the last parameter's end).</summary>
    public int ParamBytes { get; }

    /// <summary>Bytes of statically declared shared memory per block.</summary>
    public int SharedBytes { get; }

    internal PtxInstruction[] Code { get; }

    /// <summary>Slots in a thread's register file: declared registers, then immediates and special registers.</summary>
    internal int Slots { get; }

    /// <summary>The declared registers, the first slots (cleared for every warp, so no value leaks between blocks).</summary>
    internal int Registers { get; }

    /// <summary>Immediate values by slot (their bits), for every warp's register file.</summary>
    internal (int Slot, ulong Bits)[] Constants { get; }

    /// <summary>Special registers by slot (<c>%tid.x</c>, <c>%ctaid.y</c>, <c>%laneid</c>…).</summary>
    internal (int Slot, string Name)[] Specials { get; }

    /// <summary>Indirect branch tables: for each, the instruction index of every target.</summary>
    internal int[][] BranchTables { get; }

    /// <summary>The source lines, for messages.</summary>
    internal string[] Lines { get; }

    PtxKernel(string name, List<Param> parameters, int sharedBytes, PtxInstruction[] code, int slots, int registers,
        (int, ulong)[] constants, (int, string)[] specials, int[][] tables, string[] lines)
    {
        Registers = registers;
        Name = name;
        Params = parameters;
        ParamBytes = parameters.Count == 0 ? 0 : parameters[^1].Offset + parameters[^1].Size;
        SharedBytes = sharedBytes;
        Code = code;
        Slots = slots;
        Constants = constants;
        Specials = specials;
        BranchTables = tables;
        Lines = lines;
    }

    /// <summary>Decodes the one <c>.entry</c> of <paramref name="ptx"/> (a module as ILGPU's PTX backend returns it).</summary>
    /// <exception cref="PtxFault">The module holds a construct the machine does not implement.</exception>
    public static PtxKernel Parse(string ptx) => new Parser(ptx).Run();

    sealed class Parser(string ptx)
    {
        readonly string[] lines = ptx.Split('\n');
        string kernel = "?";
        readonly Dictionary<string, int> registers = [];
        readonly Dictionary<string, int> symbols = []; // shared variables → their offset in the block's shared memory
        readonly Dictionary<string, int> parameterOffsets = [];
        readonly Dictionary<ulong, int> constants = [];
        readonly Dictionary<string, int> specials = [];
        readonly List<int> constantSlots = [];
        readonly List<ulong> constantBits = [];
        int slots, declared;

        PtxFault Fault(int line, string what) => new(kernel, line + 1, lines.ElementAtOrDefault(line)?.Trim() ?? "", "not implemented: " + what);

        public PtxKernel Run()
        {
            int i = 0;
            while (i < lines.Length && !lines[i].Contains(".entry", StringComparison.Ordinal)) i++;
            if (i == lines.Length) throw new PtxFault("?", 0, "", "the module has no .entry");
            var header = lines[i].Trim();
            kernel = header[(header.IndexOf(".entry", StringComparison.Ordinal) + 6)..].Trim().TrimEnd('(').Trim();

            var parameters = new List<Param>();
            int offset = 0;
            for (i++; i < lines.Length && !lines[i].TrimStart().StartsWith(')'); i++)
            {
                var p = lines[i].Trim().TrimEnd(',');
                if (p.Length == 0) continue;
                // ".param .b32 _index" | ".param .align 8 .b8 _view[16]" | ".param .f32 _scale"
                var parts = p.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                if (parts[0] != ".param") throw Fault(i, "a parameter that is not in the .param space");
                int size, align, at = 1;
                if (parts[at] == ".align") { align = int.Parse(parts[at + 1], CultureInfo.InvariantCulture); at += 2; }
                else align = 0;
                var type = parts[at];
                var nameAndCount = parts[at + 1];
                int bracket = nameAndCount.IndexOf('[');
                string name = bracket < 0 ? nameAndCount : nameAndCount[..bracket];
                int count = bracket < 0 ? 1 : int.Parse(nameAndCount[(bracket + 1)..nameAndCount.IndexOf(']')], CultureInfo.InvariantCulture);
                size = PtxType.Parse(type[1..]) is { } t ? t.Bytes * count : throw Fault(i, $"parameter type {type}");
                if (align == 0) align = size;
                offset = (offset + align - 1) / align * align;
                parameters.Add(new(name, offset, size, align));
                parameterOffsets[name] = offset;
                offset += size;
            }

            int sharedBytes = 0;
            var code = new List<PtxInstruction>();
            var labels = new Dictionary<string, int>();
            var pending = new List<(int Index, string Label, int Line)>();
            var tableTexts = new List<(string[] Targets, int Line)>();
            var tableOfLabel = new Dictionary<string, int>();
            for (i++; i < lines.Length; i++)
            {
                var line = lines[i].Trim();
                if (line.Length == 0 || line.StartsWith("//", StringComparison.Ordinal) || line is "{" or "}") continue;
                if (line.EndsWith(':'))
                {
                    labels[line[..^1]] = code.Count;
                    continue;
                }
                if (line.StartsWith(".reg", StringComparison.Ordinal))
                {
                    if (slots != declared) throw Fault(i, "a register declaration after the first instruction");
                    DeclareRegisters(i, line);
                    declared = slots;
                    continue;
                }
                if (line.StartsWith(".shared", StringComparison.Ordinal)) { sharedBytes = DeclareShared(i, line, sharedBytes); continue; }
                if (line.StartsWith(".branchtargets", StringComparison.Ordinal))
                {
                    // Written right after the label that names the table.
                    var label = labels.Where(l => l.Value == code.Count).Select(l => l.Key).LastOrDefault() ?? throw Fault(i, "a .branchtargets list without a label");
                    tableOfLabel[label] = tableTexts.Count;
                    tableTexts.Add((line[".branchtargets".Length..].TrimEnd(';').Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries), i));
                    continue;
                }
                if (line.StartsWith('.')) throw Fault(i, $"the directive {line.Split(' ', '\t')[0]}");
                code.Add(Decode(i, line, pending, code.Count));
            }

            var instructions = code.ToArray();
            foreach (var (index, label, line) in pending)
            {
                if (tableOfLabel.TryGetValue(label, out int table)) instructions[index].Target = table;
                else if (labels.TryGetValue(label, out int target)) instructions[index].Target = target;
                else throw new PtxFault(kernel, line + 1, lines[line].Trim(), $"the label {label} is not defined");
            }
            var tables = tableTexts.Select(t => t.Targets.Select(l => labels.TryGetValue(l, out int at) ? at : throw new PtxFault(kernel, t.Line + 1, lines[t.Line].Trim(), $"the label {l} is not defined")).ToArray()).ToArray();
            var constantList = constantBits.Select((bits, k) => (constantSlots[k], bits)).ToArray();
            return new PtxKernel(kernel, parameters, sharedBytes, instructions, slots, declared, constantList,
                specials.Select(s => (s.Value, s.Key)).ToArray(), tables, lines);
        }

        // ".reg .b32 %r<40>;" declares %r0…%r39.
        void DeclareRegisters(int line, string text)
        {
            var parts = text.TrimEnd(';').Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 3 || PtxType.Parse(parts[1][1..]) is null) throw Fault(line, $"the register declaration '{text}'");
            var decl = parts[2];
            int lt = decl.IndexOf('<');
            if (lt < 0) { registers[decl] = slots++; return; }
            string prefix = decl[..lt];
            int count = int.Parse(decl[(lt + 1)..decl.IndexOf('>')], CultureInfo.InvariantCulture);
            for (int k = 0; k < count; k++) registers[prefix + k.ToString(CultureInfo.InvariantCulture)] = slots++;
        }

        // ".shared .align 4 .b8 __shared_alloca0[1088];"
        int DeclareShared(int line, string text, int bytes)
        {
            var parts = text.TrimEnd(';').Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            int align = 1, at = 1;
            if (parts[at] == ".align") { align = int.Parse(parts[at + 1], CultureInfo.InvariantCulture); at += 2; }
            var type = PtxType.Parse(parts[at][1..]) ?? throw Fault(line, $"the shared declaration '{text}'");
            var decl = parts[at + 1];
            int bracket = decl.IndexOf('[');
            if (bracket < 0 || decl.EndsWith("[]", StringComparison.Ordinal)) throw Fault(line, "shared memory without a static size (dynamic shared memory)");
            int count = int.Parse(decl[(bracket + 1)..decl.IndexOf(']')], CultureInfo.InvariantCulture);
            bytes = (bytes + align - 1) / align * align;
            symbols[decl[..bracket]] = bytes;
            return bytes + type.Bytes * count;
        }

        int Constant(ulong bits)
        {
            if (constants.TryGetValue(bits, out int slot)) return slot;
            slot = slots++;
            constants[bits] = slot;
            constantSlots.Add(slot);
            constantBits.Add(bits);
            return slot;
        }

        static readonly HashSet<string> SpecialNames =
        [
            "%tid.x", "%tid.y", "%tid.z", "%ntid.x", "%ntid.y", "%ntid.z", "%ctaid.x", "%ctaid.y", "%ctaid.z",
            "%nctaid.x", "%nctaid.y", "%nctaid.z", "%laneid", "%warpid", "%nwarpid", "%warpsize",
        ];

        // A source operand: a register, a special register, an immediate (typed by the instruction) or a symbol.
        int Source(int line, string text, PtxType type)
        {
            if (registers.TryGetValue(text, out int slot)) return slot;
            if (text.StartsWith('%'))
            {
                if (!SpecialNames.Contains(text)) throw Fault(line, $"the register {text}, which is not declared or not implemented");
                if (!specials.TryGetValue(text, out slot)) specials[text] = slot = slots++;
                return slot;
            }
            if (symbols.TryGetValue(text, out int shared)) return Constant((ulong)shared);
            return Constant(Immediate(line, text, type));
        }

        // 0f00000001 is 1.4e-45: no kernel means to write a denormal, ILGPU's bool-to-float conversion does.
        static bool IsDenormal(string operand)
        {
            if (operand.Length == 10 && operand.StartsWith("0f", StringComparison.OrdinalIgnoreCase))
                return float.IsSubnormal(BitConverter.UInt32BitsToSingle(uint.Parse(operand[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture)));
            if (operand.Length == 18 && operand.StartsWith("0d", StringComparison.OrdinalIgnoreCase))
                return double.IsSubnormal(BitConverter.UInt64BitsToDouble(ulong.Parse(operand[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture)));
            return false;
        }

        ulong Immediate(int line, string text, PtxType type)
        {
            if (text.Length == 10 && text.StartsWith("0f", StringComparison.OrdinalIgnoreCase))
                return ulong.Parse(text[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (text.Length == 18 && text.StartsWith("0d", StringComparison.OrdinalIgnoreCase))
                return ulong.Parse(text[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (type.Kind == PtxKind.Float) throw Fault(line, $"the floating-point immediate {text} in a form other than 0f/0d bits");
            bool negative = text.StartsWith('-');
            var digits = negative ? text[1..] : text;
            ulong value = digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                ? ulong.TryParse(digits[2..].TrimEnd('U'), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var h) ? h : throw Fault(line, $"the operand {text}")
                : ulong.TryParse(digits.TrimEnd('U'), NumberStyles.None, CultureInfo.InvariantCulture, out var d) ? d : throw Fault(line, $"the operand {text}");
            return negative ? (ulong)-(long)value : value;
        }

        int Destination(int line, string text) =>
            registers.TryGetValue(text, out int slot) ? slot : throw Fault(line, $"the destination {text}, which is not a declared register");

        // "[%rd8+4]" → (slot of %rd8, 4); "[_p_55145+40]" → (-1, offset of the parameter + 40).
        (int Slot, long Offset) Address(int line, string text, bool param)
        {
            if (!text.StartsWith('[') || !text.EndsWith(']')) throw Fault(line, $"the address operand {text}");
            var inner = text[1..^1];
            long offset = 0;
            int plus = inner.IndexOf('+');
            if (plus >= 0)
            {
                offset = long.Parse(inner[(plus + 1)..], CultureInfo.InvariantCulture);
                inner = inner[..plus];
            }
            if (param)
                return parameterOffsets.TryGetValue(inner, out int p) ? (-1, p + offset) : throw Fault(line, $"the parameter {inner}, which is not declared");
            if (registers.TryGetValue(inner, out int slot)) return (slot, offset);
            if (symbols.TryGetValue(inner, out int shared)) return (-1, shared + offset);
            throw Fault(line, $"the address {text}");
        }

        PtxInstruction Decode(int line, string text, List<(int, string, int)> pending, int index)
        {
            var ins = new PtxInstruction { Line = line, Guard = -1, A = -1, B = -1, C = -1, D = -1, P = -1 };
            text = text.TrimEnd(';').Trim();
            if (text.StartsWith('@'))
            {
                int space = text.IndexOfAny([' ', '\t']);
                var guard = text[1..space];
                ins.GuardNegated = guard.StartsWith('!');
                ins.Guard = Destination(line, guard.TrimStart('!'));
                text = text[space..].Trim();
            }
            int split = text.IndexOfAny([' ', '\t']);
            string opcode = split < 0 ? text : text[..split];
            var operands = split < 0 ? [] : text[split..].Split(',', StringSplitOptions.TrimEntries);
            PtxDecoder.Opcode(ref ins, opcode, m => Fault(line, m));
            var type = ins.Type;
            ins.DenormalConstant = operands.Skip(1).Any(IsDenormal);

            void Expect(int n)
            {
                if (operands.Length != n) throw Fault(line, $"{opcode} with {operands.Length} operands");
            }

            switch (ins.Op)
            {
                case PtxOp.Ret or PtxOp.Exit:
                    Expect(0);
                    break;
                case PtxOp.Bar:
                    Expect(1);
                    if (operands[0] != "0") throw Fault(line, "a barrier other than barrier 0");
                    break;
                case PtxOp.Bra:
                    Expect(1);
                    pending.Add((index, operands[0], line));
                    break;
                case PtxOp.BrxIdx:
                    Expect(2);
                    ins.A = Source(line, operands[0], PtxType.U32);
                    pending.Add((index, operands[1], line));
                    break;
                case PtxOp.Ld:
                    Expect(2);
                    ins.D = Destination(line, operands[0]);
                    (ins.A, ins.Offset) = Address(line, operands[1], ins.Space == PtxSpace.Param);
                    break;
                case PtxOp.St:
                    Expect(2);
                    (ins.A, ins.Offset) = Address(line, operands[0], false);
                    ins.B = Source(line, operands[1], type);
                    break;
                case PtxOp.Atom:
                    if (operands.Length != (ins.Atomic == PtxAtomic.Cas ? 4 : 3)) throw Fault(line, $"{opcode} with {operands.Length} operands");
                    ins.D = Destination(line, operands[0]);
                    (ins.A, ins.Offset) = Address(line, operands[1], false);
                    ins.B = Source(line, operands[2], type);
                    if (ins.Atomic == PtxAtomic.Cas) ins.C = Source(line, operands[3], type);
                    break;
                case PtxOp.Red:
                    Expect(2);
                    (ins.A, ins.Offset) = Address(line, operands[0], false);
                    ins.B = Source(line, operands[1], type);
                    break;
                case PtxOp.Setp:
                    if (operands.Length != (ins.Combine == PtxCombine.None ? 3 : 4)) throw Fault(line, $"{opcode} with {operands.Length} operands");
                    if (operands[0].Contains('|')) throw Fault(line, "setp with two destination predicates");
                    ins.D = Destination(line, operands[0]);
                    ins.A = Source(line, operands[1], type);
                    ins.B = Source(line, operands[2], type);
                    if (ins.Combine != PtxCombine.None) ins.P = Source(line, operands[3].TrimStart('!'), PtxType.Pred);
                    if (operands.Length == 4 && operands[3].StartsWith('!')) ins.PNegated = true;
                    break;
                case PtxOp.Selp:
                    Expect(4);
                    ins.D = Destination(line, operands[0]);
                    ins.A = Source(line, operands[1], type);
                    ins.B = Source(line, operands[2], type);
                    ins.P = Source(line, operands[3], PtxType.Pred);
                    break;
                case PtxOp.Shfl:
                    Expect(5);
                    if (operands[0].Contains('|')) throw Fault(line, "shfl.sync with a destination predicate");
                    ins.D = Destination(line, operands[0]);
                    ins.A = Source(line, operands[1], type);
                    ins.B = Source(line, operands[2], PtxType.U32);
                    ins.C = Source(line, operands[3], PtxType.U32);
                    ins.P = Source(line, operands[4], PtxType.U32);
                    break;
                case PtxOp.Cvt:
                    Expect(2);
                    ins.D = Destination(line, operands[0]);
                    ins.A = Source(line, operands[1], ins.SourceType);
                    break;
                default:
                    int arity = PtxDecoder.Arity(ins.Op);
                    Expect(arity + 1);
                    ins.D = Destination(line, operands[0]);
                    // mul.wide's and mad.wide's sources are of the instruction's (narrow) type, like every other.
                    ins.A = Source(line, operands[1], type);
                    if (arity > 1) ins.B = Source(line, operands[2], ins.Op is PtxOp.Shl or PtxOp.Shr ? PtxType.U32 : type);
                    if (arity > 2) ins.C = Source(line, operands[3], ins.Wide ? type.Widened() : type);
                    break;
            }
            ins.Fast = PtxDecoder.FastForm(ins);
            ins.MayHazard = ins.DenormalConstant || ins.Op is PtxOp.CopySign || ins.Op is PtxOp.Min or PtxOp.Max && type.IsFloat
                || ins.Op == PtxOp.Shr && type.Kind == PtxKind.Signed;
            return ins;
        }
    }
}
