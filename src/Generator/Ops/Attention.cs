using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// The seed's causal softmax attention (CausalFullAttention) as one module: q | k | v by one projection, the
    /// optional rotary embedding and data-dependent relative positions applied to q and k, then <see cref="Core"/>.
    /// Its tensors come in the seed's state_dict order: the rotary frequencies before the projections.
    /// </summary>
    internal sealed class Attention : Sequence
    {
        /// <param name="ops">The projection, rotary, relative-position and core ops, in forward order.</param>
        public Attention(IReadOnlyList<Op> ops) : base("", ops) { }

        public override IEnumerable<Param> Parameters =>
            Ops.OfType<Rotary>().SelectMany(o => o.Parameters).Concat(Ops.Where(o => o is not Rotary).SelectMany(o => o.Parameters));

        /// <summary>The row stride of the q | k | v buffer, for every kernel that reads it by head and channel.</summary>
        public static readonly KernelSource QkvLayout = new KernelSource("QkvRow", "const long QkvRow = 3L * DimInner; // q | k | v per row");

        /// <summary>
        /// Scores, softmax and the weighted values, one kernel per stage with its gradient beside it. Layouts: qkv
        /// [rows, 3·DimInner] with head h at columns h·HeadDim… of q, k and v; probabilities [batch, Heads, seq, seq]
        /// (entries above the diagonal unused). Attention carries no recurrent state: generation re-runs the prefix.
        /// </summary>
        internal sealed class Core : Op
        {
            readonly int headDim;
            readonly bool softmax;
            readonly Value qkv, output;

            /// <param name="softmax">Whether the masked scores are normalized (AttnSoftmaxNormalize); else used as they are.</param>
            public Core(int headDim, bool softmax, Value qkv, Value output)
            {
                this.headDim = headDim;
                this.softmax = softmax;
                this.qkv = qkv;
                this.output = output;
            }

            public override IEnumerable<Value> Outputs => new[] { output };

            /// <summary>The key of the member that says the model carries no state (it re-runs its prefix to generate).</summary>
            public const string NoCarriedState = "NoCarriedState";

            static readonly Buffer ProbsBuffer = new Buffer("Probs", "Depth", "batch * Heads * (long)seq * seq", "causal attention probabilities (scores when not normalized)");

            static readonly Buffer DProbsBuffer = new Buffer("DProbs", null, "batch * Heads * (long)seq * seq", "gradient of the probabilities, then of the scores", BufferUse.Gradient);

            readonly Value probs = Value.Stored(ProbsBuffer), dProbs = Value.Gradient(DProbsBuffer);

            public override IEnumerable<Buffer> Buffers => new[] { ProbsBuffer }.Concat(base.Buffers).Append(DProbsBuffer);

            public override IEnumerable<KernelSource> Members(Numeric n)
            {
                yield return new KernelSource(NoCarriedState, "/// <inheritdoc />\nprotected override bool CarriesState => false;");
            }

            public override void Forward(Schedule s)
            {
                s.Launch("AttentionScores", "Batch * Heads * Seq * Seq", "Seq", qkv, probs);
                if (softmax) s.Launch("AttentionSoftmax", "Batch * Heads * Seq", "Seq", probs);
                s.Launch("AttentionOutput", "R * DimInner", "Seq", probs, qkv, output);
            }

            public override void Backward(Schedule s)
            {
                s.Launch("AttentionGradValues", "R * DimInner", "Seq", probs, output.Grad!, qkv.Grad!);
                s.Launch("AttentionGradProbs", "Batch * Heads * Seq * Seq", "Seq", qkv, output.Grad!, dProbs);
                if (softmax) s.Launch("AttentionSoftmaxBackward", "Batch * Heads * Seq", "Seq", probs, dProbs);
                s.Launch("AttentionGradQueriesKeys", "R * DimInner", "Seq", qkv, dProbs, qkv.Grad!);
            }

            public override IEnumerable<KernelSource> Kernels(Numeric n)
            {
                yield return QkvLayout;
                yield return new KernelSource("Attention", Kernel(n, headDim));
                if (softmax) yield return new KernelSource("AttentionSoftmax", Softmax(n));
            }

            static string Softmax(Numeric n)
            {
                string T = n.Type, M = n.Math;
                return $$"""
                    /// <summary>Softmax over j ≤ i of each score row, in place; one thread per row.</summary>
                    public static void AttentionSoftmax(Index1D index, int seq, ArrayView<{{T}}> p)
                    {
                        int i = index.X % seq;
                        long o = (long)index.X * seq;
                        {{T}} max = p[o];
                        for (int j = 1; j <= i; j++) max = max < p[o + j] ? p[o + j] : max; // a select: PTX's max drops NaNs (GL0030)
                        {{T}} sum = 0;
                        for (int j = 0; j <= i; j++)
                        {
                            {{T}} e = {{M}}.Exp(p[o + j] - max);
                            p[o + j] = e;
                            sum += e;
                        }
                        for (int j = 0; j <= i; j++) p[o + j] /= sum;
                    }

                    /// <summary>dS = P ⊙ (dP − Σ_j P·dP) over j ≤ i, in place over dP; one thread per row.</summary>
                    public static void AttentionSoftmaxBackward(Index1D index, int seq, ArrayView<{{T}}> p, ArrayView<{{T}}> dp)
                    {
                        int i = index.X % seq;
                        long o = (long)index.X * seq;
                        {{T}} dot = 0;
                        for (int j = 0; j <= i; j++) dot += p[o + j] * dp[o + j];
                        for (int j = 0; j <= i; j++) dp[o + j] = p[o + j] * (dp[o + j] - dot);
                    }
                    """;
            }

            static string Kernel(Numeric n, int headDim)
            {
                string T = n.Type;
                return $$"""
                    const {{T}} AttnScale = {{n.Lit(1 / System.Math.Sqrt(headDim))}}; // 1/√HeadDim

                    /// <summary>P[b, h, i, j] = scale·q_i·k_j for j ≤ i, 0 above the diagonal; one thread per score.</summary>
                    public static void AttentionScores(Index1D index, int seq, ArrayView<{{T}}> qkv, ArrayView<{{T}}> p)
                    {
                        long idx = index.X, r = idx / seq, bh = r / seq;
                        int j = (int)(idx % seq), i = (int)(r % seq), h = (int)(bh % Heads);
                        long b = bh / Heads;
                        if (j > i)
                        {
                            p[idx] = 0;
                            return;
                        }
                        long q = (b * seq + i) * QkvRow + h * HeadDim, k = (b * seq + j) * QkvRow + DimInner + h * HeadDim;
                        {{T}} sum = 0;
                        for (int d = 0; d < HeadDim; d++) sum += qkv[q + d] * qkv[k + d];
                        p[idx] = sum * AttnScale;
                    }

                    /// <summary>o_i[h·P + e] = Σ_{j ≤ i} P_ij·v_j[e]; one thread per output element.</summary>
                    public static void AttentionOutput(Index1D index, int seq, ArrayView<{{T}}> p, ArrayView<{{T}}> qkv, ArrayView<{{T}}> o)
                    {
                        long row = index.X / DimInner;
                        int c = index.X % DimInner, h = c / HeadDim, i = (int)(row % seq);
                        long b = row / seq, pr = ((b * Heads + h) * seq + i) * seq, v = b * seq * QkvRow + 2 * DimInner + c;
                        {{T}} sum = 0;
                        for (int j = 0; j <= i; j++) sum += p[pr + j] * qkv[v + j * QkvRow];
                        o[row * DimInner + c] = sum;
                    }

                    /// <summary>dv_j[e] = Σ_{i ≥ j} P_ij·dO_i[e], written into the v part of dQkv; one thread per element.</summary>
                    public static void AttentionGradValues(Index1D index, int seq, ArrayView<{{T}}> p, ArrayView<{{T}}> dO, ArrayView<{{T}}> dQkv)
                    {
                        long row = index.X / DimInner;
                        int c = index.X % DimInner, h = c / HeadDim, j = (int)(row % seq);
                        long b = row / seq, pc = (b * Heads + h) * seq * seq + j;
                        {{T}} sum = 0;
                        for (int i = j; i < seq; i++) sum += p[pc + (long)i * seq] * dO[(b * seq + i) * DimInner + c];
                        dQkv[row * QkvRow + 2 * DimInner + c] = sum;
                    }

                    /// <summary>dP_ij = dO_i·v_j for j ≤ i; one thread per score.</summary>
                    public static void AttentionGradProbs(Index1D index, int seq, ArrayView<{{T}}> qkv, ArrayView<{{T}}> dO, ArrayView<{{T}}> dp)
                    {
                        long idx = index.X, r = idx / seq, bh = r / seq;
                        int j = (int)(idx % seq), i = (int)(r % seq), h = (int)(bh % Heads);
                        long b = bh / Heads;
                        if (j > i)
                        {
                            dp[idx] = 0;
                            return;
                        }
                        long o = (b * seq + i) * DimInner + h * HeadDim, v = (b * seq + j) * QkvRow + 2 * DimInner + h * HeadDim;
                        {{T}} sum = 0;
                        for (int e = 0; e < HeadDim; e++) sum += dO[o + e] * qkv[v + e];
                        dp[idx] = sum;
                    }

                    /// <summary>
                    /// dq_i[d] = scale·Σ_{j ≤ i} dS_ij·k_j[d] and dk_i[d] = scale·Σ_{j ≥ i} dS_ji·q_j[d], written into the q and k
                    /// parts of dQkv; one thread per (row, channel) computes both.
                    /// </summary>
                    public static void AttentionGradQueriesKeys(Index1D index, int seq, ArrayView<{{T}}> qkv, ArrayView<{{T}}> ds, ArrayView<{{T}}> dQkv)
                    {
                        long row = index.X / DimInner;
                        int c = index.X % DimInner, h = c / HeadDim, i = (int)(row % seq);
                        long b = row / seq, bh = (b * Heads + h) * seq * seq, first = b * seq * QkvRow;
                        {{T}} dq = 0, dk = 0;
                        for (int j = 0; j <= i; j++) dq += ds[bh + (long)i * seq + j] * qkv[first + j * QkvRow + DimInner + c];
                        for (int j = i; j < seq; j++) dk += ds[bh + (long)j * seq + i] * qkv[first + j * QkvRow + c];
                        dQkv[row * QkvRow + c] = dq * AttnScale;
                        dQkv[row * QkvRow + DimInner + c] = dk * AttnScale;
                    }
                    """;
            }
        }
    }
}
