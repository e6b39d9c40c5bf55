using System.Linq;

namespace GateLoop.Generator.Templates
{
    /// <summary>
    /// Column reductions over a row-major matrix (weight gradients of norms) in two levels, so that a GPU has
    /// threads enough and no thread walks every row: <c>{name}Partials</c> gives each run of
    /// <c>Kernels.ColumnPart</c> rows and each column a thread, which sums that run into a partial; <c>{name}</c>
    /// sums each column's partials in order and writes its result. The first level's host entry runs each part with
    /// the loops swapped, rows outside and a run of adjacent columns inside, so the host reads whole cache lines.
    /// </summary>
    internal sealed class ColumnReduction
    {
        readonly Numeric n;
        readonly string name, summary, inputs, outputs, step, finish, columns;
        readonly string? simd;
        readonly string simdExtra;
        readonly string[] sums;

        /// <param name="inputs">The views the step reads, all of the element type.</param>
        /// <param name="outputs">The views the finish writes.</param>
        /// <param name="sums">The running sums per column.</param>
        /// <param name="step">Adds row r of column d to the sums.</param>
        /// <param name="finish">Writes column d's result from the sums.</param>
        /// <param name="columns">The row width, a constant of the model.</param>
        /// <param name="simd">
        /// A runtime method for whole groups of 8 columns of one part, called as (from, to, first row, end row,
        /// <paramref name="simdExtra"/>, the inputs, the part's partials), which writes sum k of column d at
        /// partials[k·columns + d].
        /// </param>
        public ColumnReduction(Numeric n, string name, string summary, string[] inputs, string[] outputs, string[] sums, string step,
            string finish, string columns, string? simd = null, string simdExtra = "")
        {
            this.n = n;
            this.name = name;
            this.summary = summary;
            this.inputs = Views(inputs);
            this.outputs = Views(outputs);
            this.sums = sums;
            this.step = step;
            this.finish = finish;
            this.columns = columns;
            this.simd = simd;
            this.simdExtra = simdExtra;
        }

        string Views(string[] names) => string.Join(", ", names.Select(v => $"ArrayView<{n.Type}> {v}"));

        string Zeros => string.Join(", ", sums.Select(s => s + " = 0"));

        // Sum k of column d in a part's partials, and a part's length.
        string Slot(int k) => k == 0 ? "d" : k == 1 ? $"{columns} + d" : $"{k} * {columns} + d";

        string PartLength => sums.Length == 1 ? columns : $"{sums.Length} * {columns}";

        public string Kernel => $$"""
            /// <summary>The first level of {{name}}: thread part·{{columns}} + d sums rows part·ColumnPart… of column d into partials[part].</summary>
            public static void {{name}}Partials(Index1D index, int rows, {{inputs}}, ArrayView<{{n.Type}}> partials)
            {
                int d = (int)(index.X % {{columns}});
                long part = index.X / {{columns}}, first = part * ColumnPart, end = first + ColumnPart < rows ? first + ColumnPart : rows;
                {{n.Type}} {{Zeros}};
                for (long r = first; r < end; r++)
                {
                    {{CodeWriter.Indent(step, 8)}}
                }
                long o = part * {{PartLength}};
                {{string.Join(" ", sums.Select((s, k) => $"partials[o + {Slot(k)}] = {s};"))}}
            }

            /// <summary>{{summary}} Sums column d's <paramref name="parts"/> partials in order.</summary>
            public static void {{name}}(Index1D index, int parts, ArrayView<{{n.Type}}> partials, {{outputs}})
            {
                int d = index;
                {{n.Type}} {{Zeros}};
                for (long p = 0; p < parts; p++)
                {
                    long o = p * {{PartLength}};
                    {{string.Join(" ", sums.Select((s, k) => $"{s} += partials[o + {Slot(k)}];"))}}
                }
                {{CodeWriter.Indent(finish, 4)}}
            }
            """;

        /// <summary>The first level's host entry (the second's is its kernel's twin).</summary>
        public string HostEntry
        {
            get
            {
                string view = Numeric.Runtime + "HostView<" + n.Type + ">";
                string pointers = HostEntryText.PointerParameters(inputs, n), names = HostEntryText.Names(inputs);
                string wrapped = HostEntryText.PointerArguments(inputs, n);
                string middle = simd is null
                    ? $"{name}Run(first, end, r0, r1, {wrapped}, part);"
                    : $$"""
                    int head = global::System.Math.Min(end, (first + 7) / 8 * 8), tail = global::System.Math.Max(head, end / 8 * 8);
                    {{name}}Run(first, head, r0, r1, {{wrapped}}, part);
                    {{simd}}(head, tail, r0, r1, {{simdExtra}}, {{names}}, partials.SubView(o));
                    {{name}}Run(tail, end, r0, r1, {{wrapped}}, part);
                    """;
                return $$"""
                    /// <summary>Runs <see cref="Kernels.{{name}}Partials"/> for indices <paramref name="from"/>…<paramref name="to"/>−1: each part's columns, rows outside, columns inside{{(simd is null ? "" : "; whole groups of 8 in SIMD registers")}}.</summary>
                    public static void {{name}}Partials(int from, int to, int rows, {{inputs}}, ArrayView<{{n.Type}}> partials)
                    {
                        for (int i = from; i < to;)
                        {
                            int p = i / {{columns}}, first = i % {{columns}}, end = global::System.Math.Min({{columns}}, first + (to - i));
                            long r0 = (long)p * Kernels.ColumnPart, r1 = global::System.Math.Min(rows, r0 + Kernels.ColumnPart), o = (long)p * {{PartLength}};
                            var part = new {{view}}(partials.SubView(o, {{PartLength}}));
                            {{CodeWriter.Indent(middle, 8)}}
                            i += end - first;
                        }
                    }

                    static void {{name}}Run(int from, int to, long r0, long r1, {{pointers}}, {{view}} part)
                    {
                        const int Run = 256;
                        global::System.Span<{{n.Type}}> run = stackalloc {{n.Type}}[{{sums.Length}} * Run];
                        for (int first = from; first < to; first += Run)
                        {
                            int end = global::System.Math.Min(to, first + Run);
                            run.Clear();
                            for (long r = r0; r < r1; r++)
                                for (int d = first, j = 0; d < end; d++, j++)
                                {
                                    {{HostEntryText.Load(n, sums)}}
                                    {{CodeWriter.Indent(step, 16)}}
                                    {{HostEntryText.Store(sums)}}
                                }
                            for (int d = first, j = 0; d < end; d++, j++)
                            {
                                {{HostEntryText.Load(n, sums)}}
                                {{string.Join(" ", sums.Select((s, k) => $"part[{Slot(k)}] = {s};"))}}
                            }
                        }
                    }
                    """;
            }
        }
    }
}
