using GateLoop.Generator.Emit;
using GateLoop.Generator.Model;

namespace GateLoop.Generator.Kernels
{
    /// <summary>
    /// The SimpleGateLoop scan, one real state per channel: a_t = σ(gate logit), S_t = a_t·S_{t−1} + kv_t,
    /// o_t = q_t·S_t, and its reverse scan Ĝ_t = dO_t·q_t + a_{t+1}·Ĝ_{t+1}. One thread owns a (batch, channel) pair
    /// for the whole sequence (a <see cref="LaneScan"/>), so Dim·batch threads run side by side.
    /// Layout: z [rows, 3·Dim] = q | kv | gate logits; the forward overwrites kv with S_t and the logits with a_t,
    /// which is all the backward reads. A Reverse layer walks each sequence from its last position to its first.
    /// The log-space (Heinsen) forward computes the same function and leaves the same values, so one backward serves both.
    /// </summary>
    internal static class SimpleGateLoopScanKernels
    {
        public static string Emit(SimpleGateLoopSpec spec, Numeric n) =>
            (spec.Heinsen ? HeinsenHelpers(n) + "\n\n" : "") + Forward(spec, n).Kernel + "\n\n" + Backward(spec, n).Kernel;

        /// <summary>The host range entries of both scans.</summary>
        public static string HostEntries(SimpleGateLoopSpec spec, Numeric n) =>
            Forward(spec, n).HostEntry + "\n\n" + Backward(spec, n).HostEntry;

        // Step t of the scan visits this row of sequence b; the one visited before it is a row away.
        static string Row(SimpleGateLoopSpec spec) => spec.Reverse ? "(long)b * seq + (seq - 1 - t)" : "(long)b * seq + t";

        static string Order(SimpleGateLoopSpec spec) => spec.Reverse ? "from the last position to the first" : "from the first position to the last";

        static string Parameters(Numeric n) =>
            $"ArrayView<{n.Type}> z, ArrayView<{n.Type}> initial, ArrayView<{n.Type}> o, ArrayView<{n.Type}> gate, ArrayView<{n.Type}> state";

        static LaneScan Forward(SimpleGateLoopSpec spec, Numeric n) => spec.Heinsen ? Heinsen(spec, n) : new LaneScan(n, "ScanForward", $$"""
            /// <summary>
            /// One thread per (batch, channel) runs the sequence {{Order(spec)}}, starting from S_0 = initial[b, c]:
            /// a_t = σ(z_a), S_t = a_t·S_{t−1} + kv_t, o_t = q_t·S_t. Leaves S_t and a_t in z, the last state in
            /// state[b, c], and multiplies gate[b, c] by Π a_t (the cache's cumulative gate).
            /// </summary>
            """,
            Parameters(n), "Dim", new[] { "s", "g" }, $"{n.Type} s = initial[index], g = gate[index];", reverse: false, $$"""
            long row = {{Row(spec)}}, k = row * (3 * Dim) + c;
            {{n.Type}} a = Sigmoid(z[k + 2 * Dim]);
            s = a * s + z[k + Dim];
            g *= a;
            z[k + Dim] = s;
            z[k + 2 * Dim] = a;
            o[row * Dim + c] = z[k] * s;
            """,
            "gate[index] = g;\nstate[index] = s;");

        static LaneScan Backward(SimpleGateLoopSpec spec, Numeric n) => new LaneScan(n, "ScanBackward", """
            /// <summary>
            /// Reverse scan per (batch, channel) over z as the forward left it ([q | S | a]), from S_0 = initial[b, c]:
            /// Ĝ_t = dO_t·q_t + a_{t+1}·Ĝ_{t+1}; dq_t = dO_t·S_t, dkv_t = Ĝ_t, d(logit)_t = Ĝ_t·S_{t−1}·a_t·(1 − a_t).
            /// dZ is overwritten.
            /// </summary>
            """,
            $"ArrayView<{n.Type}> z, ArrayView<{n.Type}> initial, ArrayView<{n.Type}> dO, ArrayView<{n.Type}> dZ",
            "Dim", new[] { "g", "aNext" }, $"{n.Type} g = 0, aNext = 0;", reverse: true, $$"""
            long row = {{Row(spec)}}, k = row * (3 * Dim) + c;
            {{n.Type}} d = dO[row * Dim + c], a = z[k + 2 * Dim];
            {{n.Type}} previous = t > 0 ? z[{{(spec.Reverse ? "k + 3 * Dim" : "k - 3 * Dim")}} + Dim] : initial[index];
            g = d * z[k] + aNext * g;
            dZ[k] = d * z[k + Dim];
            dZ[k + Dim] = g;
            dZ[k + 2 * Dim] = g * previous * a * (1 - a);
            aNext = a;
            """, "");

        static string HeinsenHelpers(Numeric n) => $$"""
            /// <summary>log σ(x) = min(x, 0) − log(1 + e^−|x|): finite for every finite x, where log(σ(x)) reaches −∞ once σ underflows.</summary>
            static {{n.Type}} LogSigmoid({{n.Type}} x) => {{n.Math}}.Min(x, 0) - {{n.Math}}.Log(1 + {{n.Math}}.Exp(-{{n.Math}}.Abs(x)));
            """;

        static LaneScan Heinsen(SimpleGateLoopSpec spec, Numeric n)
        {
            string T = n.Type, M = n.Math;
            return new LaneScan(n, "HeinsenScanForward", $$"""
                /// <summary>
                /// The scan in log space (Heinsen 2023), {{Order(spec)}} (t counts in that order): with
                /// a*_t = Σ_{r≤t} log a_r, S_t = e^{a*_t}·Σ_{s≤t} kv_s·e^{−a*_s}, the starting state being the s = 0 term
                /// at a* = 0. The sum is kept as acc·e^m with m the running max of log|kv_s| − a*_s, so no term overflows;
                /// kv's sign is carried as ±1 (the seed's complex phase). Same outputs as the plain scan, but less
                /// accurate: a*_t grows linearly with t, so each difference a*_t − a*_s carries an absolute error near
                /// |a*_t|·ε (relative error of S growing with the sequence length), and opposite-signed terms cancel
                /// inside acc with an error relative to the largest of them rather than to S.
                /// </summary>
                """,
                Parameters(n), "Dim", new[] { "s", "logGate", "max", "acc" }, $$"""
                {{T}} s = initial[index], logGate = 0, max = {{T}}.NegativeInfinity, acc = 0;
                if (s != 0)
                {
                    max = {{M}}.Log({{M}}.Abs(s));
                    acc = s < 0 ? -1 : 1;
                }
                """, reverse: false, $$"""
                long row = {{Row(spec)}}, k = row * (3 * Dim) + c;
                {{T}} logit = z[k + 2 * Dim], kv = z[k + Dim];
                logGate += LogSigmoid(logit);
                // kv = 0 adds nothing (and its log, −∞, would turn the sum into NaN).
                if (kv != 0)
                {
                    {{T}} l = {{M}}.Log({{M}}.Abs(kv)) - logGate, sign = kv < 0 ? -1 : 1;
                    if (l > max)
                    {
                        acc = acc * {{M}}.Exp(max - l) + sign;
                        max = l;
                    }
                    else acc += sign * {{M}}.Exp(l - max);
                }
                s = {{M}}.Exp(logGate + max) * acc;
                z[k + Dim] = s;
                z[k + 2 * Dim] = Sigmoid(logit);
                o[row * Dim + c] = z[k] * s;
                """,
                $"gate[index] *= {M}.Exp(logGate);\nstate[index] = s;");
        }
    }
}
