using System.Linq;

namespace GateLoop.Generator.Templates
{
    /// <summary>
    /// The shape of every sequential scan here: a lane (one channel, or one state element) per thread walks the
    /// whole sequence with its running values in registers. Lane index = b·Lanes + c for batch row b. The kernel
    /// is that loop; the host entry runs the same init, step and finish with the loops swapped (time outside, a
    /// run of at most 64 adjacent lanes inside, running values in a stack buffer), so the host reads whole cache
    /// lines instead of one value per line per lane.
    /// </summary>
    internal sealed class LaneScan
    {
        readonly Numeric n;
        readonly string name, summary, parameters, lanes, init, step, finish;
        readonly string? simd;
        readonly string simdExtra;
        readonly string[] state;
        readonly bool reverse;

        /// <param name="parameters">The parameters after <c>int seq</c>, views typed <c>ArrayView&lt;T&gt;</c>.</param>
        /// <param name="lanes">Lanes per batch row (a constant expression).</param>
        /// <param name="state">The running values, which <paramref name="init"/> declares (it may read <c>index</c>).</param>
        /// <param name="step">One time step t of lane c in batch row b.</param>
        /// <param name="finish">After the last step (may read <c>index</c>).</param>
        /// <param name="simd">
        /// A runtime method that runs whole groups of 8 lanes in SIMD registers, called as (from, to, seq, lanes,
        /// the kernel's arguments); the host entry then keeps only the ragged ends for the lane-by-lane runs.
        /// </param>
        /// <param name="simdExtra">What the SIMD method takes in place of the lane count, when it needs more.</param>
        public LaneScan(Numeric n, string name, string summary, string parameters, string lanes, string[] state,
            string init, bool reverse, string step, string finish, string? simd = null, string? simdExtra = null)
        {
            this.simd = simd;
            this.simdExtra = simdExtra ?? lanes;
            this.n = n;
            this.name = name;
            this.summary = summary;
            this.parameters = parameters;
            this.lanes = lanes;
            this.state = state;
            this.init = init;
            this.reverse = reverse;
            this.step = step;
            this.finish = finish;
        }

        string Loop => reverse ? "for (int t = seq - 1; t >= 0; t--)" : "for (int t = 0; t < seq; t++)";

        public string Kernel => $$"""
            {{summary}}
            public static void {{name}}(Index1D index, int seq, {{parameters}})
            {
                int b = index.X / {{lanes}}, c = index.X % {{lanes}};
                {{CodeWriter.Indent(init, 4)}}
                {{Loop}}
                {
                    {{CodeWriter.Indent(step, 8)}}
                }{{(finish.Length == 0 ? "" : "\n    " + CodeWriter.Indent(finish, 4))}}
            }
            """;

        string Finish(string load) => $$"""
            for (int c = c0, j = 0; c < c1; c++, j++)
            {
                Index1D index = b * {{lanes}} + c;
                {{load}}
                {{CodeWriter.Indent(finish, 4)}}
            }
            """;

        // All lanes through the runs below, or the 8-lane groups through the SIMD method.
        string Entry => HostEntryText.Entry(n, name, "lanes <paramref name=\"from\"/>…<paramref name=\"to\"/>−1: time outside, lanes inside",
            "int seq", parameters, name + "Runs", simd, simdExtra);

        public string HostEntry
        {
            get
            {
                string load = HostEntryText.Load(n, state), store = HostEntryText.Store(state);
                return $$"""
                    {{Entry}}

                    static void {{name}}Runs(int from, int to, int seq, {{HostEntryText.PointerParameters(parameters, n)}})
                    {
                        const int Run = 64;
                        global::System.Span<{{n.Type}}> run = stackalloc {{n.Type}}[{{state.Length}} * Run];
                        for (int first = from, end; first < to; first = end)
                        {
                            int b = first / {{lanes}};
                            end = global::System.Math.Min(global::System.Math.Min(to, (b + 1) * {{lanes}}), first + Run);
                            int c0 = first - b * {{lanes}}, c1 = end - b * {{lanes}};
                            for (int c = c0, j = 0; c < c1; c++, j++)
                            {
                                Index1D index = b * {{lanes}} + c;
                                {{CodeWriter.Indent(init, 16)}}
                                {{store}}
                            }
                            {{Loop}}
                                for (int c = c0, j = 0; c < c1; c++, j++)
                                {
                                    Index1D index = b * {{lanes}} + c;
                                    {{load}}
                                    {{CodeWriter.Indent(step, 16)}}
                                    {{store}}
                                }{{(finish.Length == 0 ? "" : CodeWriter.Indent("\n" + Finish(load), 8))}}
                        }
                    }
                    """;
            }
        }
    }
}
