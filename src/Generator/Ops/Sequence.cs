using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// Ops that make one module together: forward runs them in order, backward in reverse; their parameters, buffers,
    /// kernels and members are theirs together, the parameters under the module's name.
    /// </summary>
    internal class Sequence : Op
    {
        public Sequence(string module, IReadOnlyList<Op> ops)
        {
            Module = module;
            Ops = ops;
        }

        /// <summary>Prefixes the PyTorch names of the ops' tensors, e.g. <c>layers.{i}.0.</c>.</summary>
        protected string Module { get; }

        /// <summary>The ops, in forward order.</summary>
        public IReadOnlyList<Op> Ops { get; }

        public override IEnumerable<Param> Parameters => Ops.SelectMany(o => o.Parameters).Select(p => p.Under(Module));

        public override IEnumerable<Buffer> Buffers => Ops.SelectMany(o => o.Buffers);

        public override IEnumerable<KernelSource> Kernels(Numeric n) => Ops.SelectMany(o => o.Kernels(n));

        public override IEnumerable<KernelSource> Members(Numeric n) => Ops.SelectMany(o => o.Members(n));

        public override void Forward(Schedule s)
        {
            foreach (var op in Ops) op.Forward(s);
        }

        public override void Backward(Schedule s)
        {
            foreach (var op in Ops.Reverse()) op.Backward(s);
        }
    }
}
