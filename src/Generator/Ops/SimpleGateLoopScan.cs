using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Model;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// The SimpleGateLoop scan, one real state per channel: a_t = σ(gate logit), S_t = a_t·S_{t−1} + kv_t,
    /// o_t = q_t·S_t, and its reverse scan Ĝ_t = dO_t·q_t + a_{t+1}·Ĝ_{t+1}. One thread owns a (batch, channel) pair
    /// for the whole sequence (a <see cref="LaneScan"/>), so Dim·batch threads run side by side; on a GPU with too few
    /// of those (one long sequence) the scans run in chunks.
    /// Layout: z [rows, 3·Dim] = q | kv | gate logits; the forward overwrites kv with S_t and the logits with a_t,
    /// which is all the backward reads. A Reverse layer walks each sequence from its last position to its first.
    /// The log-space (Heinsen) forward computes the same function and leaves the same values, so one backward serves both.
    /// The scan starts from the layer's <c>initial</c> state, multiplies its cumulative <c>gate</c> and leaves the last
    /// <c>state</c> (the cache's), all arguments of the generated ForwardCore; inside a transformer (a hybrid's
    /// SimpleGateLoop blocks) they are buffers of its plan: a zero initial state and scratch for the other two.
    /// </summary>
    internal sealed class SimpleGateLoopScan : Op
    {
        readonly SimpleGateLoopSpec spec;
        readonly Value z, output;
        readonly bool inModel;
        readonly Value initial, gate, state, aggregates = Value.Gradient(ChunkedScans.Aggregates("Dim", 3));

        /// <param name="z">The projection [q | kv | gate logits], which the scan overwrites with [q | S | a].</param>
        /// <param name="inModel">Whether the scan is a block of a transformer rather than a layer of its own.</param>
        public SimpleGateLoopScan(SimpleGateLoopSpec spec, Value z, Value output, bool inModel = false)
        {
            this.spec = spec;
            this.z = z;
            this.output = output;
            this.inModel = inModel;
            (initial, gate, state) = inModel
                ? (Value.Stored(Initial), Value.Stored(Gate), Value.Stored(State))
                : (new Value("initial", "batch * Dim"), new Value("gate", "batch * Dim"), new Value("state", "batch * Dim"));
        }

        public override IEnumerable<Value> Outputs => new[] { output };

        // Inside a model: never written, as every sequence starts from S_0 = 0 as a model's pass does; then scratch.
        static readonly Buffer Initial = new Buffer("SglInitial", null, "batch * Dim", "the SimpleGateLoop blocks' initial state (zero)");
        static readonly Buffer Gate = new Buffer("SglGate", null, "batch * Dim", "the SimpleGateLoop blocks' cumulative gate (unused)", BufferUse.Schedule);
        static readonly Buffer State = new Buffer("SglState", null, "batch * Dim", "the SimpleGateLoop blocks' last state (unused)", BufferUse.Schedule);

        public override IEnumerable<Buffer> Buffers
        {
            get
            {
                yield return aggregates.Storage!;
                if (inModel)
                {
                    yield return Initial;
                    yield return Gate;
                    yield return State;
                }
                foreach (var b in base.Buffers) yield return b;
            }
        }

        public override IEnumerable<KernelSource> Members(Numeric n)
        {
            yield return ChunkedScans.Members("Dim");
        }

        public override void Forward(Schedule s)
        {
            if (spec.Heinsen)
            {
                s.Launch("HeinsenScanForward", "Batch * Dim", "Seq", z, initial, output, gate, state);
                return;
            }
            s.Choose("Chunked", c => c
                .Launch("ChunkScanForward", "Batch * Chunks * Dim", "Seq", z, aggregates)
                .Launch("ChunkCarryForward", "Batch * Dim", "Seq", aggregates, initial, gate, state)
                .Launch("ChunkApplyForward", "Batch * Chunks * Dim", "Seq", z, aggregates, output),
                plain => plain.Launch("ScanForward", "Batch * Dim", "Seq", z, initial, output, gate, state));
        }

        public override void Backward(Schedule s)
        {
            var dOut = output.Grad!;
            s.Choose("Chunked", c => c
                .Launch("ChunkScanBackward", "Batch * Chunks * Dim", "Seq", z, dOut, z.Grad!, aggregates)
                .Launch("ChunkCarryBackward", "Batch * Dim", "Seq", aggregates)
                .Launch("ChunkApplyBackward", "Batch * Chunks * Dim", "Seq", z, initial, dOut, z.Grad!, aggregates),
                plain => plain.Launch("ScanBackward", "Batch * Dim", "Seq", z, initial, dOut, z.Grad!));
        }

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return Sigmoid.Helper(n);
            yield return ChunkedScans.Length(64);
            yield return new KernelSource("SimpleGateLoopScan", Emit(spec, n), HostEntries(spec, n));
        }

        static string Emit(SimpleGateLoopSpec spec, Numeric n) =>
            (spec.Heinsen ? HeinsenHelpers(n) + "\n\n" : "") + ForwardScan(spec, n).Kernel + "\n\n" + BackwardScan(spec, n).Kernel + "\n\n" + Chunked(spec, n);

        /// <summary>The host range entries of both scans.</summary>
        static string HostEntries(SimpleGateLoopSpec spec, Numeric n) =>
            ForwardScan(spec, n).HostEntry + "\n\n" + BackwardScan(spec, n).HostEntry;

        // Step t of the scan visits this row of sequence b; the one visited before it is a row away.
        static string Row(SimpleGateLoopSpec spec) => spec.Reverse ? "(long)b * seq + (seq - 1 - t)" : "(long)b * seq + t";

        static string Order(SimpleGateLoopSpec spec) => spec.Reverse ? "from the last position to the first" : "from the first position to the last";

        static string ScanParameters(Numeric n) =>
            $"ArrayView<{n.Type}> z, ArrayView<{n.Type}> initial, ArrayView<{n.Type}> o, ArrayView<{n.Type}> gate, ArrayView<{n.Type}> state";

        // The plain float scans also run 8 channels per SIMD register on the host, when rows hold whole groups of 8.
        static string? Simd(SimpleGateLoopSpec spec, Numeric n, string method) =>
            n.IsDouble || spec.Dim % 8 != 0 ? null : Numeric.Runtime + "HostSimd." + method;

        static string SimdExtra(SimpleGateLoopSpec spec) => "Dim, " + (spec.Reverse ? "true" : "false");

        static LaneScan ForwardScan(SimpleGateLoopSpec spec, Numeric n) => spec.Heinsen ? Heinsen(spec, n) : new LaneScan(n, "ScanForward", $$"""
            /// <summary>
            /// One thread per (batch, channel) runs the sequence {{Order(spec)}}, starting from S_0 = initial[b, c]:
            /// a_t = σ(z_a), S_t = a_t·S_{t−1} + kv_t, o_t = q_t·S_t. Leaves S_t and a_t in z, the last state in
            /// state[b, c], and multiplies gate[b, c] by Π a_t (the cache's cumulative gate).
            /// </summary>
            """,
            ScanParameters(n), "Dim", new[] { "s", "g" }, $"{n.Type} s = initial[index], g = gate[index];", reverse: false, $$"""
            long row = {{Row(spec)}}, k = row * (3 * Dim) + c;
            {{n.Type}} a = Sigmoid(z[k + 2 * Dim]);
            s = a * s + z[k + Dim];
            g *= a;
            z[k + Dim] = s;
            z[k + 2 * Dim] = a;
            o[row * Dim + c] = z[k] * s;
            """,
            "gate[index] = g;\nstate[index] = s;", Simd(spec, n, "SimpleScanForward"), SimdExtra(spec));

        static LaneScan BackwardScan(SimpleGateLoopSpec spec, Numeric n) => new LaneScan(n, "ScanBackward", """
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
            """, "", Simd(spec, n, "SimpleScanBackward"), SimdExtra(spec));

        /// <summary>
        /// The scans split into chunks of Chunk positions, for a GPU when batch·Dim lanes are too few to fill it
        /// (one long sequence): each (batch, chunk, channel) scans its chunk from zero and leaves the chunk's
        /// aggregate in agg [batch, chunks, Dim, 2]; one thread per lane carries the state across the chunks; then
        /// each chunk adds its carried-in state. S_t = S_t^chunk + (Π a over the chunk up to t)·S_in, and in reverse
        /// Ĝ_t = Ĝ_t^chunk + (Π a from t+1 to the chunk's end)·Ĝ_in: the same values as the sequential scans,
        /// rounded differently. The plain forward only (the log-space one stays sequential); one backward serves both.
        /// </summary>
        static string Chunked(SimpleGateLoopSpec spec, Numeric n)
        {
            string T = n.Type, row = Row(spec), before = spec.Reverse ? "k + 3 * Dim" : "k - 3 * Dim";
            string z = $"ArrayView<{T}> z", agg = $"ArrayView<{T}> agg";
            // The transition of the first step after the chunk, where there is one.
            string next(string into) => $$"""
                if (t1 < seq)
                {
                    int t = t1;
                    {{into}} = z[({{row}}) * (3 * Dim) + c + 2 * Dim];
                }
                """;
            string step = $"long row = {row}, k = row * (3 * Dim) + c;\n";
            string forward = spec.Heinsen ? "" : string.Join("\n\n",
                ChunkScan.Chunk("/// <summary>Per (batch, chunk, channel): the chunk's scan from S = 0, left in z; agg = (its last S, Π a, then the carried-in S).</summary>",
                    "ChunkScanForward", $"{z}, {agg}", "Dim", $"{T} s = 0, g = 1;", false, step + $$"""
                    {{T}} a = Sigmoid(z[k + 2 * Dim]);
                    s = a * s + z[k + Dim];
                    g *= a;
                    z[k + Dim] = s;
                    z[k + 2 * Dim] = a;
                    """, "agg[3 * (long)index.X] = s;\nagg[3 * (long)index.X + 1] = g;"),
                ChunkScan.Carry("""
                    /// <summary>
                    /// Per (batch, channel): carries S from initial across the chunks, leaving each chunk's incoming S in
                    /// agg; then the final state in state and Π a multiplied into gate, as the sequential scan does.
                    /// </summary>
                    """, "ChunkCarryForward", $"{agg}, ArrayView<{T}> initial, ArrayView<{T}> gate, ArrayView<{T}> state", "Dim", 3, "i",
                    $"{T} s = initial[index], g = gate[index];", false, $$"""
                    // The carried-in S goes to its own slot, not over the aggregate just read: ILGPU 1.5.3 places
                    // a load at its first use, after a store to the same element (the PTX simulator found it).
                    {{T}} last = agg[i], product = agg[i + 1];
                    agg[i + 2] = s;
                    s = product * s + last;
                    g *= product;
                    """, "gate[index] = g;\nstate[index] = s;"),
                ChunkScan.Chunk("/// <summary>Per (batch, chunk, channel): S_t += (Π a up to t)·S_in in z, then o_t = q_t·S_t.</summary>",
                    "ChunkApplyForward", $"{z}, {agg}, ArrayView<{T}> o", "Dim", $"{T} carried = agg[3 * (long)index.X + 2], product = 1;", false, step + $$"""
                    product *= z[k + 2 * Dim];
                    {{T}} s = z[k + Dim] + product * carried;
                    z[k + Dim] = s;
                    o[row * Dim + c] = z[k] * s;
                    """, "")) + "\n\n";
            return forward + string.Join("\n\n",
                ChunkScan.Chunk("""
                    /// <summary>
                    /// Per (batch, chunk, channel): the chunk's reverse scan from Ĝ = 0 past its end, left in dZ's kv slot;
                    /// agg = (Ĝ at the chunk's first step, Π a from its second step to the first step after it).
                    /// </summary>
                    """, "ChunkScanBackward", $"{z}, ArrayView<{T}> dO, ArrayView<{T}> dZ, {agg}", "Dim",
                    $"{T} g = 0, aNext = 0;\n{next("aNext")}\n{T} product = aNext;", true, step + """
                    g = dO[row * Dim + c] * z[k] + aNext * g;
                    dZ[k + Dim] = g;
                    aNext = z[k + 2 * Dim];
                    if (t > t0) product *= aNext;
                    """, "agg[3 * (long)index.X] = g;\nagg[3 * (long)index.X + 1] = product;"),
                ChunkScan.Carry("/// <summary>Per (batch, channel): carries Ĝ from past the end back across the chunks, leaving each chunk's incoming Ĝ in agg.</summary>",
                    "ChunkCarryBackward", agg, "Dim", 3, "i", $"{T} g = 0;", true, $$"""
                    {{T}} first = agg[i], product = agg[i + 1];
                    agg[i + 2] = g; // its own slot: see ChunkCarryForward
                    g = first + product * g;
                    """, ""),
                ChunkScan.Chunk("""
                    /// <summary>
                    /// Per (batch, chunk, channel): Ĝ_t += (Π a from t+1 to the chunk's end)·Ĝ_in, then the gradients of
                    /// ScanBackward: dq_t = dO_t·S_t, dkv_t = Ĝ_t, d(logit)_t = Ĝ_t·S_{t−1}·a_t·(1 − a_t).
                    /// </summary>
                    """, "ChunkApplyBackward", $"{z}, ArrayView<{T}> initial, ArrayView<{T}> dO, ArrayView<{T}> dZ, {agg}", "Dim",
                    $"{T} carried = agg[3 * (long)index.X + 2], factor = 0;\n{next("factor")}", true, step + $$"""
                    {{T}} d = dO[row * Dim + c], a = z[k + 2 * Dim], g = dZ[k + Dim] + factor * carried;
                    factor *= a;
                    {{T}} previous = t > 0 ? z[{{before}} + Dim] : initial[b * Dim + c];
                    dZ[k] = d * z[k + Dim];
                    dZ[k + Dim] = g;
                    dZ[k + 2 * Dim] = g * previous * a * (1 - a);
                    """, ""));
        }

        static string HeinsenHelpers(Numeric n) => $$"""
            /// <summary>log σ(x) = min(x, 0) − log(1 + e^−|x|): finite for every finite x, where log(σ(x)) reaches −∞ once σ underflows.</summary>
            static {{n.Type}} LogSigmoid({{n.Type}} x) => (x > 0 ? 0 : x) - {{n.Math}}.Log(1 + {{n.Math}}.Exp(-{{n.Math}}.Abs(x)));
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
                ScanParameters(n), "Dim", new[] { "s", "logGate", "max", "acc" }, $$"""
                {{T}} s = initial[index], logGate = 0, max = {{T}}.NegativeInfinity, acc = 0;
                if (s != 0)
                {
                    max = {{M}}.Log({{M}}.Abs(s));
                    acc = s < 0 ? {{n.Lit(-1)}} : {{n.Lit(1)}};
                }
                """, reverse: false, $$"""
                long row = {{Row(spec)}}, k = row * (3 * Dim) + c;
                {{T}} logit = z[k + 2 * Dim], kv = z[k + Dim];
                logGate += LogSigmoid(logit);
                // kv = 0 adds nothing (and its log, −∞, would turn the sum into NaN).
                if (kv != 0)
                {
                    {{T}} l = {{M}}.Log({{M}}.Abs(kv)) - logGate, sign = kv < 0 ? {{n.Lit(-1)}} : {{n.Lit(1)}};
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
