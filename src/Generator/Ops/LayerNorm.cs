using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// PyTorch's nn.LayerNorm over rows of a constant width (eps 1e-5, biased variance; w = 1, b = 0 at init), one
    /// row per thread. Backward: the parameter gradients' column sums, then dx (which may be dy's own buffer).
    /// </summary>
    internal sealed class LayerNorm : Op
    {
        readonly Param weight, bias;
        readonly string width;
        readonly Value input, output, stats, partials;

        /// <param name="width">The constant holding the row width (Dim or DimInner), with its value.</param>
        /// <param name="module">The PyTorch module: its tensors are <c>module.weight</c> and <c>module.bias</c>.</param>
        /// <param name="stats">Mean and rstd per row, kept for backward.</param>
        /// <param name="partials">The column sums' partials (<see cref="Partials"/>), one value the model's LayerNorms of this width share.</param>
        public LayerNorm(string weightField, string biasField, string module, (string, int) width, Value input, Value output, Value stats,
            Value partials)
        {
            weight = new Param(weightField, module + ".weight", new[] { width }, "Ones", 0);
            bias = new Param(biasField, module + ".bias", new[] { width }, "Zeros", 0);
            this.width = width.Item1;
            this.input = input;
            this.output = output;
            this.stats = stats;
            this.partials = partials;
        }

        /// <summary>The partials of the parameter gradients' column sums over rows of <paramref name="width"/>, in the gradient plan <paramref name="plan"/>.</summary>
        public static Value Partials(string width, string plan = "a") => ColumnReductions.Partials($"LayerNorm{width}BackwardParams", width, 2, plan);

        public override IEnumerable<Param> Parameters => new[] { weight, bias };

        public override IEnumerable<Value> Outputs => new[] { output, stats };

        public override IEnumerable<Buffer> Buffers => base.Buffers.Append(partials.Storage!);

        public override void Forward(Schedule s) =>
            s.Launch($"LayerNorm{width}Forward", "R", input, s.W(weight), s.W(bias), output, stats);

        public override void Backward(Schedule s)
        {
            ColumnReductions.Launch(s, $"LayerNorm{width}BackwardParams", width, partials, new Arg[] { input, stats, output.Grad! },
                new[] { s.G(weight), s.G(bias) });
            s.Launch($"LayerNorm{width}Backward", "R", input, s.W(weight), stats, output.Grad!, input.Grad!);
        }

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return new KernelSource("LayerNorm" + width, Kernel(n, width), Host(n, width));
            yield return ColumnReductions.PartLength;
        }

        /// <param name="width">The name of the constant holding the row width (Dim or DimInner).</param>
        static string Kernel(Numeric n, string width) => $$"""
            /// <summary>y = (x − μ)·rstd·w + b; stats[2r] = μ, stats[2r+1] = rstd.</summary>
            public static void LayerNorm{{width}}Forward(Index1D index, ArrayView<{{n.Type}}> x, ArrayView<{{n.Type}}> w, ArrayView<{{n.Type}}> b, ArrayView<{{n.Type}}> y, ArrayView<{{n.Type}}> stats)
            {
                long o = (long)index.X * {{width}};
                {{n.Type}} mean = 0, variance = 0;
                for (int d = 0; d < {{width}}; d++) mean += x[o + d];
                mean /= {{width}};
                for (int d = 0; d < {{width}}; d++) variance += (x[o + d] - mean) * (x[o + d] - mean);
                {{n.Type}} rstd = 1 / {{n.Math}}.Sqrt(variance / {{width}} + {{n.Lit(1e-5)}});
                stats[2 * (long)index.X] = mean;
                stats[2 * (long)index.X + 1] = rstd;
                for (int d = 0; d < {{width}}; d++) y[o + d] = (x[o + d] - mean) * rstd * w[d] + b[d];
            }

            /// <summary>dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·w. Row sums are taken before any write, so dx may alias dy.</summary>
            public static void LayerNorm{{width}}Backward(Index1D index, ArrayView<{{n.Type}}> x, ArrayView<{{n.Type}}> w, ArrayView<{{n.Type}}> stats, ArrayView<{{n.Type}}> dy, ArrayView<{{n.Type}}> dx)
            {
                long o = (long)index.X * {{width}};
                {{n.Type}} mean = stats[2 * (long)index.X], rstd = stats[2 * (long)index.X + 1], meanG = 0, meanGx = 0;
                for (int d = 0; d < {{width}}; d++)
                {
                    {{n.Type}} g = dy[o + d] * w[d];
                    meanG += g;
                    meanGx += g * (x[o + d] - mean) * rstd;
                }
                meanG /= {{width}};
                meanGx /= {{width}};
                for (int d = 0; d < {{width}}; d++)
                    dx[o + d] = rstd * (dy[o + d] * w[d] - meanG - (x[o + d] - mean) * rstd * meanGx);
            }

            {{Params(n, width).Kernel}}
            """;

        /// <summary>
        /// The host range entries: the parameter gradients' column reduction, and (float) the row passes in SIMD
        /// lanes; a double build runs those as scalar twins.
        /// </summary>
        static string Host(Numeric n, string width) => Params(n, width).HostEntry + (n.IsDouble ? "" : $$"""


            /// <summary>Runs <see cref="Kernels.LayerNorm{{width}}Forward"/> for rows <paramref name="from"/>…<paramref name="to"/>−1 in SIMD lanes.</summary>
            public static void LayerNorm{{width}}Forward(int from, int to, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, ArrayView<float> stats) =>
                {{Numeric.Runtime}}HostSimd.LayerNormForward(from, to, {{width}}, x, w, b, y, stats);

            /// <summary>Runs <see cref="Kernels.LayerNorm{{width}}Backward"/> for rows <paramref name="from"/>…<paramref name="to"/>−1 in SIMD lanes.</summary>
            public static void LayerNorm{{width}}Backward(int from, int to, ArrayView<float> x, ArrayView<float> w, ArrayView<float> stats, ArrayView<float> dy, ArrayView<float> dx) =>
                {{Numeric.Runtime}}HostSimd.LayerNormBackward(from, to, {{width}}, x, w, stats, dy, dx);
            """);

        static ColumnReduction Params(Numeric n, string width) => new ColumnReduction(n, $"LayerNorm{width}BackwardParams",
            $"dw[d] += Σ_r dy·x̂, db[d] += Σ_r dy. Run both levels before an in-place <c>LayerNorm{width}Backward</c>.",
            new[] { "x", "stats", "dy" }, new[] { "dw", "db" }, new[] { "sw", "sb" },
            $$"""
            {{n.Type}} g = dy[r * {{width}} + d];
            sw += g * (x[r * {{width}} + d] - stats[2 * r]) * stats[2 * r + 1];
            sb += g;
            """,
            "dw[d] += sw;\ndb[d] += sb;", width, n.IsDouble ? null : Numeric.Runtime + "HostSimd.LayerNormParameterPartials", width);
    }
}
