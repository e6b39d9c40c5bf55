using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;

namespace GateLoop.Generator.Passes
{
    /// <summary>
    /// The activation plan of one (batch, seq), from the buffers the graph's ops declare: what the forward schedule
    /// computes (one per layer where backward reads it per layer), and the backward's gradient scratch, which every
    /// layer reuses since one layer's backward ends before the next begins. A buffer several ops share is planned once.
    /// </summary>
    internal sealed class MemoryPlan
    {
        public MemoryPlan(Graph graph)
        {
            var all = new List<Buffer>();
            foreach (var buffer in graph.Ops.SelectMany(o => o.Buffers))
            {
                var same = all.FirstOrDefault(b => b.Field == buffer.Field);
                if (same is null) all.Add(buffer);
                else if (same != buffer)
                    throw new System.InvalidOperationException($"ops declare buffer {buffer.Field} differently: {same} and {buffer}");
            }
            Forward = all.Where(b => b.Use != BufferUse.Gradient).ToList();
            Gradients = all.Where(b => b.Use == BufferUse.Gradient).ToList();
        }

        /// <summary>The forward's buffers (and the GPU schedule's scratch), in op order.</summary>
        public IReadOnlyList<Buffer> Forward { get; }

        /// <summary>The backward's gradient buffers, in op order.</summary>
        public IReadOnlyList<Buffer> Gradients { get; }
    }
}
