using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>σ(x) = 1/(1 + e^−x), the scalar helper of the kernels that squash a gate.</summary>
    internal static class Sigmoid
    {
        public static KernelSource Helper(Numeric n) =>
            new KernelSource("Sigmoid", $"static {n.Type} Sigmoid({n.Type} x) => 1 / (1 + {n.Math}.Exp(-x));");
    }
}
