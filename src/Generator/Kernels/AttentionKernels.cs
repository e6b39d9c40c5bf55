using GateLoop.Generator.Emit;

namespace GateLoop.Generator.Kernels
{
    /// <summary>
    /// The causal softmax-attention baseline, one kernel per stage with its gradient beside it: rotary embedding,
    /// the seed's data-dependent relative-position scaling, scores, softmax, weighted values.
    /// Layouts: qkv [rows, 3·DimInner] with head h at columns h·HeadDim… of q, k and v; probabilities
    /// [batch, Heads, seq, seq] (entries above the diagonal unused); relative-position products [rows, DimInner/2, 2].
    /// </summary>
    internal static class AttentionKernels
    {
        public static string Attention(Numeric n, int headDim)
        {
            string T = n.Type, M = n.Math;
            return $$"""
                const {{T}} AttnScale = {{n.Lit(1 / System.Math.Sqrt(headDim))}}; // 1/√HeadDim
                const long QkvRow = 3L * DimInner;

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

                /// <summary>Softmax over j ≤ i of each score row, in place; one thread per row.</summary>
                public static void AttentionSoftmax(Index1D index, int seq, ArrayView<{{T}}> p)
                {
                    int i = index.X % seq;
                    long o = (long)index.X * seq;
                    {{T}} max = p[o];
                    for (int j = 1; j <= i; j++) max = {{M}}.Max(max, p[o + j]);
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

        public static string Rotary(Numeric n) => $$"""
            /// <summary>
            /// Rotates each adjacent pair of q and k by position·freq (direction 1) — or a gradient back by the transpose
            /// (direction −1): (x₀, x₁) → (x₀·cos − x₁·sin, x₁·cos + x₀·sin). One thread per pair.
            /// </summary>
            public static void Rotate(Index1D index, int seq, ArrayView<{{n.Type}}> m, ArrayView<{{n.Type}}> freqs, {{n.Type}} direction)
            {
                int pair = index.X % (HeadDim / 2), rest = index.X / (HeadDim / 2), h = rest % Heads, part = rest / Heads % 2;
                long row = rest / Heads / 2;
                {{n.Type}} angle = direction * (row % seq) * freqs[pair];
                {{n.Type}} cos = {{n.Math}}.Cos(angle), sin = {{n.Math}}.Sin(angle);
                long o = row * QkvRow + part * DimInner + h * HeadDim + 2 * pair;
                {{n.Type}} x0 = m[o], x1 = m[o + 1];
                m[o] = x0 * cos - x1 * sin;
                m[o + 1] = x1 * cos + x0 * sin;
            }
            """;

        public static string RelPos(Numeric n)
        {
            string T = n.Type, M = n.Math;
            return $$"""
                const {{T}} RelPosFloor = {{n.Lit(1e-10)}};

                /// <summary>
                /// The seed's data-dependent relative positions, per (row, head): C_d = Π_{d′ ≤ d} a_{d′} along the head's channel
                /// pairs (its cumprod over dim −2 of [b, h, n, d, 1]); q's pair d is scaled by R_d = max(Re C_d, 1e-10) and k's
                /// by 1/R_d, in place. C is kept for backward.
                /// </summary>
                public static void RelPosForward(Index1D index, ArrayView<{{T}}> a, ArrayView<{{T}}> cum, ArrayView<{{T}}> qkv)
                {
                    long row = index.X / Heads;
                    int h = index.X % Heads;
                    {{T}} cr = 1, ci = 0;
                    for (int d = 0; d < HeadDim / 2; d++)
                    {
                        long ai = (row * (DimInner / 2) + h * (HeadDim / 2) + d) * 2;
                        {{T}} ar = a[ai], aim = a[ai + 1], nr = ar * cr - aim * ci;
                        ci = ar * ci + aim * cr;
                        cr = nr;
                        cum[ai] = cr;
                        cum[ai + 1] = ci;
                        {{T}} r = {{M}}.Max(cr, RelPosFloor);
                        long q = row * QkvRow + h * HeadDim + 2 * d;
                        qkv[q] *= r;
                        qkv[q + 1] *= r;
                        qkv[q + DimInner] /= r;
                        qkv[q + DimInner + 1] /= r;
                    }
                }

                /// <summary>
                /// From the scaled q, k and their gradients: ∂L/∂R_d = (dq·q − dk·k)/R_d over the pair (zero where the floor
                /// clamps), dq ← dq·R, dk ← dk/R in place; then the reverse product G_d = ∂L/∂C_d + conj(a_{d+1})·G_{d+1}
                /// gives da_d = conj(C_{d−1})·G_d (C_{−1} = 1).
                /// </summary>
                public static void RelPosBackward(Index1D index, ArrayView<{{T}}> a, ArrayView<{{T}}> cum, ArrayView<{{T}}> qkv, ArrayView<{{T}}> dQkv, ArrayView<{{T}}> da)
                {
                    long row = index.X / Heads;
                    int h = index.X % Heads;
                    {{T}} gr = 0, gi = 0, nar = 0, nai = 0;
                    for (int d = HeadDim / 2 - 1; d >= 0; d--)
                    {
                        long ai = (row * (DimInner / 2) + h * (HeadDim / 2) + d) * 2, q = row * QkvRow + h * HeadDim + 2 * d;
                        {{T}} cr = cum[ai], r = {{M}}.Max(cr, RelPosFloor);
                        {{T}} dr = (dQkv[q] * qkv[q] + dQkv[q + 1] * qkv[q + 1]
                            - dQkv[q + DimInner] * qkv[q + DimInner] - dQkv[q + DimInner + 1] * qkv[q + DimInner + 1]) / r;
                        dQkv[q] *= r;
                        dQkv[q + 1] *= r;
                        dQkv[q + DimInner] /= r;
                        dQkv[q + DimInner + 1] /= r;
                        {{T}} ngr = (cr >= RelPosFloor ? dr : 0) + nar * gr + nai * gi;
                        gi = nar * gi - nai * gr;
                        gr = ngr;
                        {{T}} pr = d > 0 ? cum[ai - 2] : 1, pi = d > 0 ? cum[ai - 1] : 0;
                        da[ai] = pr * gr + pi * gi;
                        da[ai + 1] = pr * gi - pi * gr;
                        nar = a[ai];
                        nai = a[ai + 1];
                    }
                }
                """;
        }
    }
}
