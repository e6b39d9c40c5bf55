using System.Collections.Generic;
using GateLoop.Generator.Ir;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// A tensor of a projection the seed's module declares but does not use in this configuration (the state
    /// transition's when it is ablated): it is in the state_dict, so it is in ours, with PyTorch's Linear init; its
    /// gradient stays zero.
    /// </summary>
    internal sealed class Unused : Op
    {
        readonly Param tensor;

        /// <param name="fanIn">The projection's input width, which its U(−1/√in, 1/√in) init divides by.</param>
        public Unused(string field, string name, (string, int)[] shape, int fanIn) =>
            tensor = new Param(field, name, shape, "Uniform", fanIn);

        public override IEnumerable<Param> Parameters => new[] { tensor };

        public override void Forward(Schedule s) { }

        public override void Backward(Schedule s) { }
    }
}
