using System.Collections.Generic;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>Token embedding lookup (PyTorch's nn.Embedding, N(0, 1) init) and its scatter-add gradient.</summary>
    internal sealed class Embedding : Op
    {
        readonly Param table;
        readonly Value output;

        // The token ids the model uploads, one per row.
        static readonly Value Tokens = new Value("Inputs", "rows", element: "int");

        /// <param name="output">The rows it writes; their gradient is what backward scatters into the table's.</param>
        public Embedding(string field, string name, (string, int) vocabulary, (string, int) width, Value output)
        {
            table = new Param(field, name, new[] { vocabulary, width }, "Normal", 0);
            this.output = output;
        }

        public override IEnumerable<Param> Parameters => new[] { table };

        public override void Forward(Schedule s) => s.Launch("EmbeddingForward", "R", Tokens, s.W(table), output);

        public override void Backward(Schedule s) => s.Launch("EmbeddingBackward", "NumTokens", Tokens, output.Grad!, s.G(table));

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return new KernelSource("Embedding", $$"""
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
                """);
        }
    }
}
