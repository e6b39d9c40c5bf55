using System.Linq;

namespace GateLoop.Generator.Templates
{
    /// <summary>
    /// Column reductions over a row-major matrix (weight gradients of norms): sums over every row per column,
    /// then a final update. The kernel gives each column a thread (coalesced on a GPU); the host entry runs the
    /// same step with the loops swapped, rows outside and a run of adjacent columns inside, so the host reads
    /// whole cache lines rather than one value per line.
    /// </summary>
    internal sealed class ColumnReduction
    {
        readonly Numeric n;
        readonly string name, summary, parameters, step, finish;
        readonly string? simd;
        readonly string width;
        readonly string[] sums;

        /// <param name="views">The view parameters after <c>rows</c>, all of the element type.</param>
        /// <param name="sums">The running sums per column.</param>
        /// <param name="step">Adds row r of column d to the sums.</param>
        /// <param name="finish">Writes column d's result from the sums.</param>
        /// <param name="simd">A runtime method for whole groups of 8 columns, called as (from, to, rows, the row width, the views).</param>
        /// <param name="width">The row width (a constant expression).</param>
        public ColumnReduction(Numeric n, string name, string summary, string[] views, string[] sums, string step, string finish,
            string? simd = null, string width = "")
        {
            this.simd = simd;
            this.width = width;
            this.n = n;
            this.name = name;
            this.summary = summary;
            parameters = string.Join(", ", views.Select(v => $"ArrayView<{n.Type}> {v}"));
            this.sums = sums;
            this.step = step;
            this.finish = finish;
        }

        string Load => HostEntryText.Load(n, sums);

        string Store => HostEntryText.Store(sums);

        public string Kernel => $$"""
            /// <summary>{{summary}}</summary>
            public static void {{name}}(Index1D index, int rows, {{parameters}})
            {
                int d = index;
                {{n.Type}} {{string.Join(", ", sums.Select(s => s + " = 0"))}};
                for (long r = 0; r < rows; r++)
                {
                    {{CodeWriter.Indent(step, 8)}}
                }
                {{CodeWriter.Indent(finish, 4)}}
            }
            """;

        public string HostEntry
        {
            get
            {
                return $$"""
                    {{HostEntryText.Entry(n, name, "columns <paramref name=\"from\"/>…<paramref name=\"to\"/>−1: rows outside, columns inside",
                        "int rows", parameters, name + "Columns", simd, width)}}

                    static void {{name}}Columns(int from, int to, int rows, {{HostEntryText.PointerParameters(parameters, n)}})
                    {
                        const int Run = 256;
                        global::System.Span<{{n.Type}}> run = stackalloc {{n.Type}}[{{sums.Length}} * Run];
                        for (int first = from; first < to; first += Run)
                        {
                            int end = global::System.Math.Min(to, first + Run);
                            run.Clear();
                            for (long r = 0; r < rows; r++)
                                for (int d = first, j = 0; d < end; d++, j++)
                                {
                                    {{Load}}
                                    {{CodeWriter.Indent(step, 16)}}
                                    {{Store}}
                                }
                            for (int d = first, j = 0; d < end; d++, j++)
                            {
                                {{Load}}
                                {{CodeWriter.Indent(finish, 12)}}
                            }
                        }
                    }
                    """;
            }
        }
    }
}
