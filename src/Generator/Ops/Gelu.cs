using System.Collections.Generic;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// The exact GELU of the feed-forward block, u·Φ(u) with the erf (PyTorch's nn.GELU()). Backward:
    /// du = dz·(Φ(u) + u·φ(u)) in place. The first Linear's bias before it is fused into its kernel by a rewrite.
    /// </summary>
    internal sealed class Gelu : Op
    {
        readonly Value pre, output;

        /// <param name="pre">Its input, kept for backward; its gradient may be the output's buffer.</param>
        public Gelu(Value pre, Value output)
        {
            this.pre = pre;
            this.output = output;
        }

        public override IEnumerable<Value> Outputs => new[] { output };

        public override void Forward(Schedule s) => s.Launch("GeluForward", "R * Hidden", pre, output);

        public override void Backward(Schedule s) => s.Launch("GeluBackward", "R * Hidden", pre, output.Grad!, pre.Grad!);

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return new KernelSource("Phi", n.IsDouble ? PhiDouble(n) : Phi.Scalar(n));
            foreach (var source in KernelSource.Of(ForwardMap, n)) yield return source;
            foreach (var source in KernelSource.Of(BackwardMap, n)) yield return source;
        }

        // Φ(v) = (1 + erf(v/√2))/2, and erf(x) has the factor e^{−x²} = e^{−v²/2}: GELU's forward and backward need
        // that exponential anyway (the backward for φ(v)), so the caller computes it once and passes it in.

        // Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7, within float rounding; the float kernels' helper
        // and the host's lanes. The sign is a select of floats (a GPU predicates it); CopySign would be shorter, but
        // ILGPU's PTX for it swaps the operands.
        static readonly LaneHelper Phi = new LaneHelper("Phi",
            "The standard normal CDF Φ(v), given gauss = e^{−v²/2} (erf by Abramowitz–Stegun 7.1.26).", new[] { "v", "gauss" },
            new[]
            {
                ("t", 1 / (1 + 0.3275911 / System.Math.Sqrt(2) * Lane.Abs("v"))),
                ("poly", ((((1.061405429 * (Lane)"t" - 1.453152027) * "t" + 1.421413741) * "t" - 0.284496736) * "t" + 0.254829592) * "t"),
                ("erf", 1 - (Lane)"poly" * "gauss"),
            },
            0.5 + 0.5 * Lane.IfLess("v", 0, -(Lane)"erf", "erf"));

        // The all-positive series erf(x) = 2/√π·e^{−x²}·Σ 2ⁿx^{2n+1}/(2n+1)!! has no cancellation, so it is exact to
        // double rounding; beyond |x| = 6, erf is 1 to within 2e-17. Only a double build (verification) uses it.
        static string PhiDouble(Numeric n) => $$"""
            /// <summary>The standard normal CDF Φ(v), given gauss = e^{−v²/2} (erf by its all-positive series; ±1 beyond |v/√2| = 6).</summary>
            static double Phi(double v, double gauss)
            {
                double ax = global::System.Math.Abs(v) * {{n.Lit(1 / System.Math.Sqrt(2))}};
                if (ax >= 6) return v < 0 ? 0.0 : 1.0;
                double term = ax, sum = ax;
                for (int k = 1; k < 400 && term > sum * 1e-17; k++)
                {
                    term *= 2 * ax * ax / (2 * k + 1);
                    sum += term;
                }
                double erf = {{n.Lit(2 / System.Math.Sqrt(System.Math.PI))}} * gauss * sum;
                return 0.5 + 0.5 * (v < 0 ? -erf : erf);
            }
            """;

        static Lane Gauss(Lane v) => Lane.Exp(-0.5 * v * v);

        static readonly LaneMap ForwardMap = new LaneMap("GeluForward", "z = gelu(u) = u·Φ(u) with the exact erf.",
            new[] { ("u", "v") }, new (string, Lane)[0], new[] { ("z", (Lane)"v" * Phi.Call("v", Gauss("v"))) });

        static readonly LaneMap BackwardMap = new LaneMap("GeluBackward", "du = dz·(Φ(u) + u·φ(u)); du may alias dz.",
            new[] { ("u", "v"), ("dz", "d") }, new[] { ("gauss", Gauss("v")) },
            new[] { ("du", (Lane)"d" * (Phi.Call("v", "gauss") + (Lane)"v" * "gauss" * (1 / System.Math.Sqrt(2 * System.Math.PI)))) });
    }
}
