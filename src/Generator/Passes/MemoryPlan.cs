using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;

namespace GateLoop.Generator.Passes
{
    /// <summary>
    /// The activation plan of one (batch, seq), from the buffers the graph's ops declare: what the forward schedule
    /// computes (one per layer where backward reads it per layer), and the backward's gradient scratch, which every
    /// layer reuses since one layer's backward ends before the next begins. A buffer several ops share is planned once.
    /// Given the program, the gradient scratch that only one layer's backward touches, and that it writes before it
    /// reads, is packed by liveness: two such buffers that are never live at the same step of the layer's backward
    /// share memory, at offsets in one region of rows × <see cref="PackedPerRow"/> elements.
    /// </summary>
    internal sealed class MemoryPlan
    {
        public MemoryPlan(Graph graph, Program? program = null, IReadOnlyDictionary<string, long>? constants = null)
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
            if (program is not null && constants is not null) Pack(program, constants);
            if (program is not null) GemmInputs = ProductOnly(program);
        }

        /// <summary>
        /// The layers' buffers that only matrix products read: written in a layer's forward, then read by one Linear
        /// product there and by GEMMs of the layer's backward (its weight gradient), as A or B, never by anything else but the
        /// decoding branch's launches, which run with fp32 products only.
        /// Under bf16 products a plan keeps them as bf16 copies, which the forward's product makes and the backward's read,
        /// and their fp32 values become scratch the layers share (see <c>GemmInput</c> in the runtime).
        /// </summary>
        public IReadOnlyList<Buffer> GemmInputs { get; } = new Buffer[0];

        List<Buffer> ProductOnly(Program program)
        {
            var forward = program.ForwardLayer.SelectMany(s => s.Flatten()).ToList();
            var backward = new HashSet<Step>(program.BackwardLayer.SelectMany(s => s.Flatten()));
            // The decoding branch runs with fp32 products only, where a GemmInput's values are its values.
            var decoding = new HashSet<Step>(program.Where(Decoding.Condition));
            bool Reads(Step step, Buffer b) => step.Reads.Any(v => v.Storage == b);
            bool Writes(Step step, Buffer b) => step.Writes.Any(v => v.Storage == b);
            bool Operand(Arg arg, Buffer b) => arg is TensorArg t && t.Value.Storage == b;
            return Forward.Where(b => b.Count is not null && b.Use == BufferUse.Forward).Where(b =>
            {
                var readers = program.Steps.Where(step => Reads(step, b)).ToList();
                var linear = readers.OfType<LinearProduct>().Where(p => p.X.Storage == b && p.Y.Storage != b).ToList();
                if (linear.Count != 1 || !forward.Contains(linear[0])) return false;
                int at = forward.IndexOf(linear[0]);
                // The layer's forward writes it before its product reads it, and nothing after; the backward only multiplies it.
                return forward.Take(at).Any(step => Writes(step, b))
                    && program.Steps.Where(step => Writes(step, b)).All(step => forward.IndexOf(step) is int i && i >= 0 && i < at)
                    && readers.All(step => step == linear[0] || decoding.Contains(step)
                        || step is Gemm g && backward.Contains(g) && (Operand(g.A, b) || Operand(g.B, b)) && !Operand(g.C, b));
            }).ToList();
        }

        /// <summary>The forward's buffers (and the GPU schedule's scratch), in op order.</summary>
        public IReadOnlyList<Buffer> Forward { get; }

        /// <summary>The backward's gradient buffers, in op order (the packed ones too).</summary>
        public IReadOnlyList<Buffer> Gradients { get; }

        /// <summary>The packed gradient buffers with their offset and size, in elements per row.</summary>
        public IReadOnlyList<(Buffer Buffer, long Offset, long PerRow)> Packed { get; private set; } = new (Buffer, long, long)[0];

        /// <summary>Elements per row of the region the packed buffers share.</summary>
        public long PackedPerRow { get; private set; }

        /// <summary>The plan's elements at (<paramref name="batch"/>, <paramref name="seq"/>), packed as it is and as it would be unpacked.</summary>
        public (long Packed, long Unpacked) Elements(IReadOnlyDictionary<string, long> constants, long batch, long seq)
        {
            var at = new Dictionary<string, long>(constants.ToDictionary(c => c.Key, c => c.Value))
            {
                ["batch"] = batch, ["seq"] = seq, ["rows"] = batch * seq,
            };
            long Size(Buffer b) => (new Size(b.Size).Evaluate(at) ?? 0) * (b.Count is null ? 1 : new Size(b.Count).Evaluate(at) ?? 0);
            long all = Forward.Concat(Gradients).Sum(Size);
            return (all - Packed.Sum(p => Size(p.Buffer)) + batch * seq * PackedPerRow, all);
        }

        void Pack(Program program, IReadOnlyDictionary<string, long> constants)
        {
            // Elements per row of a buffer sized rows × a constant; null for any other size.
            long? PerRow(Buffer b)
            {
                var size = new Size(b.Size);
                var one = size.Evaluate(With(constants, 1));
                return one is long k && size.Evaluate(With(constants, 2)) == 2 * k ? k : null;
            }
            var layer = program.BackwardLayer.SelectMany(s => s.Flatten()).ToList();
            var elsewhere = new HashSet<Buffer>(program.Steps.Except(layer)
                .SelectMany(s => s.Reads.Concat(s.Writes)).Where(v => v.Storage is not null).Select(v => v.Storage!));
            // Each buffer's first and last step in the layer's backward (a choice's branches one after the other), and
            // whether some path through it reads the buffer before writing it: then it carries a value from elsewhere.
            var live = new Dictionary<Buffer, (int First, int Last)>();
            var readFirst = new HashSet<Buffer>();
            int position = 0;
            HashSet<Buffer> Walk(IEnumerable<Step> steps, HashSet<Buffer> written)
            {
                foreach (var step in steps)
                {
                    if (step is Choice c)
                    {
                        var then = Walk(c.Then, new HashSet<Buffer>(written));
                        var otherwise = Walk(c.Otherwise, new HashSet<Buffer>(written));
                        then.IntersectWith(otherwise);
                        written = then;
                        continue;
                    }
                    var reads = step.Reads.Where(v => v.Storage is not null).Select(v => v.Storage!).ToList();
                    var writes = step.Writes.Where(v => v.Storage is not null).Select(v => v.Storage!).ToList();
                    foreach (var r in reads.Where(r => !written.Contains(r))) readFirst.Add(r);
                    foreach (var buffer in reads.Concat(writes))
                        live[buffer] = live.TryGetValue(buffer, out var range) ? (range.First, position) : (position, position);
                    written.UnionWith(writes);
                    position++;
                }
                return written;
            }
            Walk(program.BackwardLayer, new HashSet<Buffer>());
            var candidates = Gradients
                .Where(b => b.Count is null && !elsewhere.Contains(b) && live.ContainsKey(b) && !readFirst.Contains(b) && PerRow(b) is not null)
                .OrderByDescending(b => PerRow(b)).ThenBy(b => live[b].First).ToList();
            var placed = new List<(Buffer Buffer, long Offset, long PerRow)>();
            foreach (var b in candidates)
            {
                long k = PerRow(b)!.Value, offset = 0;
                var (first, last) = live[b];
                // The lowest offset clear of every placed buffer live at the same time.
                foreach (var p in placed.Where(p => live[p.Buffer].First <= last && first <= live[p.Buffer].Last).OrderBy(p => p.Offset))
                    if (offset + k > p.Offset && p.Offset + p.PerRow > offset) offset = p.Offset + p.PerRow;
                placed.Add((b, offset, k));
            }
            if (placed.Count < 2) return;
            Packed = Gradients.Select(b => placed.FirstOrDefault(p => p.Buffer == b)).Where(p => p.Buffer is not null).ToList();
            PackedPerRow = placed.Max(p => p.Offset + p.PerRow);
        }

        static IReadOnlyDictionary<string, long> With(IReadOnlyDictionary<string, long> constants, long rows)
        {
            var d = constants.ToDictionary(c => c.Key, c => c.Value);
            d["rows"] = rows;
            return d;
        }
    }
}
