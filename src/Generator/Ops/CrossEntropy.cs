using System.Collections.Generic;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// Softmax cross-entropy with its gradient fused in (the loss's backward needs only the softmax): the graph's
    /// loss, run after the forward by the model's ComputeLoss, into the loss rows and the logits' gradient.
    /// </summary>
    internal sealed class CrossEntropy : Op
    {
        // Values of this op's program, not shared: a program numbers its values (Program.Dataflow).
        readonly Value Targets = new Value("Targets", "rows", element: "int"), Loss = new Value("LossRows", "rows");

        readonly Value logits;

        /// <param name="logits">The head's output, whose gradient the loss writes.</param>
        public CrossEntropy(Value logits) => this.logits = logits;

        public override void Forward(Schedule s) =>
            s.Launch("CrossEntropy", "Rows", logits, Targets, new ScalarArg("gradScale", Value.Real), Loss, logits.Grad!);

        // The gradient it leaves is where the backward schedule starts.
        public override void Backward(Schedule s) { }

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return new KernelSource("CrossEntropy", $$"""
                /// <summary>loss[r] = logsumexp(z_r) − z_r[target]; dz_r = scale·(softmax(z_r) − onehot(target)).</summary>
                public static void CrossEntropy(Index1D index, ArrayView<{{n.Type}}> logits, ArrayView<int> targets, {{n.Type}} scale, ArrayView<{{n.Type}}> loss, ArrayView<{{n.Type}}> dLogits)
                {
                    long o = (long)index.X * NumTokens;
                    {{n.Type}} max = logits[o];
                    for (int v = 1; v < NumTokens; v++) max = max < logits[o + v] ? logits[o + v] : max; // a select: PTX's max drops NaNs (GL0030)
                    {{n.Type}} sum = 0;
                    for (int v = 0; v < NumTokens; v++) sum += {{n.Math}}.Exp(logits[o + v] - max);
                    {{n.Type}} lse = max + {{n.Math}}.Log(sum);
                    int target = targets[index];
                    loss[index] = lse - logits[o + target];
                    for (int v = 0; v < NumTokens; v++)
                        dLogits[o + v] = scale * ({{n.Math}}.Exp(logits[o + v] - lse) - (v == target ? {{n.Lit(1)}} : {{n.Lit(0)}}));
                }
                """);
        }
    }
}
