using System.Collections.Generic;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// PyTorch's nn.Linear over the R rows: y = x·Wᵀ (+ b), W [out, in], both U(−1/√in, 1/√in). With
    /// <c>accumulate</c> it adds into y, which holds a residual already: the residual sum fused into the GEMM.
    /// Backward: the bias's column sums, dW += dyᵀ·x, and dx = dy·W added into x's gradient.
    /// </summary>
    internal sealed class Linear : Op
    {
        readonly Param weight;
        readonly Param? bias;
        readonly (string Expr, int Value) outs, ins;
        readonly Value input, output;
        readonly bool accumulate;

        /// <param name="module">The PyTorch module: its tensors are <c>module.weight</c> (and <c>module.bias</c>).</param>
        /// <param name="biasField">The constant of the bias's offset; null for a Linear without one.</param>
        public Linear(string field, string module, (string, int) outs, (string, int) ins, Value input, Value output,
            string? biasField = null, bool accumulate = false)
        {
            this.outs = outs;
            this.ins = ins;
            this.input = input;
            this.output = output;
            this.accumulate = accumulate;
            weight = new Param(field, module + ".weight", new[] { outs, ins }, "Uniform", this.ins.Value);
            if (biasField is not null) bias = new Param(biasField, module + ".bias", new[] { outs }, "Uniform", this.ins.Value);
        }

        public override IEnumerable<Param> Parameters => bias is null ? new[] { weight } : new[] { weight, bias };

        public override IEnumerable<Value> Outputs => new[] { output };

        public override void Forward(Schedule s)
        {
            s.Linear(weight, outs.Expr, ins.Expr, input, accumulate, output);
            if (bias is not null) s.Launch($"AddBias{outs.Expr}", $"R * {outs.Expr}", output, s.W(bias));
        }

        public override void Backward(Schedule s)
        {
            if (bias is not null) s.ColumnSum(outs.Expr, output.Grad!, s.G(bias));
            s.Gemm(true, false, outs.Expr, ins.Expr, "R", output.Grad!, input, s.One, s.G(weight));
            if (input.Grad is not null) s.Gemm(false, false, "R", ins.Expr, outs.Expr, output.Grad!, s.W(weight), s.Beta(input), input.Grad);
        }

        public override IEnumerable<KernelSource> Kernels(Numeric n) =>
            bias is null ? new KernelSource[0] : KernelSource.Of(AddBias(outs.Expr), n);

        static LaneMap AddBias(string width) => new LaneMap("AddBias" + width, $"x[r, c] += bias[c] for rows of {width}.",
            new[] { ("x", "xe"), ("bias", "be") }, new (string, Lane)[0], new[] { ("x", (Lane)"xe" + "be") }, width);
    }
}
