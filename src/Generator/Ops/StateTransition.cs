using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// The state transition a = sigmoid(|r|)·r/|r| of a linear projection r read as complex numbers: the magnitude
    /// is squashed into (0, 1), the phase kept. Backward scales the gradient into r by FracGradientStateTransition
    /// (the forward value is unchanged). The gate loop has one biased pair per head (the bias is its projection's,
    /// added here); the attention baseline's relative positions have an unbiased pair per two channels.
    /// </summary>
    internal sealed class StateTransition : Op
    {
        readonly Param? bias;
        readonly string pairs;
        readonly bool ablateComplex;
        readonly double frac;
        readonly Value input, output;

        /// <param name="pairs">Constant expression: complex numbers per row.</param>
        /// <param name="bias">The projection's bias (its field and module), or null for an unbiased projection.</param>
        public StateTransition(string pairs, bool ablateComplex, double frac, Value input, Value output,
            (string Field, string Name, (string, int) Shape, int FanIn)? bias = null)
        {
            this.pairs = pairs;
            this.ablateComplex = ablateComplex;
            this.frac = frac;
            this.input = input;
            this.output = output;
            if (bias is { } b) this.bias = new Param(b.Field, b.Name, new[] { b.Shape }, "Uniform", b.FanIn);
        }

        bool Bias => bias is not null;

        public override IEnumerable<Param> Parameters => bias is null ? new Param[0] : new[] { bias };

        public override IEnumerable<Value> Outputs => new[] { output };

        // The kernels take the bias after the input, when there is one.
        Arg[] Arguments(Schedule s, params Arg[] rest) =>
            (bias is null ? new Arg[] { input } : new[] { input, s.W(bias) }).Concat(rest).ToArray();

        public override void Forward(Schedule s) => s.Launch("TransitionForward", $"R * {pairs}", Arguments(s, output));

        public override void Backward(Schedule s)
        {
            s.Launch("TransitionBackward", $"R * {pairs}", Arguments(s, output.Grad!, input.Grad!));
            if (bias is not null) s.ColumnSum($"2 * {pairs}", input.Grad!, s.G(bias));
        }

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return Sigmoid.Helper(n);
            yield return new KernelSource("Transition", Kernel(n), Host(n));
        }

        string Kernel(Numeric n)
        {
            string T = n.Type;
            string biasParam = Bias ? $" ArrayView<{T}> bias," : "";
            string pair = Bias ? $"\n    int bp = 2 * (index.X % {pairs}); // this pair's bias" : "";
            string re = Bias ? "rIn[i] + bias[bp]" : "rIn[i]";
            string im = ablateComplex ? "0; // AblateComplex: the imaginary part is dropped" : Bias ? "rIn[i + 1] + bias[bp + 1];" : "rIn[i + 1];";
            string dIm = ablateComplex ? "0" : "Frac * (f * gy + k * y)";
            return $$"""
                const {{T}} Frac = {{n.Lit(frac)}};

                /// <summary>a = σ(m)·(x, y)/m for (x, y) = r{{(Bias ? " + bias" : "")}}, m = |(x, y)|; a = (σ(0), 0) at m = 0.</summary>
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
        string Host(Numeric n)
        {
            if (n.IsDouble) return "";
            string host = Numeric.Runtime + "HostSimd";
            string biasParam = Bias ? " ArrayView<float> bias," : "";
            string layout = $"{(Bias ? pairs : "0")}, {(ablateComplex ? "true" : "false")}";
            string biasArg = Bias ? "bias" : "default";
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
