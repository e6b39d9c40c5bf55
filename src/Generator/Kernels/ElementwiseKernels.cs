using GateLoop.Generator.Emit;

namespace GateLoop.Generator.Kernels
{
    /// <summary>Residual sums, biases and their column-sum gradients.</summary>
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

        /// <param name="name">Kernel name suffix.</param>
        /// <param name="width">A constant expression for the row width (parenthesized if compound).</param>
        public static string ColumnSum(Numeric n, string name, string width) => $$"""
            /// <summary>dst[c] += Σ_r m[r, c] over rows of {{width}} columns (bias gradients); one column per thread.</summary>
            public static void ColumnSum{{name}}(Index1D index, int rows, ArrayView<{{n.Type}}> m, ArrayView<{{n.Type}}> dst)
            {
                int c = index;
                {{n.Type}} sum = 0;
                for (long r = 0; r < rows; r++) sum += m[r * {{width}} + c];
                dst[c] += sum;
            }
            """;
    }
}
