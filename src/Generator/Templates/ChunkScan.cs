namespace GateLoop.Generator.Templates
{
    /// <summary>
    /// The shape of the chunked scans (a GPU's, when batch × lanes threads are too few to fill it): a scan
    /// kernel per (batch, chunk, lane) walks its chunk of <c>Kernels.Chunk</c> positions and leaves the chunk's
    /// aggregate; a carry kernel per (batch, lane) walks the chunks' aggregates and leaves each chunk's carried-in
    /// value; an apply kernel per (batch, chunk, lane) walks the chunk again and adds it. The ops give the running
    /// values and each step; this gives the thread's indices and the loops, so both scans index alike.
    /// </summary>
    internal static class ChunkScan
    {
        /// <summary>
        /// A kernel per (batch, chunk, lane c of <paramref name="lanes"/>): <paramref name="init"/>, then
        /// <paramref name="step"/> for t over the chunk's positions t0…t1−1 (from t1−1 down when
        /// <paramref name="reverse"/>), then <paramref name="finish"/>.
        /// </summary>
        /// <param name="parameters">The parameters after <c>int seq</c>, views typed <c>ArrayView&lt;T&gt;</c>.</param>
        public static string Chunk(string summary, string name, string parameters, string lanes, string init, bool reverse, string step, string finish) =>
            Kernel(summary, name, parameters,
                $"int chunks = (seq + Chunk - 1) / Chunk, c = index.X % {lanes}, chunk = index.X / {lanes} % chunks, b = index.X / ({lanes} * chunks);\n" +
                "int t0 = chunk * Chunk, t1 = global::System.Math.Min(seq, t0 + Chunk);",
                init, reverse ? "for (int t = t1 - 1; t >= t0; t--)" : "for (int t = t0; t < t1; t++)", step, finish);

        /// <summary>
        /// A kernel per (batch, lane c of <paramref name="lanes"/>): <paramref name="init"/>, then <paramref name="step"/>
        /// for each chunk (from the last when <paramref name="reverse"/>) with <paramref name="slot"/> the index of
        /// that chunk's aggregate of <paramref name="values"/> values, then <paramref name="finish"/>.
        /// </summary>
        public static string Carry(string summary, string name, string parameters, string lanes, int values, string slot, string init, bool reverse,
            string step, string finish) =>
            Kernel(summary, name, parameters, $"int chunks = (seq + Chunk - 1) / Chunk, c = index.X % {lanes}, b = index.X / {lanes};", init,
                reverse ? "for (int chunk = chunks - 1; chunk >= 0; chunk--)" : "for (int chunk = 0; chunk < chunks; chunk++)",
                $"long {slot} = {values} * (((long)b * chunks + chunk) * {lanes} + c);\n{step}", finish);

        static string Kernel(string summary, string name, string parameters, string indices, string init, string loop, string step, string finish)
        {
            var w = new CodeWriter().Block(summary.TrimEnd('\n'))
                .Open($"public static void {name}(Index1D index, int seq, {parameters})")
                .Block(indices)
                .Block(init)
                .Open(loop)
                .Block(step)
                .Close();
            if (finish.Length > 0) w.Block(finish);
            return w.Close().ToString().TrimEnd('\n');
        }
    }
}
