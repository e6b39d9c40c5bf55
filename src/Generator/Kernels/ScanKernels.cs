using System.Linq;
using GateLoop.Generator.Emit;
using GateLoop.Generator.Model;

namespace GateLoop.Generator.Kernels
{
    /// <summary>
    /// The gate-loop scan S_t = a_t·S_{t−1} + k_t·v_tᵀ (complex, starting from a carried state), o_t = q_tᵀ·Re(S_t),
    /// and its reverse scan Ĝ_t = q_t·dO_tᵀ + conj(a_{t+1})·Ĝ_{t+1}. With one channel per head (max heads) the state
    /// is a complex scalar and a thread owns a channel for the whole sequence; with P×P heads a thread owns one
    /// state element, and separate kernels reduce over the head.
    /// Layouts: qkv [rows, 3·DimInner] (q | k | v), a [rows, Heads, 2], states and Ĝ [rows, Heads, P, P, 2],
    /// carry [batch, Heads, P, P, 2]. With AblateStateTransition, a = 1: the kernels take no transition buffer and
    /// the state stays real.
    /// </summary>
    internal static class ScanKernels
    {
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

        public static string Emit(TransformerSpec spec, Numeric n) =>
            string.Join("\n\n", spec.MaxHeads ? new[] { ChannelsForward(spec, n).Kernel, ChannelsBackward(spec, n).Kernel } : new[] { Heads(spec, n) });

        /// <summary>The host range entries of the lane scans (the P×P heads' reductions get generated twins).</summary>
        public static string HostEntries(TransformerSpec spec, Numeric n) =>
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
            "carry[2 * (long)index.X] = sr;\ncarry[2 * (long)index.X + 1] = si;");

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
                dQkv[q] = states[s] * dout;
                dQkv[q + DimInner] = gr * qkv[q + 2 * DimInner];
                dQkv[q + 2 * DimInner] = gr * qkv[q + DimInner];{{(ablated ? "" : $$"""

                {{T}} pr = t > 0 ? states[s - 2 * DimInner] : 0, pi = t > 0 ? states[s - 2 * DimInner + 1] : 0;
                da[ai] = pr * gr + pi * gi;
                da[ai + 1] = pr * gi - pi * gr;
                nar = a[ai];
                nai = a[ai + 1];
                """)}}
                """, "");
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
