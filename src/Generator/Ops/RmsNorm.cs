using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// RMSNorm(x) = x / max(‖x‖, 1e-12) · √Dim · γ over rows of Dim, a row per warp (the seed's RMSNorm, γ = 1 at
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

        public override void Forward(Schedule s) => s.Launch("RmsNormForward", LaneRow.Domain("R"), input, s.W(gamma), output, invNorm);

        public override void Backward(Schedule s)
        {
            s.EnsureHolding(input);
            s.Launch("RmsNormBackward", LaneRow.Domain("R"), input, s.W(gamma), invNorm, output.Grad!, input.Grad!);
            ColumnReductions.Launch(s, "RmsNormBackwardGamma", "Dim", partials, new Arg[] { input, invNorm, output.Grad! }, new[] { s.G(gamma) });
        }

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return new KernelSource("RmsNorm", Kernel(n, dim), Host(n));
            foreach (var lanes in KernelSource.LanesOf(ForwardRow, n).Concat(KernelSource.LanesOf(BackwardRow, n))) yield return lanes;
            yield return ColumnReductions.PartLength;
            yield return new KernelSource("RowLanes", LaneRow.Shared(n));
        }

        static string Kernel(Numeric n, int dim) => $$"""
            const {{n.Type}} RmsScale = {{n.Lit(System.Math.Sqrt(dim))}}, RmsEps = {{n.Lit(1e-12)}};

            {{ForwardRow.Kernel(n)}}

            {{BackwardRow.Kernel(n)}}

            {{Gamma(n).Kernel}}
            """;

        /// <summary>
        /// The host range entries: γ's column reduction, and the row passes over whole rows (in SIMD lanes
        /// for float).
        /// </summary>
        static string Host(Numeric n) =>
            string.Join("\n\n", new[] { Gamma(n).HostEntry, ForwardRow.HostEntry(n), BackwardRow.HostEntry(n) }.Where(t => t.Length > 0));

        // max(‖x‖, eps) as a select, which keeps a NaN.
        static readonly LaneRow ForwardRow = new LaneRow("RmsNormForward",
            "y = x·invNorm·√Dim·γ; invNorm[r] = 1 / max(‖x_r‖, eps) is kept for backward.",
            "Dim", new[] { "x", "gamma", "y", "invNorm" }, new[] { ("x", "xe", false), ("gamma", "ge", true) },
            new (string, string, int, int)[0], new (string, Lane)[0],
            new[]
            {
                new LaneRow.Pass(new[] { ("ss", (Lane)"xe" * "xe") },
                    new[] { ("norm", Lane.Sqrt("ss")), ("inv", 1 / Lane.IfLess("norm", "RmsEps", "RmsEps", "norm")), ("s", (Lane)"inv" * "RmsScale") }),
            },
            new[] { ("invNorm", 1, 0, (Lane)"inv") },
            new[] { ("y", (Lane)"xe" * "s" * "ge", false) });

        static readonly LaneRow BackwardRow = new LaneRow("RmsNormBackward",
            "dx += n·g − n³·x·(g·x) with g = dy·γ·√Dim; a clamped norm is a constant, leaving n·g.",
            "Dim", new[] { "x", "gamma", "invNorm", "dy", "dx" }, new[] { ("x", "xe", false), ("gamma", "ge", true), ("dy", "dye", false) },
            new[] { ("inv", "invNorm", 1, 0) }, new (string, Lane)[0],
            new[]
            {
                new LaneRow.Pass(new[] { ("dot", (Lane)"dye" * "ge" * "xe"), ("ss", (Lane)"xe" * "xe") },
                    new[] { ("c", Lane.IfLess("RmsEps", Lane.Sqrt("ss"), (Lane)"inv" * "inv" * "inv" * "dot" * "RmsScale", 0)), ("a", (Lane)"inv" * "RmsScale") }),
            },
            new (string, int, int, Lane)[0],
            new[] { ("dx", (Lane)"a" * "dye" * "ge" - (Lane)"c" * "xe", true) });

        static ColumnReduction Gamma(Numeric n) => new ColumnReduction(n, "RmsNormBackwardGamma",
            "dγ[d] += Σ_r dy·x·invNorm·√Dim.",
            new[] { "x", "invNorm", "dy" }, new[] { "dGamma" }, new[] { "sum" },
            "sum += dy[r * Dim + d] * x[r * Dim + d] * invNorm[r];",
            "dGamma[d] += sum * RmsScale;", "Dim", n.IsDouble ? null : Numeric.Runtime + "HostSimd.RmsNormGammaPartials", "Dim");
    }
}
