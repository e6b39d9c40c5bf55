using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// gateloop-tiny's kernels exactly as the generator of revision ee3865f emitted them, the last revision before
/// CopySign and integer conditionals converted to float were refused: its GELU took the sign through CopySign
/// and its cross-entropy gradient subtracted <c>(v == target ? 1 : 0)</c>. On an H200 they gave the wrong first
/// gradient norm that <see cref="PtxSimulatorTests"/> reproduces by running them in today's schedule. The kernels
/// today's schedule launches differently (the embedding's lookup and parameter gradient and LayerNorm's parameter
/// gradients, each now over more threads, with the same sums, and LayerNorm's rows, now a warp per row) are left
/// out, so today's run in their place.
/// </summary>
#pragma warning disable GL0030 // the constructs the fix removed, kept to show the simulator computes what the GPU did
public static class UnfixedTinyKernels
{
    const int NumTokens = 256, Dim = 64, Depth = 2, Heads = 64, HeadDim = 1, DimInner = 64, Hidden = 256;
    const int ChunkedBelowLanes = 32768, Chunk = 32;

    static float Sigmoid(float x) => 1 / (1 + global::System.MathF.Exp(-x));

    /// <summary>The standard normal CDF Φ(v), given gauss = e^{−v²/2} (erf by Abramowitz–Stegun 7.1.26).</summary>
    static float Phi(float v, float gauss)
    {
        float t = 1 / (1 + 0.23164189f * global::System.MathF.Abs(v));
        float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
        return 0.5f + 0.5f * global::System.MathF.CopySign(1 - poly * gauss, v);
    }

    const float Frac = 0.9f;

    /// <summary>a = σ(m)·(x, y)/m for (x, y) = r + bias, m = |(x, y)|; a = (σ(0), 0) at m = 0.</summary>
    public static void TransitionForward(Index1D index, ArrayView<float> rIn, ArrayView<float> bias, ArrayView<float> a)
    {
        long i = 2 * (long)index.X;
        int bp = 2 * (index.X % Heads); // this pair's bias
        float x = rIn[i] + bias[bp];
        float y = rIn[i + 1] + bias[bp + 1];
        float m = global::System.MathF.Sqrt(x * x + y * y);
        if (m == 0)
        {
            a[i] = 0.5f;
            a[i + 1] = 0;
            return;
        }
        float f = Sigmoid(m) / m;
        a[i] = f * x;
        a[i + 1] = f * y;
    }

    /// <summary>dr = Frac·Jᵀ·da with J = f·I + (f′/m)·r·rᵀ, f = σ(m)/m; da = ∂L/∂Re a + i·∂L/∂Im a.</summary>
    public static void TransitionBackward(Index1D index, ArrayView<float> rIn, ArrayView<float> bias, ArrayView<float> da, ArrayView<float> dr)
    {
        long i = 2 * (long)index.X;
        int bp = 2 * (index.X % Heads); // this pair's bias
        float x = rIn[i] + bias[bp];
        float y = rIn[i + 1] + bias[bp + 1];
        float m = global::System.MathF.Sqrt(x * x + y * y);
        if (m == 0)
        {
            dr[i] = 0;
            dr[i + 1] = 0;
            return;
        }
        float gx = da[i], gy = da[i + 1], s = Sigmoid(m), f = s / m;
        float k = (s * (1 - s) * m - s) / (m * m * m) * (x * gx + y * gy);
        dr[i] = Frac * (f * gx + k * x);
        dr[i + 1] = Frac * (f * gy + k * y);
    }

    /// <summary>
    /// One thread per (batch, channel) runs the whole sequence from the state in carry [batch, DimInner, 2] and
    /// leaves the final state there (zero it to start a sequence; keep it to continue one token at a time).
    /// Every S_t is stored for the reverse scan.
    /// </summary>
    public static void ScanForward(Index1D index, int seq, ArrayView<float> qkv, ArrayView<float> a, ArrayView<float> o, ArrayView<float> states, ArrayView<float> carry)
    {
        int b = index.X / DimInner, c = index.X % DimInner;
        float sr = carry[2 * (long)index.X], si = carry[2 * (long)index.X + 1];
        for (int t = 0; t < seq; t++)
        {
            long row = (long)b * seq + t, q = row * (3 * DimInner) + c;
            long ai = (row * Heads + c) * 2;
            var ar = a[ai];
            var aim = a[ai + 1];
            var nr = ar * sr - aim * si + qkv[q + DimInner] * qkv[q + 2 * DimInner];
            si = ar * si + aim * sr;
            sr = nr;
            o[row * DimInner + c] = qkv[q] * sr;
            long s = (row * DimInner + c) * 2;
            states[s] = sr;
            states[s + 1] = si;
        }
        carry[2 * (long)index.X] = sr;
        carry[2 * (long)index.X + 1] = si;
    }

    /// <summary>
    /// Reverse scan per (batch, channel), for sequences that started from a zero state: dq = Re(S_t)·dO,
    /// dk = Re(Ĝ_t)·v, dv = Re(Ĝ_t)·k, da_t = conj(S_{t−1})·Ĝ_t.
    /// </summary>
    public static void ScanBackward(Index1D index, int seq, ArrayView<float> qkv, ArrayView<float> a, ArrayView<float> states, ArrayView<float> dO, ArrayView<float> dQkv, ArrayView<float> da)
    {
        int b = index.X / DimInner, c = index.X % DimInner;
        float gr = 0, gi = 0, nar = 0, nai = 0;
        for (int t = seq - 1; t >= 0; t--)
        {
            long row = (long)b * seq + t, q = row * (3 * DimInner) + c, s = (row * DimInner + c) * 2;
            float dout = dO[row * DimInner + c];
            var ngr = qkv[q] * dout + nar * gr + nai * gi;
            gi = nar * gi - nai * gr;
            gr = ngr;
            long ai = (row * Heads + c) * 2;
            dQkv[q] = states[s] * dout;
            dQkv[q + DimInner] = gr * qkv[q + 2 * DimInner];
            dQkv[q + 2 * DimInner] = gr * qkv[q + DimInner];
            float pr = t > 0 ? states[s - 2 * DimInner] : 0, pi = t > 0 ? states[s - 2 * DimInner + 1] : 0;
            da[ai] = pr * gr + pi * gi;
            da[ai + 1] = pr * gi - pi * gr;
            nar = a[ai];
            nai = a[ai + 1];
        }
    }

    /// <summary>Per (batch, chunk, channel): the chunk's scan from S = 0, local S_t into states; agg = (its last S, Π a).</summary>
    public static void ChunkScanForward(Index1D index, int seq, ArrayView<float> qkv, ArrayView<float> a, ArrayView<float> states, ArrayView<float> agg)
    {
        int chunks = (seq + Chunk - 1) / Chunk, c = index.X % DimInner, chunk = index.X / DimInner % chunks, b = index.X / (DimInner * chunks);
        int t0 = chunk * Chunk, t1 = global::System.Math.Min(seq, t0 + Chunk);
        float sr = 0, si = 0, pr = 1, pi = 0;
        for (int t = t0; t < t1; t++)
        {
            long row = (long)b * seq + t, q = row * (3 * DimInner) + c, s = (row * DimInner + c) * 2;
            long ai = (row * Heads + c) * 2;
            float ar = a[ai], aim = a[ai + 1];
            float nr = ar * sr - aim * si + qkv[q + DimInner] * qkv[q + 2 * DimInner];
            si = ar * si + aim * sr;
            sr = nr;
            nr = ar * pr - aim * pi;
            pi = ar * pi + aim * pr;
            pr = nr;
            states[s] = sr;
            states[s + 1] = si;
        }
        long g = 4 * (long)index.X;
        agg[g] = sr;
        agg[g + 1] = si;
        agg[g + 2] = pr;
        agg[g + 3] = pi;
    }

    /// <summary>
    /// Per (batch, channel): carries S from carry across the chunks, leaving each chunk's incoming S in agg
    /// and the final state in carry, as ScanForward does.
    /// </summary>
    public static void ChunkCarryForward(Index1D index, int seq, ArrayView<float> agg, ArrayView<float> carry)
    {
        int chunks = (seq + Chunk - 1) / Chunk, c = index.X % DimInner, b = index.X / DimInner;
        float sr = carry[2 * (long)index.X], si = carry[2 * (long)index.X + 1];
        for (int chunk = 0; chunk < chunks; chunk++)
        {
            long g = 4 * (((long)b * chunks + chunk) * DimInner + c);
            float lr = agg[g], li = agg[g + 1], pr = agg[g + 2], pi = agg[g + 3];
            agg[g] = sr;
            agg[g + 1] = si;
            float nr = pr * sr - pi * si + lr;
            si = pr * si + pi * sr + li;
            sr = nr;
        }
        carry[2 * (long)index.X] = sr;
        carry[2 * (long)index.X + 1] = si;
    }

    /// <summary>Per (batch, chunk, channel): S_t += (Π_{r≤t} a_r)·S_in in states, then o_t = q_t·Re S_t.</summary>
    public static void ChunkApplyForward(Index1D index, int seq, ArrayView<float> qkv, ArrayView<float> a, ArrayView<float> o, ArrayView<float> states, ArrayView<float> agg)
    {
        int chunks = (seq + Chunk - 1) / Chunk, c = index.X % DimInner, chunk = index.X / DimInner % chunks, b = index.X / (DimInner * chunks);
        int t0 = chunk * Chunk, t1 = global::System.Math.Min(seq, t0 + Chunk);
        float inr = agg[4 * (long)index.X], ini = agg[4 * (long)index.X + 1], pr = 1, pi = 0;
        for (int t = t0; t < t1; t++)
        {
            long row = (long)b * seq + t, q = row * (3 * DimInner) + c, s = (row * DimInner + c) * 2;
            long ai = (row * Heads + c) * 2;
            float ar = a[ai], aim = a[ai + 1];
            float nr = ar * pr - aim * pi;
            pi = ar * pi + aim * pr;
            pr = nr;
            float sr = states[s] + pr * inr - pi * ini;
            states[s + 1] += pr * ini + pi * inr;
            states[s] = sr;
            o[row * DimInner + c] = qkv[q] * sr;
        }
    }

    /// <summary>
    /// Per (batch, chunk, channel): the chunk's reverse scan from Ĝ = 0 past its end, local Ĝ_t kept in
    /// da; agg = (Ĝ at the chunk's first step, Π conj a from its second step to the first step after it).
    /// </summary>
    public static void ChunkScanBackward(Index1D index, int seq, ArrayView<float> qkv, ArrayView<float> a, ArrayView<float> dO, ArrayView<float> dQkv, ArrayView<float> da, ArrayView<float> agg)
    {
        int chunks = (seq + Chunk - 1) / Chunk, c = index.X % DimInner, chunk = index.X / DimInner % chunks, b = index.X / (DimInner * chunks);
        int t0 = chunk * Chunk, t1 = global::System.Math.Min(seq, t0 + Chunk);
        float gr = 0, gi = 0, nar = 0, nai = 0;
        if (t1 < seq)
        {
            long ai = ((long)b * seq + t1) * Heads * 2 + 2 * c;
            nar = a[ai];
            nai = a[ai + 1];
        }
        float fr = nar, fi = -nai;
        for (int t = t1 - 1; t >= t0; t--)
        {
            long row = (long)b * seq + t, q = row * (3 * DimInner) + c, keep = (row * DimInner + c) * 2;
            float ngr = qkv[q] * dO[row * DimInner + c] + nar * gr + nai * gi;
            gi = nar * gi - nai * gr;
            gr = ngr;
            da[keep] = gr;
            da[keep + 1] = gi;
            long ai = (row * Heads + c) * 2;
            float ar = a[ai], aim = a[ai + 1];
            nar = ar;
            nai = aim;
            if (t > t0)
            {
                float nf = fr * ar + fi * aim;
                fi = fi * ar - fr * aim;
                fr = nf;
            }
        }
        long g = 4 * (long)index.X;
        agg[g] = gr;
        agg[g + 1] = gi;
        agg[g + 2] = fr;
        agg[g + 3] = fi;
    }

    /// <summary>Per (batch, channel): carries Ĝ from past the end back across the chunks, leaving each chunk's incoming Ĝ in agg.</summary>
    public static void ChunkCarryBackward(Index1D index, int seq, ArrayView<float> agg)
    {
        int chunks = (seq + Chunk - 1) / Chunk, c = index.X % DimInner, b = index.X / DimInner;
        float gr = 0, gi = 0;
        for (int chunk = chunks - 1; chunk >= 0; chunk--)
        {
            long g = 4 * (((long)b * chunks + chunk) * DimInner + c);
            float lr = agg[g], li = agg[g + 1], fr = agg[g + 2], fi = agg[g + 3];
            agg[g] = gr;
            agg[g + 1] = gi;
            float nr = fr * gr - fi * gi + lr;
            gi = fr * gi + fi * gr + li;
            gr = nr;
        }
    }

    /// <summary>
    /// Per (batch, chunk, channel): Ĝ_t += (Π_{r=t+1…end} conj a_r)·Ĝ_in, then ScanBackward's gradients:
    /// dq = Re(S_t)·dO, dk = Re(Ĝ_t)·v, dv = Re(Ĝ_t)·k, da_t = conj(S_{t−1})·Ĝ_t.
    /// </summary>
    public static void ChunkApplyBackward(Index1D index, int seq, ArrayView<float> qkv, ArrayView<float> a, ArrayView<float> states, ArrayView<float> dO, ArrayView<float> dQkv, ArrayView<float> da, ArrayView<float> agg)
    {
        int chunks = (seq + Chunk - 1) / Chunk, c = index.X % DimInner, chunk = index.X / DimInner % chunks, b = index.X / (DimInner * chunks);
        int t0 = chunk * Chunk, t1 = global::System.Math.Min(seq, t0 + Chunk);
        float inr = agg[4 * (long)index.X], ini = agg[4 * (long)index.X + 1], nar = 0, nai = 0;
        if (t1 < seq)
        {
            long ai = ((long)b * seq + t1) * Heads * 2 + 2 * c;
            nar = a[ai];
            nai = a[ai + 1];
        }
        float fr = nar, fi = -nai;
        for (int t = t1 - 1; t >= t0; t--)
        {
            long row = (long)b * seq + t, q = row * (3 * DimInner) + c, s = (row * DimInner + c) * 2, keep = s;
            float gr = da[keep] + fr * inr - fi * ini, gi = da[keep + 1] + fr * ini + fi * inr;
            long ai = (row * Heads + c) * 2;
            float ar = a[ai], aim = a[ai + 1];
            float nf = fr * ar + fi * aim;
            fi = fi * ar - fr * aim;
            fr = nf;
            float dout = dO[row * DimInner + c];
            dQkv[q] = states[s] * dout;
            dQkv[q + DimInner] = gr * qkv[q + 2 * DimInner];
            dQkv[q + 2 * DimInner] = gr * qkv[q + DimInner];
            float pr = t > 0 ? states[s - 2 * DimInner] : 0, pi = t > 0 ? states[s - 2 * DimInner + 1] : 0;
            da[ai] = pr * gr + pi * gi;
            da[ai + 1] = pr * gi - pi * gr;
        }
    }

    /// <summary>y = x·silu(g), silu(g) = g·σ(g).</summary>
    public static void SwishGateForward(Index1D index, ArrayView<float> x, ArrayView<float> g, ArrayView<float> y)
    {
        float gv = g[index];
        y[index] = x[index] * gv * Sigmoid(gv);
    }

    /// <summary>dx = dy·silu(g); dg = dy·x·σ(g)·(1 + g·(1 − σ(g))).</summary>
    public static void SwishGateBackward(Index1D index, ArrayView<float> x, ArrayView<float> g, ArrayView<float> dy, ArrayView<float> dx, ArrayView<float> dg)
    {
        float gv = g[index], s = Sigmoid(gv), d = dy[index];
        dx[index] = d * gv * s;
        dg[index] = d * x[index] * s * (1 + gv * (1 - s));
    }

    /// <summary>u += b1 in place (u is kept for backward); z = gelu(u) = u·Φ(u) with the exact erf.</summary>
    public static void BiasGeluForward(Index1D index, ArrayView<float> u, ArrayView<float> bias, ArrayView<float> z)
    {
        float v = u[index] + bias[index.X % Hidden];
        u[index] = v;
        z[index] = v * Phi(v, global::System.MathF.Exp(-0.5f * v * v));
    }

    /// <summary>du = dz·(Φ(u) + u·φ(u)); du may alias dz.</summary>
    public static void GeluBackward(Index1D index, ArrayView<float> u, ArrayView<float> dz, ArrayView<float> du)
    {
        float v = u[index], gauss = global::System.MathF.Exp(-0.5f * v * v);
        du[index] = dz[index] * (Phi(v, gauss) + v * gauss * 0.3989423f);
    }

    /// <summary>x[r, c] += bias[c] for rows of Dim.</summary>
    public static void AddBiasDim(Index1D index, ArrayView<float> x, ArrayView<float> bias) =>
        x[index] += bias[index.X % Dim];

    /// <summary>loss[r] = logsumexp(z_r) − z_r[target]; dz_r = scale·(softmax(z_r) − onehot(target)).</summary>
    public static void CrossEntropy(Index1D index, ArrayView<float> logits, ArrayView<int> targets, float scale, ArrayView<float> loss, ArrayView<float> dLogits)
    {
        long o = (long)index.X * NumTokens;
        float max = logits[o];
        for (int v = 1; v < NumTokens; v++) max = global::System.MathF.Max(max, logits[o + v]);
        float sum = 0;
        for (int v = 0; v < NumTokens; v++) sum += global::System.MathF.Exp(logits[o + v] - max);
        float lse = max + global::System.MathF.Log(sum);
        int target = targets[index];
        loss[index] = lse - logits[o + target];
        for (int v = 0; v < NumTokens; v++)
            dLogits[o + v] = scale * (global::System.MathF.Exp(logits[o + v] - lse) - (v == target ? 1 : 0));
    }
}
#pragma warning restore GL0030
