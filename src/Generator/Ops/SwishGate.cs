using System.Collections.Generic;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// The seed's swish gating of a mixer's output: y = x·silu(g), g = h·Wgᵀ from its own projection (a separate
    /// Linear op). Backward: dx = dy·silu(g), dg = dy·x·σ(g)·(1 + g·(1 − σ(g))).
    /// </summary>
    internal sealed class SwishGate : Op
    {
        readonly Value input, gates, output;

        public SwishGate(Value input, Value gates, Value output)
        {
            this.input = input;
            this.gates = gates;
            this.output = output;
        }

        public override IEnumerable<Value> Outputs => new[] { output };

        public override void Forward(Schedule s) => s.Launch("SwishGateForward", "R * DimInner", input, gates, output);

        public override void Backward(Schedule s) =>
            s.Launch("SwishGateBackward", "R * DimInner", input, gates, output.Grad!, input.Grad!, gates.Grad!);

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return Sigmoid.Helper(n);
            yield return new KernelSource("SwishGate", Kernel(n), Host(n));
        }

        static string Kernel(Numeric n) => $$"""
            /// <summary>y = x·silu(g), silu(g) = g·σ(g).</summary>
            public static void SwishGateForward(Index1D index, ArrayView<{{n.Type}}> x, ArrayView<{{n.Type}}> g, ArrayView<{{n.Type}}> y)
            {
                {{n.Type}} gv = g[index];
                y[index] = x[index] * gv * Sigmoid(gv);
            }

            /// <summary>dx = dy·silu(g); dg = dy·x·σ(g)·(1 + g·(1 − σ(g))).</summary>
            public static void SwishGateBackward(Index1D index, ArrayView<{{n.Type}}> x, ArrayView<{{n.Type}}> g, ArrayView<{{n.Type}}> dy, ArrayView<{{n.Type}}> dx, ArrayView<{{n.Type}}> dg)
            {
                {{n.Type}} gv = g[index], s = Sigmoid(gv), d = dy[index];
                dx[index] = d * gv * s;
                dg[index] = d * x[index] * s * (1 + gv * (1 - s));
            }
            """;

        /// <summary>Host range entries for the swish gating in SIMD lanes (float only).</summary>
        static string Host(Numeric n) => n.IsDouble ? "" : $$"""
            /// <summary>Runs <see cref="Kernels.SwishGateForward"/> for indices <paramref name="from"/>…<paramref name="to"/>−1 in SIMD lanes.</summary>
            public static void SwishGateForward(int from, int to, ArrayView<float> x, ArrayView<float> g, ArrayView<float> y) =>
                {{Numeric.Runtime}}HostSimd.SwishGateForward(from, to, x, g, y);

            /// <summary>Runs <see cref="Kernels.SwishGateBackward"/> for indices <paramref name="from"/>…<paramref name="to"/>−1 in SIMD lanes.</summary>
            public static void SwishGateBackward(int from, int to, ArrayView<float> x, ArrayView<float> g, ArrayView<float> dy, ArrayView<float> dx, ArrayView<float> dg) =>
                {{Numeric.Runtime}}HostSimd.SwishGateBackward(from, to, x, g, dy, dx, dg);
            """;
    }
}
