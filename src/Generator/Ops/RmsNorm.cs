using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// RMSNorm(x) = x / max(‖x‖, 1e-12) · √Dim · γ over rows of Dim, one row per thread (the seed's RMSNorm, γ = 1 at
    /// init). Backward adds into x's gradient (a residual stream's, usually), so it zeroes that first when nothing
    /// was written to it yet.
    /// </summary>
    internal sealed class RmsNorm : Op
    {
        readonly Param gamma;
        readonly int dim;
        readonly Value input, output, invNorm, partials;

        /// <param name="invNorm">1 / max(‖x‖, eps) per row, kept for backward.</param>
        /// <param name="partials">γ's column sums' partials (<see cref="Partials"/>), one value the model's RMSNorms share.</param>
        public RmsNorm(string field, string name, int dim, Value input, Value output, Value invNorm, Value partials)
        {
            gamma = new Param(field, name, new[] { ("Dim", dim) }, "Ones", 0);
            this.dim = dim;
            this.input = input;
            this.output = output;
            this.invNorm = invNorm;
            this.partials = partials;
        }

        /// <summary>The partials of γ's column sums, in the gradient plan <paramref name="plan"/>.</summary>
        public static Value Partials(string plan = "a") => ColumnReductions.Partials("RmsNormBackwardGamma", "Dim", 1, plan);

        public override IEnumerable<Param> Parameters => new[] { gamma };

        public override IEnumerable<Value> Outputs => new[] { output, invNorm };

        public override IEnumerable<Buffer> Buffers => base.Buffers.Append(partials.Storage!);

        public override void Forward(Schedule s) => s.Launch("RmsNormForward", "R", input, s.W(gamma), output, invNorm);

        public override void Backward(Schedule s)
        {
            s.EnsureHolding(input);
            s.Launch("RmsNormBackward", "R", input, s.W(gamma), invNorm, output.Grad!, input.Grad!);
            ColumnReductions.Launch(s, "RmsNormBackwardGamma", "Dim", partials, new Arg[] { input, invNorm, output.Grad! }, new[] { s.G(gamma) });
        }

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return new KernelSource("RmsNorm", Kernel(n, dim), Host(n));
            yield return ColumnReductions.PartLength;
        }

        static string Kernel(Numeric n, int dim) => $$"""
            const {{n.Type}} RmsScale = {{n.Lit(System.Math.Sqrt(dim))}}, RmsEps = {{n.Lit(1e-12)}};

            /// <summary>y = x·invNorm·√Dim·γ; invNorm[r] = 1 / max(‖x_r‖, eps) is kept for backward.</summary>
            public static void RmsNormForward(Index1D index, ArrayView<{{n.Type}}> x, ArrayView<{{n.Type}}> gamma, ArrayView<{{n.Type}}> y, ArrayView<{{n.Type}}> invNorm)
            {
                long o = (long)index.X * Dim;
                {{n.Type}} ss = 0;
                for (int d = 0; d < Dim; d++) ss += x[o + d] * x[o + d];
                {{n.Type}} norm = {{n.Math}}.Sqrt(ss), inv = 1 / (norm < RmsEps ? RmsEps : norm); // max(‖x‖, eps) that keeps a NaN
                invNorm[index] = inv;
                {{n.Type}} s = inv * RmsScale;
                for (int d = 0; d < Dim; d++) y[o + d] = x[o + d] * s * gamma[d];
            }

            /// <summary>dx += n·g − n³·x·(g·x) with g = dy·γ·√Dim; a clamped norm is a constant, leaving n·g.</summary>
            public static void RmsNormBackward(Index1D index, ArrayView<{{n.Type}}> x, ArrayView<{{n.Type}}> gamma, ArrayView<{{n.Type}}> invNorm, ArrayView<{{n.Type}}> dy, ArrayView<{{n.Type}}> dx)
            {
                long o = (long)index.X * Dim;
                {{n.Type}} inv = invNorm[index], dot = 0, ss = 0;
                for (int d = 0; d < Dim; d++)
                {
                    dot += dy[o + d] * gamma[d] * x[o + d];
                    ss += x[o + d] * x[o + d];
                }
                {{n.Type}} c = {{n.Math}}.Sqrt(ss) > RmsEps ? inv * inv * inv * dot * RmsScale : 0;
                for (int d = 0; d < Dim; d++) dx[o + d] += inv * RmsScale * dy[o + d] * gamma[d] - c * x[o + d];
            }

            {{Gamma(n).Kernel}}
            """;

        /// <summary>
        /// The host range entries: γ's column reduction, and (float) the row passes in SIMD lanes; a double build
        /// runs those as scalar twins.
        /// </summary>
        static string Host(Numeric n) => Gamma(n).HostEntry + (n.IsDouble ? "" : $$"""


            /// <summary>Runs <see cref="Kernels.RmsNormForward"/> for rows <paramref name="from"/>…<paramref name="to"/>−1 in SIMD lanes.</summary>
            public static void RmsNormForward(int from, int to, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> y, ArrayView<float> invNorm) =>
                {{Numeric.Runtime}}HostSimd.RmsNormForward(from, to, Dim, RmsScale, RmsEps, x, gamma, y, invNorm);

            /// <summary>Runs <see cref="Kernels.RmsNormBackward"/> for rows <paramref name="from"/>…<paramref name="to"/>−1 in SIMD lanes.</summary>
            public static void RmsNormBackward(int from, int to, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> invNorm, ArrayView<float> dy, ArrayView<float> dx) =>
                {{Numeric.Runtime}}HostSimd.RmsNormBackward(from, to, Dim, RmsScale, RmsEps, x, gamma, invNorm, dy, dx);
            """);

        static ColumnReduction Gamma(Numeric n) => new ColumnReduction(n, "RmsNormBackwardGamma",
            "dγ[d] += Σ_r dy·x·invNorm·√Dim.",
            new[] { "x", "invNorm", "dy" }, new[] { "dGamma" }, new[] { "sum" },
            "sum += dy[r * Dim + d] * x[r * Dim + d] * invNorm[r];",
            "dGamma[d] += sum * RmsScale;", "Dim", n.IsDouble ? null : Numeric.Runtime + "HostSimd.RmsNormGammaPartials", "Dim");
    }
}
