using GateLoop.Generator.Emit;
using GateLoop.Generator.Model;

namespace GateLoop.Generator.Kernels
{
    /// <summary>
    /// The state transition a = sigmoid(|r|)·r/|r| of a linear projection r read as complex numbers: the magnitude
    /// is squashed into (0, 1), the phase kept. Backward scales the gradient into r by FracGradientStateTransition
    /// (the forward value is unchanged). The gate loop has one biased pair per head; the attention baseline's
    /// relative positions have an unbiased pair per two channels.
    /// </summary>
    internal static class TransitionKernels
    {
        /// <param name="pairs">Constant expression: complex numbers per row.</param>
        /// <param name="bias">Whether the projection has a bias (added here, before the map).</param>
        public static string Emit(TransformerSpec spec, Numeric n, string pairs, bool bias)
        {
            string T = n.Type;
            string biasParam = bias ? $" ArrayView<{T}> bias," : "";
            string pair = bias ? $"\n    int bp = 2 * (index.X % {pairs}); // this pair's bias" : "";
            string re = bias ? "rIn[i] + bias[bp]" : "rIn[i]";
            string im = spec.AblateComplex ? "0; // AblateComplex: the imaginary part is dropped" : bias ? "rIn[i + 1] + bias[bp + 1];" : "rIn[i + 1];";
            string dIm = spec.AblateComplex ? "0" : "Frac * (f * gy + k * y)";
            return $$"""
                const {{T}} Frac = {{n.Lit(spec.FracGradientStateTransition)}};

                /// <summary>a = σ(m)·(x, y)/m for (x, y) = r{{(bias ? " + bias" : "")}}, m = |(x, y)|; a = (σ(0), 0) at m = 0.</summary>
                public static void TransitionForward(Index1D index, ArrayView<{{T}}> rIn,{{biasParam}} ArrayView<{{T}}> a)
                {
                    long i = 2 * (long)index.X;{{pair}}
                    {{T}} x = {{re}};
                    {{T}} y = {{im}}
                    {{T}} m = {{n.Math}}.Sqrt(x * x + y * y);
                    if (m == 0)
                    {
                        a[i] = {{n.Lit(0.5)}};
                        a[i + 1] = 0;
                        return;
                    }
                    {{T}} f = Sigmoid(m) / m;
                    a[i] = f * x;
                    a[i + 1] = f * y;
                }

                /// <summary>dr = Frac·Jᵀ·da with J = f·I + (f′/m)·r·rᵀ, f = σ(m)/m; da = ∂L/∂Re a + i·∂L/∂Im a.</summary>
                public static void TransitionBackward(Index1D index, ArrayView<{{T}}> rIn,{{biasParam}} ArrayView<{{T}}> da, ArrayView<{{T}}> dr)
                {
                    long i = 2 * (long)index.X;{{pair}}
                    {{T}} x = {{re}};
                    {{T}} y = {{im}}
                    {{T}} m = {{n.Math}}.Sqrt(x * x + y * y);
                    if (m == 0)
                    {
                        dr[i] = 0;
                        dr[i + 1] = 0;
                        return;
                    }
                    {{T}} gx = da[i], gy = da[i + 1], s = Sigmoid(m), f = s / m;
                    {{T}} k = (s * (1 - s) * m - s) / (m * m * m) * (x * gx + y * gy);
                    dr[i] = Frac * (f * gx + k * x);
                    dr[i + 1] = {{dIm}};
                }
                """;
        }

        /// <summary>Host range entries in SIMD lanes (float only; a double build runs the scalar twins).</summary>
        public static string HostEntries(TransformerSpec spec, Numeric n, string pairs, bool bias)
        {
            if (n.IsDouble) return "";
            string host = ModelSource.Runtime + "HostSimd";
            string biasParam = bias ? " ArrayView<float> bias," : "";
            string layout = $"{(bias ? pairs : "0")}, {(spec.AblateComplex ? "true" : "false")}";
            string biasArg = bias ? "bias" : "default";
            return $$"""
                /// <summary>Runs <see cref="Kernels.TransitionForward"/> for pairs <paramref name="from"/>…<paramref name="to"/>−1 in SIMD lanes.</summary>
                public static void TransitionForward(int from, int to, ArrayView<float> rIn,{{biasParam}} ArrayView<float> a) =>
                    {{host}}.TransitionForward(from, to, {{layout}}, rIn, {{biasArg}}, a);

                /// <summary>Runs <see cref="Kernels.TransitionBackward"/> for pairs <paramref name="from"/>…<paramref name="to"/>−1 in SIMD lanes.</summary>
                public static void TransitionBackward(int from, int to, ArrayView<float> rIn,{{biasParam}} ArrayView<float> da, ArrayView<float> dr) =>
                    {{host}}.TransitionBackward(from, to, {{layout}}, Frac, rIn, {{biasArg}}, da, dr);
                """;
        }
    }
}
