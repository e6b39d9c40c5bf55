using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Model;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// The gate-loop scan S_t = a_t·S_{t−1} + k_t·v_tᵀ (complex, starting from a carried state), o_t = q_tᵀ·Re(S_t),
    /// and its reverse scan Ĝ_t = q_t·dO_tᵀ + conj(a_{t+1})·Ĝ_{t+1}. With one channel per head (max heads) the state
    /// is a complex scalar and a thread owns a channel for the whole sequence (on a GPU, in chunks when the lanes are
    /// too few); with P×P heads a thread owns one state element, and separate kernels reduce over the head.
    /// Layouts: qkv [rows, 3·DimInner] (q | k | v), a [rows, Heads, 2], states and Ĝ [rows, Heads, P, P, 2],
    /// carry [batch, Heads, P, P, 2]. With AblateStateTransition, a = 1: the kernels take no transition buffer and
    /// the state stays real. Generation continues each layer's carried state; every other pass starts from zero, and
    /// with CheckpointGateLoopedAttn backward recomputes a layer's states instead of keeping them.
    /// </summary>
    internal sealed class GateLoopScan : Op
    {
        readonly TransformerSpec spec;
        readonly Value qkv, output;
        readonly Value? transition;

        /// <param name="transition">The state transitions a; null when they are ablated (a = 1).</param>
        public GateLoopScan(TransformerSpec spec, Value qkv, Value? transition, Value output)
        {
            this.spec = spec;
            this.qkv = qkv;
            this.transition = transition;
            this.output = output;
            states = Value.Stored(spec.CheckpointGateLoopedAttn
                ? new Buffer("StateScratch", null, $"rows * {StateRow}", "scan states of one layer, recomputed in backward")
                : new Buffer("States", "Depth", $"rows * {StateRow}", "scan states of every layer"));
            // The carried state has one row per sequence, not per token.
            planCarry = Value.Stored(new Buffer("Carry", "Depth", $"batch * {StateRow}", "scan state per sequence for passes that start from zero"));
            carried = new Value("carried[l]", $"batch * {StateRow}");
            carry = new Value("carry", $"batch * {StateRow}");
            aggregates = Value.Gradient(ChunkedScans.Aggregates("DimInner", 4));
            gradStates = Value.Gradient(new Buffer("GradStates", null, $"rows * {StateRow}", "reverse-scan states Ĝ of one layer", BufferUse.Gradient));
        }

        string StateRow => spec.MaxHeads ? "2 * DimInner" : "2 * DimInner * HeadDim";

        readonly Value states, carry, carried, planCarry, aggregates, gradStates;

        // The kernels take the transitions (and write their gradient) only when there are any.
        Arg[] Transition => transition is null ? new Arg[0] : new Arg[] { transition };

        Arg[] TransitionGrad => transition is null ? new Arg[0] : new Arg[] { transition.Grad! };

        Arg[] Args(params object[] parts) => parts.SelectMany(p => p switch { Arg[] many => many, Value v => new Arg[] { v }, _ => new Arg[] { (string)p } }).ToArray();

        public override IEnumerable<Value> Outputs => new[] { output };

        public override IEnumerable<Buffer> Buffers
        {
            get
            {
                yield return planCarry.Storage!;
                yield return states.Storage!;
                if (spec.MaxHeads) yield return aggregates.Storage!;
                foreach (var b in base.Buffers) yield return b;
                if (!spec.MaxHeads) yield return gradStates.Storage!;
            }
        }

        public override IEnumerable<KernelSource> Members(Numeric n)
        {
            if (spec.MaxHeads) yield return ChunkedScans.Members("DimInner");
            yield return new KernelSource("CarriedState", $$"""
                ArrayView<{{n.Type}}>[] carried = []; // each layer's scan state per sequence, carried while generating

                /// <inheritdoc />
                protected override void PlanState({{Numeric.Runtime}}Workspace workspace, int batch)
                {
                    carried = new ArrayView<{{n.Type}}>[Depth];
                    for (int l = 0; l < Depth; l++) carried[l] = workspace.Take<{{n.Type}}>(batch * {{StateRow}});
                }

                /// <inheritdoc />
                protected override void ResetCarry() { foreach (var c in carried) c.MemSetToZero(); }
                """);
        }

        // Generation continues the carried state; every other pass starts from zero.
        public override void Forward(Schedule s)
        {
            s.Select(carry, "continueState", carried, planCarry);
            s.Clear(carry, unless: "continueState");
            ForwardCalls(s, carry);
            if (!spec.MaxHeads) s.Launch("ScanOutputForward", "R * DimInner", qkv, states, output);
        }

        void ForwardCalls(Schedule s, Value carry)
        {
            if (spec.MaxHeads)
                s.Choose("Chunked", c => c
                    .Launch("ChunkScanForward", "Batch * Chunks * DimInner", Args("Seq", qkv, Transition, states, aggregates))
                    .Launch("ChunkCarryForward", "Batch * DimInner", "Seq", aggregates, carry)
                    .Launch("ChunkApplyForward", "Batch * Chunks * DimInner", Args("Seq", qkv, Transition, output, states, aggregates)),
                    plain => plain.Launch("ScanForward", "Batch * DimInner", Args("Seq", qkv, Transition, output, states, carry)));
            else
                s.Launch("ScanStatesForward", "Batch * Heads * HeadDim * HeadDim", Args("Seq", qkv, Transition, states, carry));
        }

        public override void Backward(Schedule s)
        {
            if (spec.CheckpointGateLoopedAttn)
            {
                s.Comment("Checkpointed: recompute this layer's states (from a zero state) instead of having stored them.");
                s.Clear(planCarry);
                ForwardCalls(s, planCarry);
            }
            var dScan = output.Grad!;
            if (spec.MaxHeads)
                s.Choose("Chunked", c => c
                    .Launch("ChunkScanBackward", "Batch * Chunks * DimInner", Args("Seq", qkv, Transition, dScan, qkv.Grad!, TransitionGrad, aggregates))
                    .Launch("ChunkCarryBackward", "Batch * DimInner", "Seq", aggregates)
                    .Launch("ChunkApplyBackward", "Batch * Chunks * DimInner", Args("Seq", qkv, Transition, states, dScan, qkv.Grad!, TransitionGrad, aggregates)),
                    plain => plain.Launch("ScanBackward", "Batch * DimInner", Args("Seq", qkv, Transition, states, dScan, qkv.Grad!, TransitionGrad)));
            else
            {
                s.Launch("ScanStatesBackward", "Batch * Heads * HeadDim * HeadDim", Args("Seq", qkv, Transition, dScan, gradStates));
                s.Launch("ScanInputsBackward", "R * Heads", Args("Seq", qkv, states, gradStates, dScan, qkv.Grad!, TransitionGrad));
            }
        }

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            if (spec.MaxHeads) yield return ChunkedScans.Length(32);
            yield return new KernelSource("GateLoopScan", Emit(spec, n), HostEntries(spec, n));
        }

        static string AParam(TransformerSpec spec, Numeric n) => spec.AblateStateTransition ? "" : $" ArrayView<{n.Type}> a,";

        static string DaParam(TransformerSpec spec, Numeric n) => spec.AblateStateTransition ? "" : $", ArrayView<{n.Type}> da";

        // S ← a·S + kv for the transition at a[ai].
        static string Step(TransformerSpec spec, string aIndex, string kv) => spec.AblateStateTransition
            ? $"sr += {kv};"
            : $$"""
                long ai = {{aIndex}};
                var ar = a[ai];
                var aim = a[ai + 1];
                var nr = ar * sr - aim * si + {{kv}};
                si = ar * si + aim * sr;
                sr = nr;
                """;

        // Ĝ ← q·dO + conj(a_next)·Ĝ, then a_next ← a_t.
        static string BackStep(TransformerSpec spec, string qdo, string aIndex) => spec.AblateStateTransition
            ? $"gr += {qdo};"
            : $$"""
                var ngr = {{qdo}} + nar * gr + nai * gi;
                gi = nar * gi - nai * gr;
                gr = ngr;
                long ai = {{aIndex}};
                """;

        static string Emit(TransformerSpec spec, Numeric n) =>
            string.Join("\n\n", spec.MaxHeads ? new[] { ChannelsForward(spec, n).Kernel, ChannelsBackward(spec, n).Kernel, ChunkedChannels(spec, n) } : new[] { Heads(spec, n) });

        /// <summary>The host range entries of the lane scans (the P×P heads' reductions get generated twins).</summary>
        static string HostEntries(TransformerSpec spec, Numeric n) =>
            string.Join("\n\n", (spec.MaxHeads
                ? new[] { ChannelsForward(spec, n), ChannelsBackward(spec, n) }
                : new[] { StatesForward(spec, n), StatesBackward(spec, n) }).Select(scan => scan.HostEntry));

        // The reverse scan's running values: Ĝ, and the transition of the step after.
        static string[] BackState(TransformerSpec spec) =>
            spec.AblateStateTransition ? new[] { "gr" } : new[] { "gr", "gi", "nar", "nai" };

        static string BackInit(TransformerSpec spec, Numeric n) => $"{n.Type} {string.Join(", ", BackState(spec).Select(v => v + " = 0"))};";

        static LaneScan ChannelsForward(TransformerSpec spec, Numeric n) => new LaneScan(n, "ScanForward", """
            /// <summary>
            /// One thread per (batch, channel) runs the whole sequence from the state in carry [batch, DimInner, 2] and
            /// leaves the final state there (zero it to start a sequence; keep it to continue one token at a time).
            /// Every S_t is stored for the reverse scan.
            /// </summary>
            """,
            $"ArrayView<{n.Type}> qkv,{AParam(spec, n)} ArrayView<{n.Type}> o, ArrayView<{n.Type}> states, ArrayView<{n.Type}> carry",
            "DimInner", new[] { "sr", "si" },
            $"{n.Type} sr = carry[2 * (long)index.X], si = carry[2 * (long)index.X + 1];",
            reverse: false, $$"""
            long row = (long)b * seq + t, q = row * (3 * DimInner) + c;
            {{Step(spec, "(row * Heads + c) * 2", "qkv[q + DimInner] * qkv[q + 2 * DimInner]")}}
            o[row * DimInner + c] = qkv[q] * sr;
            long s = (row * DimInner + c) * 2;
            states[s] = sr;
            states[s + 1] = si;
            """,
            "carry[2 * (long)index.X] = sr;\ncarry[2 * (long)index.X + 1] = si;", Simd(spec, n, "ChannelScanForward"));

        // The complex float scans also run 8 channels per SIMD register on the host, when rows hold whole groups of 8.
        static string? Simd(TransformerSpec spec, Numeric n, string method) =>
            spec.AblateStateTransition || n.IsDouble || spec.DimInner % 8 != 0 ? null : Numeric.Runtime + "HostSimd." + method;

        static LaneScan ChannelsBackward(TransformerSpec spec, Numeric n)
        {
            string T = n.Type;
            bool ablated = spec.AblateStateTransition;
            return new LaneScan(n, "ScanBackward", $$"""
                /// <summary>
                /// Reverse scan per (batch, channel), for sequences that started from a zero state: dq = Re(S_t)·dO,
                /// dk = Re(Ĝ_t)·v, dv = Re(Ĝ_t)·k{{(ablated ? "" : ", da_t = conj(S_{t−1})·Ĝ_t")}}.
                /// </summary>
                """,
                $"ArrayView<{T}> qkv,{AParam(spec, n)} ArrayView<{T}> states, ArrayView<{T}> dO, ArrayView<{T}> dQkv{DaParam(spec, n)}",
                "DimInner", BackState(spec), BackInit(spec, n), reverse: true, $$"""
                long row = (long)b * seq + t, q = row * (3 * DimInner) + c, s = (row * DimInner + c) * 2;
                {{T}} dout = dO[row * DimInner + c];
                {{BackStep(spec, "qkv[q] * dout", "(row * Heads + c) * 2")}}
                {{ChannelGradients(spec, n)}}{{(ablated ? "" : "\nnar = a[ai];\nnai = a[ai + 1];")}}
                """, "", Simd(spec, n, "ChannelScanBackward"));
        }

        // A channel's gradients at one reverse step, from Ĝ_t (gr, gi), S_t at s and the transition at ai.
        static string ChannelGradients(TransformerSpec spec, Numeric n) => $$"""
            dQkv[q] = states[s] * dout;
            dQkv[q + DimInner] = gr * qkv[q + 2 * DimInner];
            dQkv[q + 2 * DimInner] = gr * qkv[q + DimInner];{{(spec.AblateStateTransition ? "" : $$"""

            {{n.Type}} pr = t > 0 ? states[s - 2 * DimInner] : 0, pi = t > 0 ? states[s - 2 * DimInner + 1] : 0;
            da[ai] = pr * gr + pi * gi;
            da[ai + 1] = pr * gi - pi * gr;
            """)}}
            """;

        /// <summary>
        /// The max-heads scans split into chunks of Chunk positions, for a GPU when batch·DimInner lanes are too few
        /// to fill it: each (batch, chunk, channel) scans its chunk from zero (forward: local S_t into states;
        /// reverse: local Ĝ_t into da, or dq when ablated), leaving the chunk's aggregate in agg [batch, chunks, DimInner, 4]; one
        /// thread per lane carries the state across the chunks; then each chunk adds its carried-in part:
        /// S_t += (Π_{r≤t} a_r)·S_in and Ĝ_t += (Π_{r=t+1…end} conj a_r)·Ĝ_in, products over the chunk.
        /// </summary>
        static string ChunkedChannels(TransformerSpec spec, Numeric n)
        {
            string T = n.Type, a = AParam(spec, n);
            bool ablated = spec.AblateStateTransition;
            // The transition at row (an ablated model's is 1), and the one of the first step after the chunk.
            string loadA = ablated ? $"{T} ar = 1, aim = 0;" : $"long ai = (row * Heads + c) * 2;\n{T} ar = a[ai], aim = a[ai + 1];";
            string nextA = ablated ? "nar = 1;" : "long ai = ((long)b * seq + t1) * Heads * 2 + 2 * c;\nnar = a[ai];\nnai = a[ai + 1];";
            string ifNext = $"if (t1 < seq)\n{{\n{CodeWriter.Indent(nextA, 4).Insert(0, "    ")}\n}}";
            // Where the reverse pass keeps a step's local Ĝ until the carry is known: da (complex), or dq (real).
            string keepRe = ablated ? "dQkv[q]" : "da[keep]", keepIm = ablated ? "0" : "da[keep + 1]";
            string qkv = $"ArrayView<{T}> qkv,{a}", agg = $"ArrayView<{T}> agg";
            string aggregate(string re, string im, string pre, string pim) =>
                $"long g = 4 * (long)index.X;\nagg[g] = {re};\nagg[g + 1] = {im};\nagg[g + 2] = {pre};\nagg[g + 3] = {pim};";
            return string.Join("\n\n",
                ChunkScan.Chunk("/// <summary>Per (batch, chunk, channel): the chunk's scan from S = 0, local S_t into states; agg = (its last S, Π a).</summary>",
                    "ChunkScanForward", $"{qkv} ArrayView<{T}> states, {agg}", "DimInner", $"{T} sr = 0, si = 0, pr = 1, pi = 0;", false, $$"""
                    long row = (long)b * seq + t, q = row * (3 * DimInner) + c, s = (row * DimInner + c) * 2;
                    {{loadA}}
                    {{T}} nr = ar * sr - aim * si + qkv[q + DimInner] * qkv[q + 2 * DimInner];
                    si = ar * si + aim * sr;
                    sr = nr;
                    nr = ar * pr - aim * pi;
                    pi = ar * pi + aim * pr;
                    pr = nr;
                    states[s] = sr;
                    states[s + 1] = si;
                    """, aggregate("sr", "si", "pr", "pi")),
                ChunkScan.Carry("""
                    /// <summary>
                    /// Per (batch, channel): carries S from carry across the chunks, leaving each chunk's incoming S in agg
                    /// and the final state in carry, as ScanForward does.
                    /// </summary>
                    """, "ChunkCarryForward", $"{agg}, ArrayView<{T}> carry", "DimInner", 4, "g",
                    $"{T} sr = carry[2 * (long)index.X], si = carry[2 * (long)index.X + 1];", false, $$"""
                    {{T}} lr = agg[g], li = agg[g + 1], pr = agg[g + 2], pi = agg[g + 3];
                    agg[g] = sr;
                    agg[g + 1] = si;
                    {{T}} nr = pr * sr - pi * si + lr;
                    si = pr * si + pi * sr + li;
                    sr = nr;
                    """, "carry[2 * (long)index.X] = sr;\ncarry[2 * (long)index.X + 1] = si;"),
                ChunkScan.Chunk("/// <summary>Per (batch, chunk, channel): S_t += (Π_{r≤t} a_r)·S_in in states, then o_t = q_t·Re S_t.</summary>",
                    "ChunkApplyForward", $"{qkv} ArrayView<{T}> o, ArrayView<{T}> states, {agg}", "DimInner",
                    $"{T} inr = agg[4 * (long)index.X], ini = agg[4 * (long)index.X + 1], pr = 1, pi = 0;", false, $$"""
                    long row = (long)b * seq + t, q = row * (3 * DimInner) + c, s = (row * DimInner + c) * 2;
                    {{loadA}}
                    {{T}} nr = ar * pr - aim * pi;
                    pi = ar * pi + aim * pr;
                    pr = nr;
                    {{T}} sr = states[s] + pr * inr - pi * ini;
                    states[s + 1] += pr * ini + pi * inr;
                    states[s] = sr;
                    o[row * DimInner + c] = qkv[q] * sr;
                    """, ""),
                ChunkScan.Chunk($$"""
                    /// <summary>
                    /// Per (batch, chunk, channel): the chunk's reverse scan from Ĝ = 0 past its end, local Ĝ_t kept in
                    /// {{(ablated ? "dq" : "da")}}; agg = (Ĝ at the chunk's first step, Π conj a from its second step to the first step after it).
                    /// </summary>
                    """, "ChunkScanBackward", $"{qkv} ArrayView<{T}> dO, ArrayView<{T}> dQkv{DaParam(spec, n)}, {agg}", "DimInner",
                    $"{T} gr = 0, gi = 0, nar = 0, nai = 0;\n{ifNext}\n{T} fr = nar, fi = -nai;", true, $$"""
                    long row = (long)b * seq + t, q = row * (3 * DimInner) + c, keep = (row * DimInner + c) * 2;
                    {{T}} ngr = qkv[q] * dO[row * DimInner + c] + nar * gr + nai * gi;
                    gi = nar * gi - nai * gr;
                    gr = ngr;
                    {{keepRe}} = gr;{{(ablated ? "" : $"\n{keepIm} = gi;")}}
                    {{loadA}}
                    nar = ar;
                    nai = aim;
                    if (t > t0)
                    {
                        {{T}} nf = fr * ar + fi * aim;
                        fi = fi * ar - fr * aim;
                        fr = nf;
                    }
                    """, aggregate("gr", "gi", "fr", "fi")),
                ChunkScan.Carry("/// <summary>Per (batch, channel): carries Ĝ from past the end back across the chunks, leaving each chunk's incoming Ĝ in agg.</summary>",
                    "ChunkCarryBackward", agg, "DimInner", 4, "g", $"{T} gr = 0, gi = 0;", true, $$"""
                    {{T}} lr = agg[g], li = agg[g + 1], fr = agg[g + 2], fi = agg[g + 3];
                    agg[g] = gr;
                    agg[g + 1] = gi;
                    {{T}} nr = fr * gr - fi * gi + lr;
                    gi = fr * gi + fi * gr + li;
                    gr = nr;
                    """, ""),
                ChunkScan.Chunk($$"""
                    /// <summary>
                    /// Per (batch, chunk, channel): Ĝ_t += (Π_{r=t+1…end} conj a_r)·Ĝ_in, then ScanBackward's gradients:
                    /// dq = Re(S_t)·dO, dk = Re(Ĝ_t)·v, dv = Re(Ĝ_t)·k{{(ablated ? "" : ", da_t = conj(S_{t−1})·Ĝ_t")}}.
                    /// </summary>
                    """, "ChunkApplyBackward", $"{qkv} ArrayView<{T}> states, ArrayView<{T}> dO, ArrayView<{T}> dQkv{DaParam(spec, n)}, {agg}", "DimInner",
                    $"{T} inr = agg[4 * (long)index.X], ini = agg[4 * (long)index.X + 1], nar = 0, nai = 0;\n{ifNext}\n{T} fr = nar, fi = -nai;", true, $$"""
                    long row = (long)b * seq + t, q = row * (3 * DimInner) + c, s = (row * DimInner + c) * 2, keep = s;
                    {{T}} gr = {{keepRe}} + fr * inr - fi * ini, gi = {{keepIm}} + fr * ini + fi * inr;
                    {{loadA}}
                    {{T}} nf = fr * ar + fi * aim;
                    fi = fi * ar - fr * aim;
                    fr = nf;
                    {{T}} dout = dO[row * DimInner + c];
                    {{ChannelGradients(spec, n)}}
                    """, ""));
        }

        // A P×P head's state element (d, e) of head h is lane c = (h·P + d)·P + e of its batch row.
        const string StateLane = "int e = c % HeadDim, d = c / HeadDim % HeadDim, h = c / (HeadDim * HeadDim);";

        static LaneScan StatesForward(TransformerSpec spec, Numeric n) => new LaneScan(n, "ScanStatesForward", """
            /// <summary>
            /// One thread per (batch, head, d, e) state element runs the whole sequence from the state in carry
            /// [batch, Heads, P, P, 2], storing every S_t and leaving the final state in carry.
            /// </summary>
            """,
            $"ArrayView<{n.Type}> qkv,{AParam(spec, n)} ArrayView<{n.Type}> states, ArrayView<{n.Type}> carry",
            "(Heads * HeadDim * HeadDim)", new[] { "sr", "si" },
            $"{n.Type} sr = carry[2 * (long)index.X], si = carry[2 * (long)index.X + 1];",
            reverse: false, $$"""
            {{StateLane}}
            long row = (long)b * seq + t, q = row * (3 * DimInner) + h * HeadDim;
            {{Step(spec, "(row * Heads + h) * 2", "qkv[q + DimInner + d] * qkv[q + 2 * DimInner + e]")}}
            long s = row * StateRow + ((h * HeadDim + d) * HeadDim + e) * 2;
            states[s] = sr;
            states[s + 1] = si;
            """,
            "carry[2 * (long)index.X] = sr;\ncarry[2 * (long)index.X + 1] = si;");

        static LaneScan StatesBackward(TransformerSpec spec, Numeric n) => new LaneScan(n, "ScanStatesBackward", """
            /// <summary>
            /// Reverse scan per state element (the sequence started from a zero state):
            /// Ĝ_t[d, e] = q_t[d]·dO_t[e] + conj(a_{t+1})·Ĝ_{t+1}[d, e], stored for the reductions.
            /// </summary>
            """,
            $"ArrayView<{n.Type}> qkv,{AParam(spec, n)} ArrayView<{n.Type}> dO, ArrayView<{n.Type}> grads",
            "(Heads * HeadDim * HeadDim)", spec.AblateStateTransition ? new[] { "gr", "gi" } : BackState(spec),
            spec.AblateStateTransition ? $"{n.Type} gr = 0, gi = 0;" : BackInit(spec, n),
            reverse: true, $$"""
            {{StateLane}}
            long row = (long)b * seq + t, q = row * (3 * DimInner) + h * HeadDim;
            {{BackStep(spec, "qkv[q + d] * dO[row * DimInner + h * HeadDim + e]", "(row * Heads + h) * 2")}}{{(spec.AblateStateTransition ? "" : "\nnar = a[ai];\nnai = a[ai + 1];")}}
            long s = row * StateRow + ((h * HeadDim + d) * HeadDim + e) * 2;
            grads[s] = gr;
            grads[s + 1] = gi;
            """, "");

        static string Heads(TransformerSpec spec, Numeric n)
        {
            string T = n.Type;
            bool ablated = spec.AblateStateTransition;
            string transitionGrad = ablated ? "" : $$"""

                {{T}} dar = 0, dai = 0;
                if (row % seq != 0)
                    for (int j = 0; j < HeadDim * HeadDim; j++)
                    {
                        {{T}} pr = states[s0 - StateRow + 2 * j], pi = states[s0 - StateRow + 2 * j + 1];
                        dar += pr * grads[s0 + 2 * j] + pi * grads[s0 + 2 * j + 1];
                        dai += pr * grads[s0 + 2 * j + 1] - pi * grads[s0 + 2 * j];
                    }
                da[(row * Heads + h) * 2] = dar;
                da[(row * Heads + h) * 2 + 1] = dai;
                """;
            return $$"""
                // Complex values per row of the state buffer: Heads·P·P pairs.
                const long StateRow = 2L * Heads * HeadDim * HeadDim;

                {{StatesForward(spec, n).Kernel}}

                /// <summary>o[row, h·P + e] = Σ_d q[d]·Re S[d, e]; one thread per output element.</summary>
                public static void ScanOutputForward(Index1D index, ArrayView<{{T}}> qkv, ArrayView<{{T}}> states, ArrayView<{{T}}> o)
                {
                    long row = index.X / DimInner;
                    int j = index.X % DimInner, h = j / HeadDim, e = j % HeadDim;
                    long q = row * (3 * DimInner) + h * HeadDim, s = row * StateRow + (long)h * HeadDim * HeadDim * 2 + 2 * e;
                    {{T}} sum = 0;
                    for (int d = 0; d < HeadDim; d++) sum += qkv[q + d] * states[s + 2 * d * HeadDim];
                    o[row * DimInner + j] = sum;
                }

                {{StatesBackward(spec, n).Kernel}}

                /// <summary>
                /// Per (row, head): dq[d] = Σ_e Re S[d, e]·dO[e], dk[d] = Σ_e Re Ĝ[d, e]·v[e],
                /// dv[e] = Σ_d Re Ĝ[d, e]·k[d]{{(ablated ? "" : ", da = Σ conj(S_{t−1})·Ĝ_t")}}.
                /// </summary>
                public static void ScanInputsBackward(Index1D index, int seq, ArrayView<{{T}}> qkv, ArrayView<{{T}}> states, ArrayView<{{T}}> grads, ArrayView<{{T}}> dO, ArrayView<{{T}}> dQkv{{DaParam(spec, n)}})
                {
                    long row = index.X / Heads;
                    int h = index.X % Heads;
                    long q = row * (3 * DimInner) + h * HeadDim, s0 = row * StateRow + (long)h * HeadDim * HeadDim * 2;
                    long o = row * DimInner + h * HeadDim;
                    for (int d = 0; d < HeadDim; d++)
                    {
                        {{T}} dq = 0, dk = 0;
                        for (int e = 0; e < HeadDim; e++)
                        {
                            long s = s0 + (d * HeadDim + e) * 2;
                            dq += states[s] * dO[o + e];
                            dk += grads[s] * qkv[q + 2 * DimInner + e];
                        }
                        dQkv[q + d] = dq;
                        dQkv[q + DimInner + d] = dk;
                    }
                    for (int e = 0; e < HeadDim; e++)
                    {
                        {{T}} dv = 0;
                        for (int d = 0; d < HeadDim; d++) dv += grads[s0 + (d * HeadDim + e) * 2] * qkv[q + DimInner + d];
                        dQkv[q + 2 * DimInner + e] = dv;
                    }{{CodeWriter.Indent(transitionGrad, 4)}}
                }
                """;
        }
    }
}
