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
            yield return new KernelSource("Transition", $"const {n.Type} Frac = {n.Lit(frac)};");
            foreach (var source in KernelSource.Of(ForwardPairs, n).Concat(KernelSource.Of(BackwardPairs, n))) yield return source;
        }

        static readonly LanePairs.Input RIn = new LanePairs.Input("rIn", "rin", "xin", "yin"), BiasRow = new LanePairs.Input("bias", "b", "bx", "by");

        // r = rIn (+ bias) as complex pairs; AblateComplex drops the imaginary part.
        LanePairs.Local R => new LanePairs.Local("r", ablateComplex ? Lane.Pair(Biased, 0) : Biased, "x", "y");

        Lane Biased => Bias ? (Lane)"rin" + "b" : "rin";

        LanePairs ForwardPairs => new LanePairs("TransitionForward",
            $"a = σ(m)·(x, y)/m for (x, y) = r{(Bias ? " + bias" : "")}, m = |(x, y)|; a = (σ(0), 0) at m = 0.",
            new[] { RIn }, Bias ? BiasRow : null, pairs,
            new[] { R, new LanePairs.Local("m", Lane.Sqrt(Lane.PairSum((Lane)"r" * "r"))), new LanePairs.Local("f", Sigmoid.Function.Call("m") / "m") },
            ("a", Lane.IfZero("m", Lane.Pair(0.5, 0), (Lane)"f" * "r")));

        LanePairs BackwardPairs
        {
            get
            {
                Lane dr = (Lane)"Frac" * ((Lane)"f" * "g" + (Lane)"k" * "r");
                return new LanePairs("TransitionBackward",
                    "dr = Frac·Jᵀ·da with J = f·I + (f′/m)·r·rᵀ, f = σ(m)/m; da = ∂L/∂Re a + i·∂L/∂Im a.",
                    new[] { RIn, new LanePairs.Input("da", "g", "gx", "gy") }, Bias ? BiasRow : null, pairs,
                    new[]
                    {
                        R, new LanePairs.Local("m", Lane.Sqrt(Lane.PairSum((Lane)"r" * "r"))), new LanePairs.Local("s", Sigmoid.Function.Call("m")),
                        new LanePairs.Local("f", (Lane)"s" / "m"),
                        new LanePairs.Local("k", ((Lane)"s" * (1 - (Lane)"s") * "m" - "s") / ((Lane)"m" * "m" * "m") * Lane.PairSum((Lane)"r" * "g")),
                    },
                    ("dr", Lane.IfZero("m", 0, ablateComplex ? Lane.Pair(dr, 0) : dr)), "Frac");
            }
        }
    }
}
