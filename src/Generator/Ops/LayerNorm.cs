using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// PyTorch's nn.LayerNorm over rows of a constant width (eps 1e-5, biased variance; w = 1, b = 0 at init), a
    /// row per warp. Backward: the parameter gradients' column sums, then dx (which may be dy's own buffer).
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
            s.Launch($"LayerNorm{width}Forward", LaneRow.Domain("R"), input, s.W(weight), s.W(bias), output, stats);

        public override void Backward(Schedule s)
        {
            ColumnReductions.Launch(s, $"LayerNorm{width}BackwardParams", width, partials, new Arg[] { input, stats, output.Grad! },
                new[] { s.G(weight), s.G(bias) });
            s.Launch($"LayerNorm{width}Backward", LaneRow.Domain("R"), input, s.W(weight), stats, output.Grad!, input.Grad!);
        }

        // The forward apart from the backward: a rewrite that fuses the forward into another launch (Fusion.AddsIntoRow)
        // leaves no unlaunched kernel behind.
        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return new KernelSource($"LayerNorm{width}Forward", ForwardRow(width).Kernel(n), ForwardRow(width).HostEntry(n));
            yield return new KernelSource($"LayerNorm{width}Backward", $"{BackwardRow(width).Kernel(n)}\n\n{Params(n, width).Kernel}", Host(n, width));
            foreach (var lanes in KernelSource.LanesOf(ForwardRow(width), n).Concat(KernelSource.LanesOf(BackwardRow(width), n))) yield return lanes;
            yield return ColumnReductions.PartLength;
            yield return new KernelSource("RowLanes", LaneRow.Shared(n));
        }

        /// <summary>
        /// The backward's host range entries: the parameter gradients' column reduction, and the row pass over whole
        /// rows (in SIMD lanes for float).
        /// </summary>
        static string Host(Numeric n, string width) =>
            string.Join("\n\n", new[] { Params(n, width).HostEntry, BackwardRow(width).HostEntry(n) }.Where(t => t.Length > 0));

        /// <param name="width">The name of the constant holding the row width (Dim or DimInner).</param>
        static LaneRow ForwardRow(string width) => new LaneRow($"LayerNorm{width}Forward", "y = (x − μ)·rstd·w + b; stats[2r] = μ, stats[2r+1] = rstd.",
            width, new[] { "x", "w", "b", "y", "stats" }, new[] { ("x", "xe", false), ("w", "we", true), ("b", "be", true) },
            new (string, string, int, int)[0], new (string, Lane)[0],
            new[]
            {
                new LaneRow.Pass(new[] { ("sum", (Lane)"xe") }, new[] { ("mean", (Lane)"sum" / width) }),
                new LaneRow.Pass(new[] { ("squares", ((Lane)"xe" - "mean") * ((Lane)"xe" - "mean")) },
                    new[] { ("rstd", 1 / Lane.Sqrt((Lane)"squares" / width + 1e-5)) }),
            },
            new[] { ("stats", 2, 0, (Lane)"mean"), ("stats", 2, 1, (Lane)"rstd") },
            new[] { ("y", ((Lane)"xe" - "mean") * "rstd" * "we" + "be", false) });

        static LaneRow BackwardRow(string width) => new LaneRow($"LayerNorm{width}Backward",
            "dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·w. Row sums are taken before any write, so dx may alias dy.",
            width, new[] { "x", "w", "stats", "dy", "dx" }, new[] { ("x", "xe", false), ("w", "we", true), ("dy", "dye", false) },
            new[] { ("mean", "stats", 2, 0), ("rstd", "stats", 2, 1) }, new[] { ("g", (Lane)"dye" * "we") },
            new[]
            {
                new LaneRow.Pass(new[] { ("sumG", (Lane)"g"), ("sumGx", (Lane)"g" * ((Lane)"xe" - "mean") * "rstd") },
                    new[] { ("meanG", (Lane)"sumG" / width), ("meanGx", (Lane)"sumGx" / width) }),
            },
            new (string, int, int, Lane)[0],
            new[] { ("dx", (Lane)"rstd" * ((Lane)"g" - "meanG" - ((Lane)"xe" - "mean") * "rstd" * "meanGx"), false) });

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
