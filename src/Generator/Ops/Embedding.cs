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

        // The token ids the model uploads, one per row: a value of this op's program (a program numbers its values,
        // so none is shared between programs built at once).
        readonly Value Tokens = new Value("Inputs", "rows", element: "int");

        /// <param name="output">The rows it writes; their gradient is what backward scatters into the table's.</param>
        public Embedding(string field, string name, (string, int) vocabulary, (string, int) width, Value output)
        {
            table = new Param(field, name, new[] { vocabulary, width }, "Normal", 0);
            this.output = output;
        }

        public override IEnumerable<Param> Parameters => new[] { table };

        public override void Forward(Schedule s) => s.Launch("EmbeddingForward", "R * Dim", Tokens, s.W(table), output);

        public override void Backward(Schedule s) => s.Launch("EmbeddingBackward", "NumTokens * Dim", Tokens, output.Grad!, s.G(table));

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return new KernelSource("Embedding", $$"""
                /// <summary>x[r, d] = emb[token[r], d]. A thread per element, so a warp's loads and stores are consecutive.</summary>
                public static void EmbeddingForward(Index1D index, ArrayView<int> tokens, ArrayView<{{n.Type}}> emb, ArrayView<{{n.Type}}> x)
                {
                    long r = index.X / Dim, d = index.X % Dim;
                    x[index] = emb[(long)tokens[r] * Dim + d];
                }

                /// <summary>
                /// dEmb[v, d] += Σ dx[r, d] over rows whose token is v. One thread per element of the table, so writes
                /// never race; a warp's threads share v and read each token id together.
                /// </summary>
                public static void EmbeddingBackward(Index1D index, ArrayView<int> tokens, ArrayView<{{n.Type}}> dx, ArrayView<{{n.Type}}> dEmb)
                {
                    int v = (int)(index.X / Dim), d = (int)(index.X % Dim);
                    {{n.Type}} sum = dEmb[index];
                    for (long r = 0; r < tokens.Length; r++)
                        if (tokens[r] == v) sum += dx[r * Dim + d];
                    dEmb[index] = sum;
                }
                """, $$"""
                /// <summary>Runs <see cref="Kernels.EmbeddingForward"/> for elements <paramref name="from"/>…<paramref name="to"/>−1, a row's run at a time.</summary>
                public static void EmbeddingForward(int from, int to, ArrayView<int> tokens, ArrayView<{{n.Type}}> emb, ArrayView<{{n.Type}}> x)
                {
                    var ids = new {{Numeric.Runtime}}HostView<int>(tokens);
                    var embHost = new {{Numeric.Runtime}}HostView<{{n.Type}}>(emb);
                    var xHost = new {{Numeric.Runtime}}HostView<{{n.Type}}>(x);
                    for (long i = from; i < to;)
                    {
                        long r = i / Dim, src = (long)ids[r] * Dim + i % Dim, end = global::System.Math.Min(to, (r + 1) * Dim);
                        for (; i < end; i++, src++) xHost[i] = embHost[src];
                    }
                }

                /// <summary>
                /// Runs <see cref="Kernels.EmbeddingBackward"/> for table elements <paramref name="from"/>…<paramref name="to"/>−1:
                /// each row's token once, adding its gradient row's columns that fall in the range, in row order as the kernel sums.
                /// </summary>
                public static void EmbeddingBackward(int from, int to, ArrayView<int> tokens, ArrayView<{{n.Type}}> dx, ArrayView<{{n.Type}}> dEmb)
                {
                    var ids = new {{Numeric.Runtime}}HostView<int>(tokens);
                    var dxHost = new {{Numeric.Runtime}}HostView<{{n.Type}}>(dx);
                    var dEmbHost = new {{Numeric.Runtime}}HostView<{{n.Type}}>(dEmb);
                    for (long r = 0; r < ids.Length; r++)
                    {
                        long first = global::System.Math.Max(from, (long)ids[r] * Dim), end = global::System.Math.Min(to, ((long)ids[r] + 1) * Dim);
                        for (long i = first, j = r * Dim + first - (long)ids[r] * Dim; i < end; i++, j++) dEmbHost[i] += dxHost[j];
                    }
                }
                """);
        }
    }
}
