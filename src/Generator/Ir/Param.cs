using System.Linq;

namespace GateLoop.Generator.Ir
{
    /// <summary>
    /// A learned tensor an op owns: the C# constant naming its offset, its PyTorch state_dict name (relative to the
    /// op's module until a block prefixes it; <c>{i}</c> stands for the layer), its shape as constant expressions with
    /// their values, and its initialization (a <c>GateLoop.Runtime.Init</c> member) with the fan-in it uses.
    /// </summary>
    internal sealed record Param(string Field, string Name, (string Expr, int Value)[] Shape, string Init, int FanIn)
    {
        public long Length => Shape.Aggregate(1L, (a, s) => a * s.Value);

        public string LengthExpr => string.Join(" * ", Shape.Select(s => s.Expr));

        /// <summary>The same tensor under its module's name.</summary>
        public Param Under(string prefix) => this with { Name = prefix + Name };
    }
}
