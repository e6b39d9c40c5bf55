using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ir
{
    /// <summary>
    /// A model as the IR sees it: ops run once before the layers (<see cref="Global"/>), the ops of one layer, run
    /// for each of <see cref="Depth"/> layers with the layer's parameters, and the ops after them (<see cref="Head"/>).
    /// A layer that is one op list with no repetition (a SimpleGateLoop layer) has Depth 1 and only global ops.
    /// </summary>
    internal sealed class Graph
    {
        /// <param name="loss">The op that turns the head's output into the loss and the gradient backward starts from.</param>
        public Graph(IReadOnlyList<Op> global, IReadOnlyList<Op> layer, IReadOnlyList<Op> head, int depth, Op? loss = null)
        {
            Global = global;
            Layer = layer;
            Head = head;
            Depth = depth;
            Loss = loss;
        }

        public Op? Loss { get; }

        public IReadOnlyList<Op> Global { get; }

        public IReadOnlyList<Op> Layer { get; }

        public IReadOnlyList<Op> Head { get; }

        public int Depth { get; }

        /// <summary>Every op, in forward order, the loss last.</summary>
        public IEnumerable<Op> Ops => Global.Concat(Layer).Concat(Head).Concat(Loss is null ? new Op[0] : new[] { Loss });

        /// <summary>Every op's members in the model class, each key once.</summary>
        public IEnumerable<KernelSource> Members(Numeric n) => Distinct(Ops.SelectMany(op => op.Members(n)));

        /// <summary>Every op's kernels, each key once, in the order the ops first need them.</summary>
        public IEnumerable<KernelSource> Kernels(Numeric n) => Distinct(Ops.SelectMany(op => op.Kernels(n)));

        static IEnumerable<KernelSource> Distinct(IEnumerable<KernelSource> sources)
        {
            var seen = new HashSet<string>();
            foreach (var source in sources)
                if (seen.Add(source.Key)) yield return source;
        }
    }
}
