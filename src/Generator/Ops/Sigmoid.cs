using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>σ(x) = 1/(1 + e^−x), the helper of the kernels and lane maps that squash a gate.</summary>
    internal static class Sigmoid
    {
        public static readonly LaneHelper Function = new LaneHelper("Sigmoid", "σ(x) = 1/(1 + e^−x).", new[] { "x" },
            new (string, Lane)[0], 1 / (1 + Lane.Exp(-(Lane)"x")));

        public static KernelSource Helper(Numeric n) => new KernelSource("Sigmoid", Function.Scalar(n));
    }
}
