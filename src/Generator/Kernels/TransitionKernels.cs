using GateLoop.Generator.Emit;
using GateLoop.Generator.Model;

namespace GateLoop.Generator.Kernels
{
    /// <summary>
    /// The state transition a = sigmoid(|r|)·r/|r| of r = x·Waᵀ + ba read as one complex number per head: the
    /// magnitude is squashed into (0, 1), the phase kept. Backward scales the gradient into r by
    /// FracGradientStateTransition (the forward value is unchanged).
    /// </summary>
    internal static class TransitionKernels
    {
        public static string Emit(TransformerSpec spec, Numeric n)
        {
            string imag = spec.AblateComplex ? "0; // AblateComplex: the imaginary part is dropped" : "rIn[i + 1] + bias[bh + 1];";
            string dImag = spec.AblateComplex ? "0" : "Frac * (f * gy + k * y)";
            return $$"""
                const {{n.Type}} Frac = {{n.Lit(spec.FracGradientStateTransition)}};

                /// <summary>a[r, h] = σ(m)·(x, y)/m for (x, y) = rIn[r, 2h..2h+1] + ba[2h..2h+1], m = |(x, y)|; a = (σ(0), 0) at m = 0.</summary>
                public static void TransitionForward(Index1D index, ArrayView<{{n.Type}}> rIn, ArrayView<{{n.Type}}> bias, ArrayView<{{n.Type}}> a)
                {
                    long i = 2 * (long)index.X;
                    int bh = 2 * (index.X % Heads); // this head's bias pair
                    {{n.Type}} x = rIn[i] + bias[bh];
                    {{n.Type}} y = {{imag}}
                    {{n.Type}} m = {{n.Math}}.Sqrt(x * x + y * y);
                    if (m == 0)
                    {
                        a[i] = {{n.Lit(0.5)}};
                        a[i + 1] = 0;
                        return;
                    }
                    {{n.Type}} f = Sigmoid(m) / m;
                    a[i] = f * x;
                    a[i + 1] = f * y;
                }

                /// <summary>dr = Frac·Jᵀ·da with J = f·I + (f′/m)·r·rᵀ, f = σ(m)/m; da = ∂L/∂Re a + i·∂L/∂Im a.</summary>
                public static void TransitionBackward(Index1D index, ArrayView<{{n.Type}}> rIn, ArrayView<{{n.Type}}> bias, ArrayView<{{n.Type}}> da, ArrayView<{{n.Type}}> dr)
                {
                    long i = 2 * (long)index.X;
                    int bh = 2 * (index.X % Heads); // this head's bias pair
                    {{n.Type}} x = rIn[i] + bias[bh];
                    {{n.Type}} y = {{imag}}
                    {{n.Type}} m = {{n.Math}}.Sqrt(x * x + y * y);
                    if (m == 0)
                    {
                        dr[i] = 0;
                        dr[i + 1] = 0;
                        return;
                    }
                    {{n.Type}} gx = da[i], gy = da[i + 1], s = Sigmoid(m), f = s / m;
                    {{n.Type}} k = (s * (1 - s) * m - s) / (m * m * m) * (x * gx + y * gy);
                    dr[i] = Frac * (f * gx + k * x);
                    dr[i + 1] = {{dImag}};
                }
                """;
        }
    }
}
