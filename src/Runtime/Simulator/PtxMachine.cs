using System.Numerics;
using static GateLoop.Runtime.PtxArithmetic;

namespace GateLoop.Runtime;

/// <summary>
/// Executes a decoded PTX kernel on the CPU as CUDA runs it: a grid of blocks, each block's threads in warps of 32
/// that step in lockstep (a diverged warp runs the lanes at the lowest instruction first, so they reconverge where
/// the paths meet; a <c>shfl.sync</c> waits for every lane its mask names, as on sm_70 and later), registers per
/// thread, the parameter space as ILGPU's launcher fills it, shared memory per block, <c>bar.sync</c> across the
/// block, and global memory that is the launch's buffers and nothing else: every access is checked against them.
/// Blocks are independent and run on the host's cores.
/// </summary>
public static unsafe class PtxMachine
{
    /// <summary>A buffer the kernel may touch: host memory from <paramref name="Start"/>, <paramref name="Bytes"/> long.</summary>
    public readonly record struct Region(ulong Start, long Bytes, string Name);

    /// <summary>A launch's shape: blocks in the grid and threads in a block, per dimension.</summary>
    public readonly record struct Dim3(int X, int Y = 1, int Z = 1)
    {
        /// <summary>X·Y·Z.</summary>
        public long Count => (long)X * Y * Z;
    }

    const int WarpSize = 32;

    /// <summary>
    /// Runs <paramref name="kernel"/> once and returns its counts. With <paramref name="sample"/>, only those blocks
    /// run, their global stores and atomics are not written (the caller computes the values another way), and the
    /// counts are scaled to the whole grid: how a cost estimate covers launches too large to simulate whole.
    /// </summary>
    /// <exception cref="PtxFault">The kernel did something a GPU would do wrong or leave undefined.</exception>
    public static LaunchCounters Launch(PtxKernel kernel, Dim3 grid, Dim3 block, ReadOnlySpan<byte> parameters, IReadOnlyList<Region> regions,
        IReadOnlyList<long>? sample = null)
    {
        if (parameters.Length != kernel.ParamBytes)
            throw new ArgumentException($"{kernel.Name} takes {kernel.ParamBytes} bytes of parameters, not {parameters.Length}", nameof(parameters));
        if (block.Count is < 1 or > 1024) throw new ArgumentOutOfRangeException(nameof(block), "a block holds 1 to 1024 threads");
        var param = parameters.ToArray();
        var sorted = regions.Where(r => r.Bytes > 0).OrderBy(r => r.Start).ToArray();
        var total = new LaunchCounters { Launches = 1, Threads = grid.Count * block.Count };
        long blocks = sample?.Count ?? grid.Count;
        PtxFault? first = null;
        long firstBlock = long.MaxValue;
        var sync = new Lock();
        Parallel.For(0L, blocks, new ParallelOptions { MaxDegreeOfParallelism = blocks < 4 ? 1 : Environment.ProcessorCount },
            () => new Block(kernel, block, grid, param, sorted, readOnly: sample is not null),
            (i, _, state) =>
            {
                long b = sample?[(int)i] ?? i;
                try
                {
                    state.Run(b);
                }
                catch (PtxFault f)
                {
                    // Report the lowest block's fault, so the message does not depend on the schedule.
                    lock (sync)
                        if (b < firstBlock) (first, firstBlock) = (f, b);
                }
                return state;
            },
            state =>
            {
                lock (sync) total.Add(state.Counters);
            });
        if (first is not null) throw first;
        if (sample is not null) total.ScaleRuns(grid.Count, sample.Count);
        return total;
    }

    /// <summary>One worker's block in flight: its warps' register files, shared memory and counts.</summary>
    sealed class Block
    {
        readonly PtxKernel k;
        readonly PtxInstruction[] code;
        readonly Dim3 shape, grid;
        readonly byte[] param;
        readonly Region[] regions;
        readonly byte[] shared;
        readonly ulong[][] registers;
        readonly int[][] pcs;
        readonly long[][] executed, loads, newLines;
        readonly int[] loadStream; // per instruction: its index among the kernel's global loads, or -1
        readonly ulong[][] lastLine; // per warp: [load instruction × lane], the 128-byte line it read last
        readonly bool readOnly;
        readonly uint[] live, waiting, present;
        readonly uint[] shuffling; // per warp: the lanes stopped at a shfl.sync until the lanes it names get there
        readonly int warps;
        readonly ulong[] sectors = new ulong[2 * WarpSize];
        int lastRegion;
        (int X, int Y, int Z) block; // the block in flight, for messages
        public readonly LaunchCounters Counters = new();

        public Block(PtxKernel kernel, Dim3 shape, Dim3 grid, byte[] param, Region[] regions, bool readOnly)
        {
            this.readOnly = readOnly;
            k = kernel;
            code = kernel.Code;
            this.shape = shape;
            this.grid = grid;
            this.param = param;
            this.regions = regions;
            shared = new byte[kernel.SharedBytes];
            int threads = (int)shape.Count;
            warps = (threads + WarpSize - 1) / WarpSize;
            registers = new ulong[warps][];
            pcs = new int[warps][];
            executed = new long[warps][];
            loads = new long[warps][];
            newLines = new long[warps][];
            lastLine = new ulong[warps][];
            loadStream = new int[code.Length];
            int streams = 0;
            for (int i = 0; i < code.Length; i++)
                loadStream[i] = code[i].Op is PtxOp.Ld or PtxOp.Atom && code[i].Space == PtxSpace.Global ? streams++ : -1;
            live = new uint[warps];
            waiting = new uint[warps];
            shuffling = new uint[warps];
            present = new uint[warps];
            for (int w = 0; w < warps; w++)
            {
                registers[w] = new ulong[kernel.Slots * WarpSize];
                pcs[w] = new int[WarpSize];
                executed[w] = new long[WarpSize];
                loads[w] = new long[WarpSize];
                newLines[w] = new long[WarpSize];
                lastLine[w] = new ulong[streams * WarpSize];
                int lanes = Math.Min(WarpSize, threads - w * WarpSize);
                present[w] = lanes == WarpSize ? uint.MaxValue : (1u << lanes) - 1;
                foreach (var (slot, bits) in kernel.Constants)
                    Array.Fill(registers[w], bits, slot * WarpSize, WarpSize);
            }
        }

        public void Run(long b)
        {
            Array.Clear(shared);
            int cx = (int)(b % grid.X), cy = (int)(b / grid.X % grid.Y), cz = (int)(b / ((long)grid.X * grid.Y));
            block = (cx, cy, cz);
            for (int w = 0; w < warps; w++)
            {
                var r = registers[w];
                foreach (var (slot, name) in k.Specials)
                    for (int lane = 0; lane < WarpSize; lane++)
                    {
                        int t = w * WarpSize + lane;
                        r[slot * WarpSize + lane] = (ulong)(name switch
                        {
                            "%tid.x" => t % shape.X,
                            "%tid.y" => t / shape.X % shape.Y,
                            "%tid.z" => t / (shape.X * shape.Y),
                            "%ntid.x" => shape.X,
                            "%ntid.y" => shape.Y,
                            "%ntid.z" => shape.Z,
                            "%ctaid.x" => cx,
                            "%ctaid.y" => cy,
                            "%ctaid.z" => cz,
                            "%nctaid.x" => grid.X,
                            "%nctaid.y" => grid.Y,
                            "%nctaid.z" => grid.Z,
                            "%laneid" => lane,
                            "%warpid" => w,
                            "%nwarpid" => warps,
                            _ => WarpSize, // %warpsize
                        });
                    }
                Array.Clear(r, 0, k.Registers * WarpSize);
                Array.Clear(pcs[w]);
                Array.Clear(executed[w]);
                Array.Clear(loads[w]);
                Array.Clear(newLines[w]);
                Array.Fill(lastLine[w], ulong.MaxValue);
                live[w] = present[w];
                waiting[w] = 0;
                shuffling[w] = 0;
            }

            while (true)
            {
                for (int w = 0; w < warps; w++) RunWarp(w);
                uint anyLive = 0, anyExited = 0;
                for (int w = 0; w < warps; w++)
                {
                    anyLive |= live[w];
                    anyExited |= present[w] & ~live[w];
                }
                if (anyLive == 0) break;
                // Every live thread waits at a barrier: all of them must be here, none gone.
                if (anyExited != 0)
                {
                    int gone = Enumerable.Range(0, warps).First(w => (present[w] & ~live[w]) != 0);
                    int waiter = Enumerable.Range(0, warps).First(w => live[w] != 0);
                    int lane = BitOperations.TrailingZeroCount(live[waiter]);
                    throw Fault(waiter, lane, pcs[waiter][lane],
                        $"bar.sync waits for {Thread(gone, BitOperations.TrailingZeroCount(present[gone] & ~live[gone]))}, which has exited: a barrier not every thread of the block reaches");
                }
                for (int w = 0; w < warps; w++)
                {
                    for (uint m = waiting[w]; m != 0; m &= m - 1) pcs[w][BitOperations.TrailingZeroCount(m)]++;
                    waiting[w] = 0;
                }
            }

            long longest = 0, sum = 0, mostLoads = 0, mostLines = 0;
            for (int w = 0; w < warps; w++)
                for (int lane = 0; lane < WarpSize; lane++)
                {
                    longest = Math.Max(longest, executed[w][lane]);
                    mostLoads = Math.Max(mostLoads, loads[w][lane]);
                    mostLines = Math.Max(mostLines, newLines[w][lane]);
                    sum += executed[w][lane];
                }
            Counters.LongestThread = Math.Max(Counters.LongestThread, longest);
            Counters.MostGlobalLoads = Math.Max(Counters.MostGlobalLoads, mostLoads);
            Counters.MostNewLineLoads = Math.Max(Counters.MostNewLineLoads, mostLines);
            Counters.ThreadInstructions += sum;
        }

        string Thread(int w, int lane)
        {
            int t = w * WarpSize + lane;
            return $"thread ({t % shape.X}, {t / shape.X % shape.Y}, {t / (shape.X * shape.Y)}) of block {block}";
        }

        PtxFault Fault(int w, int lane, int pc, string what)
        {
            int line = pc < code.Length ? code[pc].Line : code[^1].Line;
            return new PtxFault(k.Name, line + 1, k.Lines[line].Trim(), what, Thread(w, lane));
        }

        // Steps warp w until none of its lanes can go on (all exited or waiting at a barrier).
        void RunWarp(int w)
        {
            var r = registers[w];
            var pc = pcs[w];
            var done = executed[w];
            while (true)
            {
                uint runnable = live[w] & ~waiting[w] & ~shuffling[w];
                if (runnable == 0)
                {
                    if (shuffling[w] == 0) return;
                    int stuck = BitOperations.TrailingZeroCount(shuffling[w]);
                    throw Fault(w, stuck, pc[stuck], "shfl.sync waits for lanes of its member mask that never get there (they wait at a barrier or at another shuffle)");
                }
                // The lowest instruction any runnable lane is at, and the lanes there.
                int at = int.MaxValue;
                uint mask = 0;
                for (uint m = runnable; m != 0; m &= m - 1)
                {
                    int lane = BitOperations.TrailingZeroCount(m), p = pc[lane];
                    if (p < at) (at, mask) = (p, 1u << lane);
                    else if (p == at) mask |= 1u << lane;
                }
                if (at >= code.Length) throw Fault(w, BitOperations.TrailingZeroCount(mask), code.Length - 1, "ran past the kernel's last instruction without ret");
                for (uint m = mask; m != 0; m &= m - 1) done[BitOperations.TrailingZeroCount(m)]++;
                // The lanes stopped at a shuffle go on with the lanes that reach it (they counted it when they got there).
                for (uint m = shuffling[w]; m != 0; m &= m - 1)
                {
                    int lane = BitOperations.TrailingZeroCount(m);
                    if (pc[lane] == at) mask |= 1u << lane;
                }
                shuffling[w] &= ~mask;
                try
                {
                    Step(w, r, pc, at, mask);
                }
                catch (Undefined e)
                {
                    throw Fault(w, lane, at, e.Message);
                }
            }
        }

        void Step(int w, ulong[] r, int[] pc, int at, uint mask)
        {
            ref var ins = ref code[at];
            Counters.WarpInstructions[(int)ins.Class]++;
            uint active = mask;
            if (ins.Guard >= 0)
            {
                active = 0;
                int g = ins.Guard * WarpSize;
                for (uint m = mask; m != 0; m &= m - 1)
                {
                    lane = BitOperations.TrailingZeroCount(m);
                    if ((r[g + lane] != 0) != ins.GuardNegated) active |= 1u << lane;
                }
            }
            int next = at + 1;
            if (ins.Fast != PtxFast.None)
            {
                Fast(ins, r, active);
                Advance(pc, mask, next);
                return;
            }
            switch (ins.Op)
            {
                case PtxOp.Bra:
                    // ILGPU marks data-dependent branches .uni too; GPUs run them as ordinary branches (the H200 trained
                    // with them), so they diverge here as well, and are counted.
                    if (ins.Uniform && active != 0 && active != mask) Counters.DivergentUniformBranches++;
                    Advance(pc, mask & ~active, next);
                    Advance(pc, active, ins.Target);
                    return;
                case PtxOp.BrxIdx:
                {
                    var table = k.BranchTables[ins.Target];
                    int first = -1;
                    for (uint m = active; m != 0; m &= m - 1)
                    {
                        lane = BitOperations.TrailingZeroCount(m);
                        ulong index = r[ins.A * WarpSize + lane] & 0xFFFFFFFF;
                        if (index >= (ulong)table.Length) throw Fault(w, lane, at, $"brx.idx with index {index} past its {table.Length} targets");
                        if (ins.Uniform && first >= 0 && first != (int)index) Counters.DivergentUniformBranches++;
                        first = (int)index;
                        pc[lane] = table[index];
                    }
                    Advance(pc, mask & ~active, next);
                    return;
                }
                case PtxOp.Ret or PtxOp.Exit:
                    live[w] &= ~active;
                    Advance(pc, mask & ~active, next);
                    return;
                case PtxOp.Bar:
                    waiting[w] |= active; // released (pc + 1) when the whole block is there
                    Advance(pc, mask & ~active, next);
                    return;
                case PtxOp.Ld or PtxOp.St or PtxOp.Atom or PtxOp.Red:
                    Memory(w, r, at, ref ins, active);
                    break;
                case PtxOp.Shfl:
                    if (Shuffle(w, r, at, ins, active)) break;
                    shuffling[w] |= active; // they stay at the shuffle
                    Advance(pc, mask & ~active, next);
                    return;
                case PtxOp.Setp:
                    for (uint m = active; m != 0; m &= m - 1)
                    {
                        lane = BitOperations.TrailingZeroCount(m);
                        bool v = Compare(ins.Compare, ins.Type, r[ins.A * WarpSize + lane], r[ins.B * WarpSize + lane]);
                        if (ins.Combine != PtxCombine.None)
                        {
                            bool p = (r[ins.P * WarpSize + lane] != 0) != ins.PNegated;
                            v = ins.Combine switch { PtxCombine.And => v && p, PtxCombine.Or => v || p, _ => v ^ p };
                        }
                        r[ins.D * WarpSize + lane] = v ? 1UL : 0;
                    }
                    break;
                case PtxOp.Selp:
                    for (uint m = active; m != 0; m &= m - 1)
                    {
                        lane = BitOperations.TrailingZeroCount(m);
                        r[ins.D * WarpSize + lane] = r[ins.P * WarpSize + lane] != 0 ? r[ins.A * WarpSize + lane] : r[ins.B * WarpSize + lane];
                    }
                    if (ins.DenormalConstant && active != 0) Counters.Hazards.TryAdd(ins.Line + 1, Hazard(ins, 0, 0)!);
                    break;
                case PtxOp.Cvt:
                    for (uint m = active; m != 0; m &= m - 1)
                    {
                        lane = BitOperations.TrailingZeroCount(m);
                        r[ins.D * WarpSize + lane] = PtxArithmetic.Convert(ins, r[ins.A * WarpSize + lane]);
                    }
                    break;
                default:
                    for (uint m = active; m != 0; m &= m - 1)
                    {
                        lane = BitOperations.TrailingZeroCount(m);
                        ulong a = r[ins.A * WarpSize + lane];
                        ulong b = ins.B >= 0 ? r[ins.B * WarpSize + lane] : 0;
                        ulong c = ins.C >= 0 ? r[ins.C * WarpSize + lane] : 0;
                        if (ins.MayHazard && Hazard(ins, a, b) is { } hazard) Counters.Hazards.TryAdd(ins.Line + 1, hazard);
                        r[ins.D * WarpSize + lane] = Evaluate(ins, a, b, c);
                    }
                    break;
            }
            Advance(pc, mask, next);
        }

        int lane; // the lane being evaluated, for a fault's message

        // shfl.sync as the ISA's pseudocode has it: each lane's source lane j from b and the clamp and segment mask
        // in c, its own value where j falls outside its segment. On sm_70 and later the lanes here wait until every
        // lane of the member mask is (false: not yet, they stay); one that has exited never comes, and what the
        // shuffle returns is undefined.
        bool Shuffle(int w, ulong[] r, int at, in PtxInstruction ins, uint active)
        {
            if (active == 0) return true;
            uint members = (uint)r[ins.P * WarpSize + BitOperations.TrailingZeroCount(active)];
            for (uint m = active; m != 0; m &= m - 1)
            {
                lane = BitOperations.TrailingZeroCount(m);
                if ((uint)r[ins.P * WarpSize + lane] != members)
                    throw Fault(w, lane, at, "shfl.sync with a member mask that differs between the lanes executing it");
            }
            if ((members & active) != active)
            {
                lane = BitOperations.TrailingZeroCount(active & ~members);
                throw Fault(w, lane, at, $"shfl.sync executed by a lane outside its member mask 0x{members:x8}");
            }
            if ((members & ~live[w]) != 0)
            {
                lane = BitOperations.TrailingZeroCount(members & ~live[w]);
                throw Fault(w, lane, at, $"shfl.sync whose member mask 0x{members:x8} names lane {lane}, which has exited or is not in the block");
            }
            if ((members & ~active) != 0) return false;
            Span<ulong> values = stackalloc ulong[WarpSize];
            for (int l = 0; l < WarpSize; l++) values[l] = r[ins.A * WarpSize + l] & 0xFFFFFFFF;
            for (uint m = active; m != 0; m &= m - 1)
            {
                int l = BitOperations.TrailingZeroCount(m);
                int b = (int)(r[ins.B * WarpSize + l] & 31);
                uint c = (uint)r[ins.C * WarpSize + l];
                int clamp = (int)(c & 31), segment = (int)((c >> 8) & 31);
                int maxLane = (l & segment) | (clamp & ~segment), minLane = l & segment;
                var (j, inside) = ins.Shuffle switch
                {
                    PtxShuffle.Up => (l - b, l - b >= maxLane),
                    PtxShuffle.Down => (l + b, l + b <= maxLane),
                    PtxShuffle.Bfly => (l ^ b, (l ^ b) <= maxLane),
                    _ => (minLane | (b & ~segment), (minLane | (b & ~segment)) <= maxLane),
                };
                if (!inside) j = l;
                r[ins.D * WarpSize + l] = values[j];
            }
            return true;
        }

        // The common forms in tight loops over the active lanes; the same semantics as PtxArithmetic's general path.
        static void Fast(in PtxInstruction ins, ulong[] r, uint active)
        {
            int d = ins.D * WarpSize, a = ins.A * WarpSize, b = ins.B * WarpSize, c = ins.C * WarpSize;
            for (uint m = active; m != 0; m &= m - 1)
            {
                int l = BitOperations.TrailingZeroCount(m);
                r[d + l] = ins.Fast switch
                {
                    PtxFast.Mov32 => r[a + l] & 0xFFFFFFFF,
                    PtxFast.Mov64 => r[a + l],
                    PtxFast.AddF32 => Bits(F32(r[a + l]) + F32(r[b + l])),
                    PtxFast.SubF32 => Bits(F32(r[a + l]) - F32(r[b + l])),
                    PtxFast.MulF32 => Bits(F32(r[a + l]) * F32(r[b + l])),
                    PtxFast.FmaF32 => Bits(MathF.FusedMultiplyAdd(F32(r[a + l]), F32(r[b + l]), F32(r[c + l]))),
                    PtxFast.Add32 => (uint)r[a + l] + (uint)r[b + l],
                    PtxFast.Sub32 => (uint)r[a + l] - (uint)r[b + l],
                    PtxFast.MulLo32 => (uint)r[a + l] * (uint)r[b + l],
                    PtxFast.MadLo32 => (uint)r[a + l] * (uint)r[b + l] + (uint)r[c + l],
                    PtxFast.Add64 => r[a + l] + r[b + l],
                    PtxFast.Sub64 => r[a + l] - r[b + l],
                    PtxFast.MulLo64 => r[a + l] * r[b + l],
                    PtxFast.MadLo64 => r[a + l] * r[b + l] + r[c + l],
                    PtxFast.MulWideU32 => (ulong)(uint)r[a + l] * (uint)r[b + l],
                    PtxFast.MulWideS32 => (ulong)((long)(int)(uint)r[a + l] * (int)(uint)r[b + l]),
                    PtxFast.CvtS64S32 => (ulong)(long)(int)(uint)r[a + l],
                    PtxFast.CvtU64U32 => r[a + l] & 0xFFFFFFFF,
                    PtxFast.SetpS32 => Holds(ins.Compare, ((int)(uint)r[a + l]).CompareTo((int)(uint)r[b + l])),
                    PtxFast.SetpS64 => Holds(ins.Compare, ((long)r[a + l]).CompareTo((long)r[b + l])),
                    _ => OrderedHolds(ins.Compare, F32(r[a + l]), F32(r[b + l])),
                };
            }
        }

        static ulong Holds(PtxCompare cmp, int order) => cmp switch
        {
            PtxCompare.Eq => order == 0 ? 1UL : 0,
            PtxCompare.Ne => order != 0 ? 1UL : 0,
            PtxCompare.Lt => order < 0 ? 1UL : 0,
            PtxCompare.Le => order <= 0 ? 1UL : 0,
            PtxCompare.Gt => order > 0 ? 1UL : 0,
            _ => order >= 0 ? 1UL : 0,
        };

        // The ordered comparisons: false when either is NaN.
        static ulong OrderedHolds(PtxCompare cmp, float x, float y) => float.IsNaN(x) || float.IsNaN(y) ? 0 : Holds(cmp, x < y ? -1 : x > y ? 1 : 0);

        // Where this thread's PTX computes what .NET would not (see LaunchCounters.Hazards).
        static string? Hazard(in PtxInstruction ins, ulong a, ulong b)
        {
            if (ins.DenormalConstant) return "a denormal float constant (ILGPU converts a bool to float as its bit pattern: 1 becomes 1.4e-45)";
            var t = ins.Type;
            return ins.Op switch
            {
                PtxOp.CopySign => "copysign takes the sign from its first operand (ILGPU passes .NET's CopySign(x, y) as copysign x, y)",
                PtxOp.Min or PtxOp.Max when t.IsFloat && (t.Bits == 32 ? float.IsNaN(F32(a)) || float.IsNaN(F32(b)) : double.IsNaN(F64(a)) || double.IsNaN(F64(b))) =>
                    $"{(ins.Op == PtxOp.Min ? "min" : "max")}.{t} of a NaN returns the other operand (.NET returns NaN)",
                PtxOp.Shr when t.Kind == PtxKind.Signed && SignExtend(a & Mask(t.Bits), t.Bits) < 0 =>
                    $"shr.{t} of a negative value rounds toward -infinity (ILGPU's form of a signed division by a power of two; .NET truncates toward zero)",
                _ => null,
            };
        }

        static void Advance(int[] pc, uint lanes, int to)
        {
            for (uint m = lanes; m != 0; m &= m - 1) pc[BitOperations.TrailingZeroCount(m)] = to;
        }

        // ld/st/atom/red in the parameter, shared or global space, with the global bounds checked per buffer.
        void Memory(int w, ulong[] r, int at, ref PtxInstruction ins, uint active)
        {
            int size = ins.Type.Bytes;
            if (ins.Space == PtxSpace.Param)
            {
                for (uint m = active; m != 0; m &= m - 1)
                {
                    lane = BitOperations.TrailingZeroCount(m);
                    long offset = ins.Offset + (ins.A >= 0 ? (long)r[ins.A * WarpSize + lane] : 0);
                    if (offset < 0 || offset + size > param.Length) throw Fault(w, lane, at, $"ld.param at offset {offset}, outside the {param.Length} bytes of parameters");
                    r[ins.D * WarpSize + lane] = Extend(Read(ref param[offset], size), ins.Type);
                }
                return;
            }
            bool global = ins.Space == PtxSpace.Global;
            int touched = 0;
            for (uint m = active; m != 0; m &= m - 1)
            {
                lane = BitOperations.TrailingZeroCount(m);
                ulong address = (ins.A >= 0 ? r[ins.A * WarpSize + lane] : 0) + (ulong)ins.Offset;
                ref byte cell = ref global ? ref Global(w, lane, at, ins, address, size) : ref Shared(w, lane, at, ins, address, size);
                if (global)
                {
                    sectors[touched++] = address >> 5;
                    if ((address + (ulong)size - 1) >> 5 != address >> 5) sectors[touched++] = (address + (ulong)size - 1) >> 5;
                    if (ins.Op != PtxOp.St)
                    {
                        loads[w][lane]++;
                        ref ulong last = ref lastLine[w][loadStream[at] * WarpSize + lane];
                        if (address >> 7 != last) (last, newLines[w][lane]) = (address >> 7, newLines[w][lane] + 1);
                    }
                }
                bool write = !(global && readOnly);
                switch (ins.Op)
                {
                    case PtxOp.Ld:
                        r[ins.D * WarpSize + lane] = Extend(Read(ref cell, size), ins.Type);
                        break;
                    case PtxOp.St:
                        if (write) Write(ref cell, size, r[ins.B * WarpSize + lane]);
                        break;
                    default:
                        ulong old = Extend(Read(ref cell, size), ins.Type);
                        if (write) Write(ref cell, size, Atomic(ins, old, r[ins.B * WarpSize + lane], ins.C >= 0 ? r[ins.C * WarpSize + lane] : 0));
                        if (ins.Op == PtxOp.Atom) r[ins.D * WarpSize + lane] = old;
                        break;
                }
            }
            int lanes = BitOperations.PopCount(active);
            if (global)
            {
                if (lanes == 0) return;
                Counters.GlobalAccesses += ins.Op == PtxOp.Atom ? 2 : 1;
                Counters.GlobalBytes += (long)lanes * size;
                Counters.GlobalSectors += Distinct(sectors.AsSpan(0, touched));
            }
            else Counters.SharedBytes += (long)lanes * size;
        }

        static int Distinct(Span<ulong> values)
        {
            bool sorted = true;
            for (int i = 1; i < values.Length && sorted; i++) sorted = values[i] >= values[i - 1];
            if (!sorted) values.Sort();
            int n = values.Length == 0 ? 0 : 1;
            for (int i = 1; i < values.Length; i++) if (values[i] != values[i - 1]) n++;
            return n;
        }

        ref byte Global(int w, int lane, int at, in PtxInstruction ins, ulong address, int size)
        {
            // The last region starting at or before the address must hold the whole access; the last one hit first.
            var last = regions.Length > 0 ? regions[lastRegion] : default;
            if (address >= last.Start && address + (ulong)size <= last.Start + (ulong)last.Bytes) return ref *(byte*)address;
            int lo = 0, hi = regions.Length - 1, found = -1;
            while (lo <= hi)
            {
                int mid = (lo + hi) >> 1;
                if (regions[mid].Start <= address) { found = mid; lo = mid + 1; }
                else hi = mid - 1;
            }
            if (found >= 0 && address + (ulong)size <= regions[found].Start + (ulong)regions[found].Bytes)
            {
                lastRegion = found;
                return ref *(byte*)address;
            }
            string near = found >= 0
                ? $"{address - regions[found].Start} bytes into {regions[found].Name}, which holds {regions[found].Bytes}"
                : regions.Length > 0 ? $"{regions[0].Start - address} bytes before {regions[0].Name}" : "the launch has no buffers";
            string verb = ins.Op == PtxOp.St ? "store" : ins.Op == PtxOp.Ld ? "load" : "atomic";
            throw Fault(w, lane, at, $"global {verb} of {size} bytes at 0x{address:X} outside every buffer of the launch ({near})");
        }

        ref byte Shared(int w, int lane, int at, in PtxInstruction ins, ulong address, int size)
        {
            if (address + (ulong)size > (ulong)shared.Length || address > (ulong)shared.Length)
                throw Fault(w, lane, at, $"shared access of {size} bytes at offset {address}, outside the block's {shared.Length} bytes");
            return ref shared[address];
        }

        static ulong Read(ref byte cell, int size) => size switch
        {
            1 => cell,
            2 => System.Runtime.CompilerServices.Unsafe.ReadUnaligned<ushort>(ref cell),
            4 => System.Runtime.CompilerServices.Unsafe.ReadUnaligned<uint>(ref cell),
            _ => System.Runtime.CompilerServices.Unsafe.ReadUnaligned<ulong>(ref cell),
        };

        static void Write(ref byte cell, int size, ulong value)
        {
            switch (size)
            {
                case 1: cell = (byte)value; break;
                case 2: System.Runtime.CompilerServices.Unsafe.WriteUnaligned(ref cell, (ushort)value); break;
                case 4: System.Runtime.CompilerServices.Unsafe.WriteUnaligned(ref cell, (uint)value); break;
                default: System.Runtime.CompilerServices.Unsafe.WriteUnaligned(ref cell, value); break;
            }
        }

        // A signed narrow load fills the register with its sign (§9.7.9.8); others are zero-extended.
        static ulong Extend(ulong raw, PtxType t) => t.Kind == PtxKind.Signed && t.Bits < 64 ? (ulong)SignExtend(raw, t.Bits) & (t.Bits < 32 ? 0xFFFFFFFF : ulong.MaxValue) : raw;

        // atom/red (§9.7.13.5): the lanes of a warp take turns in lane order, each seeing the last one's result.
        static ulong Atomic(in PtxInstruction ins, ulong old, ulong b, ulong c)
        {
            var t = ins.Type;
            return ins.Atomic switch
            {
                PtxAtomic.Exch => b,
                PtxAtomic.Cas => (old & Mask(t.Bits)) == (b & Mask(t.Bits)) ? c : old, // §9.7.13.5: compare with b, store c
                PtxAtomic.Add when t.IsFloat => t.Bits == 32 ? PtxArithmetic.Bits(F32(old) + F32(b)) : PtxArithmetic.Bits(F64(old) + F64(b)),
                PtxAtomic.Add => (old + b) & Mask(t.Bits),
                PtxAtomic.Min or PtxAtomic.Max when !t.IsFloat =>
                    Evaluate(ins with { Op = ins.Atomic == PtxAtomic.Min ? PtxOp.Min : PtxOp.Max }, old, b, 0),
                _ => throw new Undefined($"not implemented: atom.{ins.Atomic.ToString().ToLowerInvariant()} on .{t}"),
            };
        }
    }
}
