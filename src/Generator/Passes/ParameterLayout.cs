using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;

namespace GateLoop.Generator.Passes
{
    /// <summary>
    /// The flat parameter buffer laid out from the graph: the global ops' tensors, then Depth layers of equal
    /// stride, then the head's, each in op order, which is the order of the PyTorch state_dict, so a checkpoint
    /// maps tensor by tensor.
    /// </summary>
    internal sealed class ParameterLayout
    {
        readonly Dictionary<string, (Param Param, long Offset, bool InLayer)> byField = new Dictionary<string, (Param, long, bool)>();

        public ParameterLayout(Graph graph)
        {
            long offset = 0;
            Global = Place(graph.Global, ref offset, inLayer: false);
            LayerStart = offset;
            long local = 0;
            Layer = Place(graph.Layer, ref local, inLayer: true);
            LayerStride = local;
            offset += local * graph.Depth;
            Head = Place(graph.Head, ref offset, inLayer: false);
            Total = offset;
            Depth = graph.Depth;
        }

        List<(Param Param, long Offset)> Place(IEnumerable<Op> ops, ref long offset, bool inLayer)
        {
            var placed = new List<(Param, long)>();
            foreach (var p in ops.SelectMany(o => o.Parameters))
            {
                placed.Add((p, offset));
                byField.Add(p.Field, (p, offset, inLayer));
                offset += p.Length;
            }
            return placed;
        }

        public IReadOnlyList<(Param Param, long Offset)> Global { get; }

        /// <summary>The tensors of one layer, with offsets within the layer.</summary>
        public IReadOnlyList<(Param Param, long Offset)> Layer { get; }

        public IReadOnlyList<(Param Param, long Offset)> Head { get; }

        public long LayerStart { get; }

        public long LayerStride { get; }

        public long Total { get; }

        int Depth { get; }

        /// <summary>Whether a tensor is one layer's (addressed from the layer's base in the schedules).</summary>
        public bool InLayer(Param p) => byField[p.Field].InLayer;

        /// <summary>Every tensor under its full name ({i} filled in) at its offset in the flat buffer.</summary>
        public IEnumerable<(Param Param, string Name, long Offset)> Table =>
            Global.Select(t => (t.Param, t.Param.Name, t.Offset))
                .Concat(Enumerable.Range(0, Depth).SelectMany(i => Layer.Select(t =>
                    (t.Param, t.Param.Name.Replace("{i}", i.ToString()), LayerStart + i * LayerStride + t.Offset))))
                .Concat(Head.Select(t => (t.Param, t.Param.Name, t.Offset)));
    }
}
