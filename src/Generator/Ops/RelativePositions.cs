using System.Collections.Generic;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// The attention baseline's data-dependent relative positions (the seed's): from the complex gates a of their own
    /// projection (a <see cref="StateTransition"/> without bias), the cumulative products C along each head's channel
    /// pairs scale q by max(Re C, 1e-10) and k by its inverse, in place; C is kept for backward.
    /// Layout of a and C: [rows, DimInner/2, 2].
    /// </summary>
    internal sealed class RelativePositions : Op
    {
        readonly Value gates, qkv;

        public RelativePositions(Value gates, Value qkv)
        {
            this.gates = gates;
            this.qkv = qkv;
        }

        static readonly Buffer CumBuffer = new Buffer("Cum", "Depth", "rows * DimInner", "their cumulative products C");

        readonly Value cum = Value.Stored(CumBuffer);

        public override IEnumerable<Buffer> Buffers => new[] { CumBuffer };

        public override void Forward(Schedule s) => s.Launch("RelPosForward", "R * Heads", gates, cum, qkv);

        public override void Backward(Schedule s) => s.Launch("RelPosBackward", "R * Heads", gates, cum, qkv, qkv.Grad!, gates.Grad!);

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return Attention.QkvLayout;
            yield return new KernelSource("RelativePositions", Kernel(n));
        }

        static string Kernel(Numeric n)
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
                        {{T}} r = cr < RelPosFloor ? RelPosFloor : cr;
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
                        {{T}} cr = cum[ai], r = cr < RelPosFloor ? RelPosFloor : cr;
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
