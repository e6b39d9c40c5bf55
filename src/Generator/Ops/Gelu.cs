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
            yield return new KernelSource("Phi", n.IsDouble ? PhiDouble(n) : PhiFloat(n));
            yield return new KernelSource("GeluForward", Forward(n), n.IsDouble ? "" : $$"""
                /// <summary>Runs <see cref="Kernels.GeluForward"/> for indices <paramref name="from"/>…<paramref name="to"/>−1 in SIMD lanes.</summary>
                public static void GeluForward(int from, int to, ArrayView<float> u, ArrayView<float> z) =>
                    {{Numeric.Runtime}}HostSimd.GeluForward(from, to, u, z);
                """);
            yield return new KernelSource("GeluBackward", Backward(n), n.IsDouble ? "" : $$"""
                /// <summary>Runs <see cref="Kernels.GeluBackward"/> for indices <paramref name="from"/>…<paramref name="to"/>−1 in SIMD lanes.</summary>
                public static void GeluBackward(int from, int to, ArrayView<float> u, ArrayView<float> dz, ArrayView<float> du) =>
                    {{Numeric.Runtime}}HostSimd.GeluBackward(from, to, u, dz, du);
                """);
        }

        // Φ(v) = (1 + erf(v/√2))/2, and erf(x) has the factor e^{−x²} = e^{−v²/2}: GELU's forward and backward need
        // that exponential anyway (the backward for φ(v)), so the caller computes it once and passes it in.

        // Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7, within float rounding. The sign is a select of
        // floats (a GPU predicates it); CopySign would be shorter, but ILGPU's PTX for it swaps the operands.
        static string PhiFloat(Numeric n) => $$"""
            /// <summary>The standard normal CDF Φ(v), given gauss = e^{−v²/2} (erf by Abramowitz–Stegun 7.1.26).</summary>
            static float Phi(float v, float gauss)
            {
                float t = 1 / (1 + {{n.Lit(0.3275911 / System.Math.Sqrt(2))}} * global::System.MathF.Abs(v));
                float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
                float erf = 1 - poly * gauss;
                return 0.5f + 0.5f * (v < 0 ? -erf : erf);
            }
            """;

        // The all-positive series erf(x) = 2/√π·e^{−x²}·Σ 2ⁿx^{2n+1}/(2n+1)!! has no cancellation, so it is exact to
        // double rounding; beyond |x| = 6, erf is 1 to within 2e-17.
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

        // The double build, used for verification, runs the scalar twins on the host; the float one SIMD lanes.
        static string Forward(Numeric n) => $$"""
            /// <summary>z = gelu(u) = u·Φ(u) with the exact erf.</summary>
            public static void GeluForward(Index1D index, ArrayView<{{n.Type}}> u, ArrayView<{{n.Type}}> z)
            {
                {{n.Type}} v = u[index];
                z[index] = v * Phi(v, {{n.Math}}.Exp({{n.Lit(-0.5)}} * v * v));
            }
            """;

        static string Backward(Numeric n) => $$"""
            /// <summary>du = dz·(Φ(u) + u·φ(u)); du may alias dz.</summary>
            public static void GeluBackward(Index1D index, ArrayView<{{n.Type}}> u, ArrayView<{{n.Type}}> dz, ArrayView<{{n.Type}}> du)
            {
                {{n.Type}} v = u[index], gauss = {{n.Math}}.Exp({{n.Lit(-0.5)}} * v * v);
                du[index] = dz[index] * (Phi(v, gauss) + v * gauss * {{n.Lit(1 / System.Math.Sqrt(2 * System.Math.PI))}});
            }
            """;
    }
}
