using GateLoop.Generator.Emit;

namespace GateLoop.Generator.Kernels
{
    /// <summary>Token embedding lookup and its scatter-add gradient.</summary>
    internal static class EmbeddingKernels
    {
        public static string Emit(Numeric n) => $$"""
            /// <summary>x[r] = emb[token[r]].</summary>
            public static void EmbeddingForward(Index1D index, ArrayView<int> tokens, ArrayView<{{n.Type}}> emb, ArrayView<{{n.Type}}> x)
            {
                long src = (long)tokens[index] * Dim, dst = (long)index.X * Dim;
                for (int d = 0; d < Dim; d++) x[dst + d] = emb[src + d];
            }

            /// <summary>dEmb[v] += Σ dx[r] over rows whose token is v. One thread per vocabulary row, so writes never race.</summary>
            public static void EmbeddingBackward(Index1D index, ArrayView<int> tokens, ArrayView<{{n.Type}}> dx, ArrayView<{{n.Type}}> dEmb)
            {
                int v = index;
                long dst = (long)v * Dim;
                for (long r = 0; r < tokens.Length; r++)
                {
                    if (tokens[r] != v) continue;
                    long src = r * Dim;
                    for (int d = 0; d < Dim; d++) dEmb[dst + d] += dx[src + d];
                }
            }
            """;
    }
}
