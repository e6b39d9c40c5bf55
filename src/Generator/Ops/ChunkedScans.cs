using GateLoop.Generator.Ir;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// What the chunked scans of a GPU share (the gate loop's and the SimpleGateLoop's): the switch that picks them,
    /// and the buffer of per-chunk aggregates, which only that schedule uses.
    /// </summary>
    internal static class ChunkedScans
    {
        /// <summary>The chunk length, a kernel constant the model's members and plan read as <c>Kernels.Chunk</c>.</summary>
        public static KernelSource Length(int chunk) => new KernelSource("ChunkLength",
            $"/// <summary>Positions per thread of the chunked scans.</summary>\npublic const int Chunk = {chunk};");

        /// <summary>
        /// When the scans run chunked (on a GPU, for sequences longer than a chunk, when the lanes, batch × the
        /// constant <paramref name="lanes"/>, are too few to fill it) and how many chunks a sequence has.
        /// </summary>
        public static KernelSource Members(string lanes) => new KernelSource("ChunkedScans", $$"""
            // Below this many lanes (batch·{{lanes}}) a GPU runs the chunked scans, Kernels.Chunk positions per thread, to stay busy.
            const int ChunkedBelowLanes = 32768;

            /// <summary>Whether the scans run chunked: on a GPU, for sequences longer than a chunk, when batch·{{lanes}} lanes alone would leave it idle.</summary>
            bool Chunked(int batch, int seq) => !Device.IsHost && seq > Kernels.Chunk && batch * {{lanes}} < ChunkedBelowLanes;

            static int Chunks(int seq) => (seq + Kernels.Chunk - 1) / Kernels.Chunk;
            """);

        /// <summary>The per-chunk aggregates of <paramref name="values"/> values per lane (batch·lanes of them).</summary>
        public static Buffer Aggregates(string lanes, int values) => new Buffer("ChunkAgg", null,
            $"(long)batch * ((seq + Kernels.Chunk - 1) / Kernels.Chunk) * {lanes} * {values}",
            "per chunk and channel, the chunked scans' aggregates, then carried-in values", BufferUse.Schedule);
    }
}
