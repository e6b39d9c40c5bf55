using GateLoop.Generator.Emit;

namespace GateLoop.Generator.Kernels
{
    /// <summary>Residual sums and biases (bias gradients are the device's column sums).</summary>
    internal static class ElementwiseKernels
    {
        /// <summary>out = a + b (a residual without an output projection).</summary>
        public static string Add(Numeric n) => $$"""
            /// <summary>sum = a + b.</summary>
            public static void Add(Index1D index, ArrayView<{{n.Type}}> a, ArrayView<{{n.Type}}> b, ArrayView<{{n.Type}}> sum) =>
                sum[index] = a[index] + b[index];
            """;

        /// <param name="width">The constant naming the bias length.</param>
        public static string AddBias(Numeric n, string width) => $$"""
            /// <summary>x[r, c] += bias[c] for rows of {{width}}.</summary>
            public static void AddBias{{width}}(Index1D index, ArrayView<{{n.Type}}> x, ArrayView<{{n.Type}}> bias) =>
                x[index] += bias[index.X % {{width}}];
            """;
    }
}
