using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Kernels;
using GateLoop.Generator.Model;

namespace GateLoop.Generator.Emit
{
    /// <summary>
    /// Writes one model's source: constants, the parameter table, the activation plan, the forward and backward
    /// schedules (kernel launches and GEMMs in order) and the constant-size kernels themselves.
    /// </summary>
    internal sealed class TransformerEmitter
    {
        readonly TransformerSpec s;
        readonly Numeric n;
        readonly ParameterLayout layout;
        readonly CodeWriter w = new CodeWriter();

        TransformerEmitter(TransformerSpec spec, Numeric numeric)
        {
            s = spec;
            n = numeric;
            layout = new ParameterLayout(spec);
        }

        public static string Emit(TransformerSpec spec, Numeric numeric) => new TransformerEmitter(spec, numeric).Write();

        /// <summary>Every member the generated class declares; a model may not share a name with one (CS0542).</summary>
        public static readonly System.Collections.Generic.HashSet<string> MemberNames = new System.Collections.Generic.HashSet<string>(new[]
        {
            "Kernels", "Activations", "act", "ParameterTable", "Hyperparameters", "Configuration", "Vocabulary",
            "PlanActivations", "ActivationElements", "UseActivations", "PlanState", "ResetCarry", "CarriesState", "carried", "ComputeLoss", "ForwardCore", "BackwardCore",
            "NumTokens", "Dim", "Depth", "Heads", "HeadDim", "DimInner", "Hidden", "LayerStart", "LayerStride",
            "TokenEmb", "Qkv", "TransitionW", "TransitionB", "SubNormW", "SubNormB", "GatesW", "OutW", "MixNormG", "MixNormW", "MixNormB",
            "Ff1W", "Ff1B", "Ff2W", "Ff2B", "FfNormG", "FfNormW", "FfNormB", "HeadNormG", "HeadW", "RotaryFreqs", "RelPosW", "OutB",
        }.Concat(ModelSource.ChunkedScanMembers));

        string T => n.Type;

        const string Rt = ModelSource.Runtime;
        string One => n.Lit(1);
        string Zero => n.Lit(0);
        bool Pre => !s.PostLayerNorm;

        string Write()
        {
            ModelSource.Open(w, s.Type,
                $"GateLoop transformer '{s.Type.Name}': NumTokens {s.NumTokens}, Dim {s.Dim}, Depth {s.Depth}, {s.Heads} heads of {s.HeadDim}, inner {s.DimInner}, " +
                $"{(s.PostLayerNorm ? "post" : "pre")}-norm, {(s.UseGateLoopedAttn ? "gate-looped" : "softmax")} attention, {n.Type}.",
                $"{Rt}TransformerModel<{T}>");
            Constants();
            Table();
            Hyperparameters();
            Members();
            Forward();
            Backward();
            ActivationsClass();
            KernelsClass();
            ModelSource.Close(w, s.Type);
            return w.ToString();
        }

        void Constants()
        {
            w.Line("/// <summary>Model sizes; every kernel below is specialized to them.</summary>")
             .Line($"public const int NumTokens = {s.NumTokens}, Dim = {s.Dim}, Depth = {s.Depth}, Heads = {s.Heads}, HeadDim = {s.HeadDim}, " +
                   $"DimInner = {s.DimInner}, Hidden = {s.Hidden};")
             .Line()
             .Line("// Offsets into the flat parameter buffer: globals, then Depth layers of LayerStride elements, then the head.");
            w.Line($"const long {string.Join(", ", layout.Global.Select(t => $"{t.Field} = {t.Offset}"))};");
            w.Line($"const long LayerStart = {layout.LayerStart}, LayerStride = {layout.LayerStride};");
            w.Line($"const long {string.Join(", ", layout.Layer.Select(t => $"{t.Field} = {t.Offset}"))};");
            w.Line($"const long {string.Join(", ", layout.Head.Select(t => $"{t.Field} = {t.Offset}"))};");
            w.Line();
            if (!s.UseGateLoopedAttn || !s.MaxHeads) return;
            ModelSource.ChunkedScans(w, "DimInner", 32);
        }

        void Table() =>
            ModelSource.ParameterTable(w, layout.Global.Select(t => (t, t.Name, t.Offset))
                .Concat(Enumerable.Range(0, s.Depth).SelectMany(i => layout.Layer.Select(t =>
                    (t, t.Name.Replace("{i}", i.ToString()), layout.LayerStart + i * layout.LayerStride + t.Offset))))
                .Concat(layout.Head.Select(t => (t, t.Name, t.Offset))));

        void Hyperparameters()
        {
            var values = new List<(string, object)>
            {
                ("NumTokens", s.NumTokens), ("Dim", s.Dim), ("Depth", s.Depth), ("FeedForwardMult", s.FeedForwardMult),
                ("UseGateLoopedAttn", s.UseGateLoopedAttn), ("AttnAddSwishGating", s.SwishGating), ("PostLayerNorm", s.PostLayerNorm),
                ("FracGradientStateTransition", s.FracGradientStateTransition), ("AblateComplex", s.AblateComplex),
                ("AblateStateTransition", s.AblateStateTransition),
            };
            values.AddRange(s.UseGateLoopedAttn
                ? new (string, object)[]
                {
                    ("GateLoopHeads", s.Heads), ("DimGateLoopedAttn", s.DimInner), ("SubLayerNorm", s.SubLayerNorm),
                    ("CheckpointGateLoopedAttn", s.CheckpointGateLoopedAttn),
                }
                : new (string, object)[]
                {
                    ("Heads", s.Heads), ("DimHead", s.HeadDim), ("RotaryEmbedding", s.RotaryEmbedding),
                    ("DataDependentRelPos", s.DataDependentRelPos), ("AttnSoftmaxNormalize", s.SoftmaxNormalize),
                });
            ModelSource.Hyperparameters(w, "The declaration's attribute values, resolved (heads and inner width filled in).", values);
        }

        void Members()
        {
            w.Line("Activations? act;")
             .Line()
             .Line("/// <summary>Creates the model's buffers on <paramref name=\"device\"/>; call Initialize or WriteWeights before use.</summary>")
             .Line($"public {s.Type.Name}({Rt}Device device) : base(device, ParameterTable) {{ }}")
             .Line()
             .Line("/// <inheritdoc />")
             .Line("public override int Vocabulary => NumTokens;")
             .Line()
             .Line("/// <inheritdoc />")
             .Line($"protected override object PlanActivations({Rt}Workspace workspace) => new Activations(workspace, Batch, Seq);")
             .Line()
             .Line("/// <inheritdoc />")
             .Line("protected override long ActivationElements(int batch, int seq) => Activations.Elements(batch, seq);")
             .Line()
             .Line("/// <inheritdoc />")
             .Line("protected override void UseActivations(object activations) => act = (Activations)activations;")
             .Line()
             ;
            if (s.UseGateLoopedAttn)
            {
                string stateRow = s.MaxHeads ? "2 * DimInner" : "2 * DimInner * HeadDim";
                w.Line($"ArrayView<{T}>[] carried = []; // each layer's scan state per sequence, carried while generating")
                 .Line()
                 .Line("/// <inheritdoc />")
                 .Line($"protected override void PlanState({Rt}Workspace workspace, int batch)")
                 .Line("{")
                 .Line($"    carried = new ArrayView<{T}>[Depth];")
                 .Line($"    for (int l = 0; l < Depth; l++) carried[l] = workspace.Take<{T}>(batch * {stateRow});")
                 .Line("}")
                 .Line()
                 .Line("/// <inheritdoc />")
                 .Line("protected override void ResetCarry() { foreach (var c in carried) c.MemSetToZero(); }");
            }
            else w.Line("/// <inheritdoc />").Line("protected override bool CarriesState => false;");
            w.Line()
             .Line("/// <inheritdoc />")
             .Line($"protected override void ComputeLoss({T} gradScale) =>")
             .Line("    Device.Launch(Kernels.CrossEntropy, Rows, LogitsView, Targets, gradScale, LossRows, LogitGrads);")
             .Line();
        }

        // A parameter (or its gradient) view: layer tensors are addressed from the layer base p.
        string P(string buffer, string field)
        {
            var t = layout[field];
            bool inLayer = layout.Layer.Contains(t);
            return $"{buffer}({(inLayer ? "p + " : "")}{field}, {t.LengthExpr})";
        }

        string Wt(string field) => P("W", field);
        string Gr(string field) => P("G", field);

        void Gemm(bool ta, bool tb, string m, string nn, string k, string a, string b, string beta, string c) =>
            w.Line($"Device.Gemm({(ta ? "true" : "false")}, {(tb ? "true" : "false")}, {m}, {nn}, {k}, {One}, {a}, {b}, {beta}, {c});");

        // Bias gradients: dst += Σ over the R rows of m.
        void ColumnSum(string columns, string m, string dst) => w.Line($"Device.ColumnSum(R, {columns}, {m}, {dst});");

        void Launch(string kernel, string count, params string[] args) =>
            w.Line($"Device.Launch(Kernels.{kernel}, {count}, {string.Join(", ", args)});");

        string TransitionArg(string layer) => s.AblateStateTransition ? "" : $"a.Transition[{layer}], ";

        string States => s.CheckpointGateLoopedAttn ? "a.StateScratch" : "a.States[l]";

        void ScanForwardCalls(string carry)
        {
            if (s.MaxHeads)
            {
                w.Open("if (Chunked)")
                 .Line($"Device.Launch(Kernels.ChunkScanForward, Batch * Chunks * DimInner, Seq, a.Qkv[l], {TransitionArg("l")}{States}, a.ChunkAgg);")
                 .Line($"Device.Launch(Kernels.ChunkCarryForward, Batch * DimInner, Seq, a.ChunkAgg, {carry});")
                 .Line($"Device.Launch(Kernels.ChunkApplyForward, Batch * Chunks * DimInner, Seq, a.Qkv[l], {TransitionArg("l")}a.ScanOut[l], {States}, a.ChunkAgg);")
                 .Close()
                 .Line("else")
                 .Line($"    Device.Launch(Kernels.ScanForward, Batch * DimInner, Seq, a.Qkv[l], {TransitionArg("l")}a.ScanOut[l], {States}, {carry});");
            }
            else
                w.Line($"Device.Launch(Kernels.ScanStatesForward, Batch * Heads * HeadDim * HeadDim, Seq, a.Qkv[l], {TransitionArg("l")}{States}, {carry});");
        }

        void Forward()
        {
            w.Line("/// <inheritdoc />").Open("protected override void ForwardCore(bool continueState)");
            w.Line("var a = act!;").Line("int R = Rows;");
            Launch("EmbeddingForward", "R", "Inputs", Wt("TokenEmb"), "a.X[0]");
            w.Open("for (int l = 0; l < Depth; l++)");
            w.Line("long p = LayerStart + l * LayerStride;");

            w.Line($"// Mixer block: {(s.UseGateLoopedAttn ? "gate-looped attention" : "causal softmax attention")}.").Line("var x = a.X[2 * l];");
            BlockInput("2 * l", "MixNorm");
            string mixed = s.UseGateLoopedAttn ? GateLoopForward() : AttentionForward();
            if (s.SwishGating)
            {
                Gemm(false, true, "R", "DimInner", "Dim", "h", Wt("GatesW"), Zero, "a.Gates[l]");
                Launch("SwishGateForward", "R * DimInner", mixed, "a.Gates[l]", "a.Gated[l]");
                mixed = "a.Gated[l]";
            }
            string sum = Pre ? "a.X[2 * l + 1]" : "a.Sum[2 * l]";
            if (s.HasOutProjection)
            {
                w.Line($"x.CopyTo({sum});");
                Gemm(false, true, "R", "Dim", "DimInner", mixed, Wt("OutW"), One, sum);
                if (!s.UseGateLoopedAttn) Launch("AddBiasDim", "R * Dim", sum, Wt("OutB"));
            }
            else Launch("Add", "R * Dim", "x", mixed, sum);
            BlockOutput("2 * l", "2 * l + 1", "MixNorm", sum);

            w.Line("// Feed-forward block.").Line("x = a.X[2 * l + 1];");
            BlockInput("2 * l + 1", "FfNorm", declare: false);
            Gemm(false, true, "R", "Hidden", "Dim", "h", Wt("Ff1W"), Zero, "a.FfPre[l]");
            Launch("BiasGeluForward", "R * Hidden", "a.FfPre[l]", Wt("Ff1B"), "a.FfAct[l]");
            sum = Pre ? "a.X[2 * l + 2]" : "a.Sum[2 * l + 1]";
            w.Line($"x.CopyTo({sum});");
            Gemm(false, true, "R", "Dim", "Hidden", "a.FfAct[l]", Wt("Ff2W"), One, sum);
            Launch("AddBiasDim", "R * Dim", sum, Wt("Ff2B"));
            BlockOutput("2 * l + 1", "2 * l + 2", "FfNorm", sum);
            w.Close();

            w.Line("// Head.");
            if (Pre)
            {
                Launch("RmsNormForward", "R", "a.X[2 * Depth]", Wt("HeadNormG"), "a.H[2 * Depth]", "a.InvNorm[2 * Depth]");
                Gemm(false, true, "R", "NumTokens", "Dim", "a.H[2 * Depth]", Wt("HeadW"), Zero, "LogitsView");
            }
            else Gemm(false, true, "R", "NumTokens", "Dim", "a.X[2 * Depth]", Wt("HeadW"), Zero, "LogitsView");
            w.Close().Line();
        }

        // q|k|v and the state transitions, the scan, the optional sub-LayerNorm; returns the mixer output's view.
        string GateLoopForward()
        {
            Gemm(false, true, "R", "3 * DimInner", "Dim", "h", Wt("Qkv"), Zero, "a.Qkv[l]");
            if (!s.AblateStateTransition)
            {
                Gemm(false, true, "R", "2 * Heads", "Dim", "h", Wt("TransitionW"), Zero, "a.TransitionIn[l]");
                Launch("TransitionForward", "R * Heads", "a.TransitionIn[l]", Wt("TransitionB"), "a.Transition[l]");
            }
            // Generation continues the carried state; every other pass starts from zero.
            w.Line("var carry = continueState ? carried[l] : a.Carry[l];");
            w.Line("if (!continueState) carry.MemSetToZero();");
            ScanForwardCalls("carry");
            if (!s.MaxHeads) Launch("ScanOutputForward", "R * DimInner", "a.Qkv[l]", States, "a.ScanOut[l]");
            if (!s.SubLayerNorm) return "a.ScanOut[l]";
            Launch("LayerNormDimInnerForward", "R", "a.ScanOut[l]", Wt("SubNormW"), Wt("SubNormB"), "a.SubOut[l]", "a.SubStats[l]");
            return "a.SubOut[l]";
        }

        // q|k|v, rotary and relative-position scaling in place, scores, softmax, weighted values.
        string AttentionForward()
        {
            Gemm(false, true, "R", "3 * DimInner", "Dim", "h", Wt("Qkv"), Zero, "a.Qkv[l]");
            if (s.RotaryEmbedding) Launch("Rotate", "R * DimInner", "Seq", "a.Qkv[l]", Wt("RotaryFreqs"), One);
            if (s.RelPos)
            {
                Gemm(false, true, "R", "DimInner", "Dim", "h", Wt("RelPosW"), Zero, "a.TransitionIn[l]");
                Launch("TransitionForward", "R * (DimInner / 2)", "a.TransitionIn[l]", "a.Transition[l]");
                Launch("RelPosForward", "R * Heads", "a.Transition[l]", "a.Cum[l]", "a.Qkv[l]");
            }
            Launch("AttentionScores", "Batch * Heads * Seq * Seq", "Seq", "a.Qkv[l]", "a.Probs[l]");
            if (s.SoftmaxNormalize) Launch("AttentionSoftmax", "Batch * Heads * Seq", "Seq", "a.Probs[l]");
            Launch("AttentionOutput", "R * DimInner", "Seq", "a.Probs[l]", "a.Qkv[l]", "a.AttnOut[l]");
            return "a.AttnOut[l]";
        }

        // Pre-norm blocks see RMSNorm(x); post-norm blocks see x itself.
        void BlockInput(string block, string norm, bool declare = true)
        {
            string decl = declare ? "var " : "";
            if (Pre)
            {
                w.Line($"{decl}h = a.H[{block}];");
                Launch("RmsNormForward", "R", "x", Wt(norm + "G"), "h", $"a.InvNorm[{block}]");
            }
            else w.Line($"{decl}h = x;");
        }

        void BlockOutput(string block, string next, string norm, string sum)
        {
            if (!Pre) Launch("LayerNormDimForward", "R", sum, Wt(norm + "W"), Wt(norm + "B"), $"a.X[{next}]", $"a.NormStats[{block}]");
        }

        void Backward()
        {
            w.Line("/// <inheritdoc />").Open("protected override void BackwardCore()");
            w.Line("var a = act!;").Line("int R = Rows;").Line("var dX = a.DX;");
            w.Line("// Head: dX = ∂L/∂X[2·Depth].");
            string final = Pre ? "a.H[2 * Depth]" : "a.X[2 * Depth]";
            Gemm(true, false, "NumTokens", "Dim", "R", "LogitGrads", final, One, Gr("HeadW"));
            if (Pre)
            {
                Gemm(false, false, "R", "Dim", "NumTokens", "LogitGrads", Wt("HeadW"), Zero, "a.DH");
                w.Line("dX.MemSetToZero();");
                Launch("RmsNormBackward", "R", "a.X[2 * Depth]", Wt("HeadNormG"), "a.InvNorm[2 * Depth]", "a.DH", "dX");
                Launch("RmsNormBackwardGamma", "Dim", "R", "a.X[2 * Depth]", "a.InvNorm[2 * Depth]", "a.DH", Gr("HeadNormG"));
            }
            else Gemm(false, false, "R", "Dim", "NumTokens", "LogitGrads", Wt("HeadW"), Zero, "dX");

            w.Open("for (int l = Depth - 1; l >= 0; l--)");
            w.Line("long p = LayerStart + l * LayerStride;");

            w.Line("// Feed-forward block: dX = ∂L/∂X[2l+2].").Line("var x = a.X[2 * l + 1];");
            BackwardBlockOutput("2 * l + 1", "FfNorm", "a.Sum[2 * l + 1]");
            w.Line($"var h = {(Pre ? "a.H[2 * l + 1]" : "x")};");
            ColumnSum("Dim", "dX", Gr("Ff2B"));
            Gemm(true, false, "Dim", "Hidden", "R", "dX", "a.FfAct[l]", One, Gr("Ff2W"));
            Gemm(false, false, "R", "Hidden", "Dim", "dX", Wt("Ff2W"), Zero, "a.DF");
            Launch("GeluBackward", "R * Hidden", "a.FfPre[l]", "a.DF", "a.DF");
            ColumnSum("Hidden", "a.DF", Gr("Ff1B"));
            Gemm(true, false, "Hidden", "Dim", "R", "a.DF", "h", One, Gr("Ff1W"));
            var inputGrad = new InputGrad(this);
            inputGrad.Add("a.DF", "Hidden", "Ff1W");
            BackwardBlockInput("2 * l + 1", "FfNorm");

            w.Line("// Mixer block: dX = ∂L/∂X[2l+1].").Line("x = a.X[2 * l];");
            BackwardBlockOutput("2 * l", "MixNorm", "a.Sum[2 * l]");
            w.Line($"h = {(Pre ? "a.H[2 * l]" : "x")};");
            inputGrad = new InputGrad(this);
            string dMixed = "dX";
            string core = !s.UseGateLoopedAttn ? "a.AttnOut[l]" : s.SubLayerNorm ? "a.SubOut[l]" : "a.ScanOut[l]";
            if (s.HasOutProjection)
            {
                Gemm(true, false, "Dim", "DimInner", "R", "dX", s.SwishGating ? "a.Gated[l]" : core, One, Gr("OutW"));
                if (!s.UseGateLoopedAttn) ColumnSum("Dim", "dX", Gr("OutB"));
                Gemm(false, false, "R", "DimInner", "Dim", "dX", Wt("OutW"), Zero, "a.DGated");
                dMixed = "a.DGated";
            }
            if (s.SwishGating)
            {
                Launch("SwishGateBackward", "R * DimInner", core, "a.Gates[l]", dMixed, "a.DMixed", "a.DGates");
                dMixed = "a.DMixed";
                Gemm(true, false, "DimInner", "Dim", "R", "a.DGates", "h", One, Gr("GatesW"));
                inputGrad.Add("a.DGates", "DimInner", "GatesW");
            }
            if (s.UseGateLoopedAttn) GateLoopBackward(dMixed, inputGrad);
            else AttentionBackward(dMixed, inputGrad);
            Gemm(true, false, "3 * DimInner", "Dim", "R", "a.DQkv", "h", One, Gr("Qkv"));
            inputGrad.Add("a.DQkv", "3 * DimInner", "Qkv");
            BackwardBlockInput("2 * l", "MixNorm");
            w.Close();

            Launch("EmbeddingBackward", "NumTokens", "Inputs", "dX", Gr("TokenEmb"));
            w.Close().Line();
        }

        void GateLoopBackward(string dMixed, InputGrad inputGrad)
        {
            string dScan = dMixed;
            if (s.SubLayerNorm)
            {
                Launch("LayerNormDimInnerBackwardParams", "DimInner", "R", "a.ScanOut[l]", "a.SubStats[l]", dMixed, Gr("SubNormW"), Gr("SubNormB"));
                Launch("LayerNormDimInnerBackward", "R", "a.ScanOut[l]", Wt("SubNormW"), "a.SubStats[l]", dMixed, "a.DScanOut");
                dScan = "a.DScanOut";
            }
            if (s.CheckpointGateLoopedAttn)
            {
                w.Line("// Checkpointed: recompute this layer's states (from a zero state) instead of having stored them.");
                w.Line("a.Carry[l].MemSetToZero();");
                ScanForwardCalls("a.Carry[l]");
            }
            string da = s.AblateStateTransition ? "" : ", a.DTransition";
            if (s.MaxHeads)
            {
                w.Open("if (Chunked)")
                 .Line($"Device.Launch(Kernels.ChunkScanBackward, Batch * Chunks * DimInner, Seq, a.Qkv[l], {TransitionArg("l")}{dScan}, a.DQkv{da}, a.ChunkAgg);")
                 .Line("Device.Launch(Kernels.ChunkCarryBackward, Batch * DimInner, Seq, a.ChunkAgg);")
                 .Line($"Device.Launch(Kernels.ChunkApplyBackward, Batch * Chunks * DimInner, Seq, a.Qkv[l], {TransitionArg("l")}{States}, {dScan}, a.DQkv{da}, a.ChunkAgg);")
                 .Close()
                 .Line("else")
                 .Line($"    Device.Launch(Kernels.ScanBackward, Batch * DimInner, Seq, a.Qkv[l], {TransitionArg("l")}{States}, {dScan}, a.DQkv{da});");
            }
            else
            {
                w.Line($"Device.Launch(Kernels.ScanStatesBackward, Batch * Heads * HeadDim * HeadDim, Seq, a.Qkv[l], {TransitionArg("l")}{dScan}, a.GradStates);");
                w.Line($"Device.Launch(Kernels.ScanInputsBackward, R * Heads, Seq, a.Qkv[l], {States}, a.GradStates, {dScan}, a.DQkv{da});");
            }
            if (!s.AblateStateTransition)
            {
                Launch("TransitionBackward", "R * Heads", "a.TransitionIn[l]", Wt("TransitionB"), "a.DTransition", "a.DTransitionIn");
                ColumnSum("2 * Heads", "a.DTransitionIn", Gr("TransitionB"));
                Gemm(true, false, "2 * Heads", "Dim", "R", "a.DTransitionIn", "h", One, Gr("TransitionW"));
                inputGrad.Add("a.DTransitionIn", "2 * Heads", "TransitionW");
            }
        }

        // Reverse of AttentionForward: values, probabilities, softmax, queries and keys, then the in-place
        // relative-position scaling and rotation undone on the gradients.
        void AttentionBackward(string dOut, InputGrad inputGrad)
        {
            Launch("AttentionGradValues", "R * DimInner", "Seq", "a.Probs[l]", dOut, "a.DQkv");
            Launch("AttentionGradProbs", "Batch * Heads * Seq * Seq", "Seq", "a.Qkv[l]", dOut, "a.DProbs");
            if (s.SoftmaxNormalize) Launch("AttentionSoftmaxBackward", "Batch * Heads * Seq", "Seq", "a.Probs[l]", "a.DProbs");
            Launch("AttentionGradQueriesKeys", "R * DimInner", "Seq", "a.Qkv[l]", "a.DProbs", "a.DQkv");
            if (s.RelPos)
            {
                Launch("RelPosBackward", "R * Heads", "a.Transition[l]", "a.Cum[l]", "a.Qkv[l]", "a.DQkv", "a.DTransition");
                Launch("TransitionBackward", "R * (DimInner / 2)", "a.TransitionIn[l]", "a.DTransition", "a.DTransitionIn");
                Gemm(true, false, "DimInner", "Dim", "R", "a.DTransitionIn", "h", One, Gr("RelPosW"));
                inputGrad.Add("a.DTransitionIn", "DimInner", "RelPosW");
            }
            if (s.RotaryEmbedding) Launch("Rotate", "R * DimInner", "Seq", "a.DQkv", Wt("RotaryFreqs"), n.Lit(-1));
        }

        /// <summary>
        /// Sums the block input's gradient over the block's projections: into a.DH for pre-norm blocks (the first
        /// overwrites), or straight into dX for post-norm blocks, whose input is the residual itself.
        /// </summary>
        sealed class InputGrad
        {
            readonly TransformerEmitter e;
            bool first = true;

            public InputGrad(TransformerEmitter emitter) => e = emitter;

            public void Add(string dOut, string outWidth, string weight)
            {
                string beta = e.Pre && first ? e.Zero : e.One;
                e.Gemm(false, false, "R", "Dim", outWidth, dOut, e.Wt(weight), beta, e.Pre ? "a.DH" : "dX");
                first = false;
            }
        }

        // Post-norm: dX = ∂L/∂LayerNorm-output becomes ∂L/∂(x + f(x)) in place; parameter sums read dX first.
        void BackwardBlockOutput(string block, string norm, string sum)
        {
            if (Pre) return;
            Launch("LayerNormDimBackwardParams", "Dim", "R", sum, $"a.NormStats[{block}]", "dX", Gr(norm + "W"), Gr(norm + "B"));
            Launch("LayerNormDimBackward", "R", sum, Wt(norm + "W"), $"a.NormStats[{block}]", "dX", "dX");
        }

        // Pre-norm: dX += RMSNorm backward of a.DH (the residual path already holds dX).
        void BackwardBlockInput(string block, string norm)
        {
            if (!Pre) return;
            Launch("RmsNormBackward", "R", "x", Wt(norm + "G"), $"a.InvNorm[{block}]", "a.DH", "dX");
            Launch("RmsNormBackwardGamma", "Dim", "R", "x", $"a.InvNorm[{block}]", "a.DH", Gr(norm + "G"));
        }

        void ActivationsClass()
        {
            // (field, count per model or null for one, elements, why it is kept); sizes are in rows = batch·seq.
            var list = new List<(string Name, string? Count, string Size, string Why)>
            {
                ("X", "2 * Depth + 1", "rows * Dim", "residual stream at each block boundary"),
            };
            if (Pre)
            {
                list.Add(("H", "2 * Depth + 1", "rows * Dim", "RMSNorm outputs: the inputs of each block and of the head"));
                list.Add(("InvNorm", "2 * Depth + 1", "rows", "1/‖x‖ per row of each RMSNorm"));
            }
            else
            {
                list.Add(("Sum", "2 * Depth", "rows * Dim", "x + f(x) before each block's LayerNorm"));
                list.Add(("NormStats", "2 * Depth", "rows * 2", "mean and rstd per row of each LayerNorm"));
            }
            list.Add(("Qkv", "Depth", "rows * 3 * DimInner", "q | k | v"));
            if (s.UseGateLoopedAttn) GateLoopActivations(list);
            else AttentionActivations(list);
            if (s.SwishGating)
            {
                list.Add(("Gates", "Depth", "rows * DimInner", "x·Wgᵀ before silu"));
                list.Add(("Gated", "Depth", "rows * DimInner", "mixer output ⊙ silu(gates)"));
            }
            list.Add(("FfPre", "Depth", "rows * Hidden", "feed-forward pre-activations (bias added)"));
            list.Add(("FfAct", "Depth", "rows * Hidden", "GELU outputs"));
            list.Add(("DX", null, "rows * Dim", "gradient of the residual stream"));
            if (Pre) list.Add(("DH", null, "rows * Dim", "gradient of a block's normalized input"));
            list.Add(("DF", null, "rows * Hidden", "feed-forward hidden gradient"));
            list.Add(("DQkv", null, "rows * 3 * DimInner", "gradient of q | k | v"));
            if (s.SwishGating)
            {
                list.Add(("DMixed", null, "rows * DimInner", "gradient of the gated input"));
                list.Add(("DGates", null, "rows * DimInner", "gradient of x·Wgᵀ"));
            }
            if (s.HasOutProjection) list.Add(("DGated", null, "rows * DimInner", "gradient of the output projection's input"));

            ModelSource.Views(w, n, "Activations", "Every activation for one (batch, sequence length), allocated once per shape.", list);
            w.Line();
        }

        void GateLoopActivations(List<(string, string?, string, string)> list)
        {
            string stateRow = s.MaxHeads ? "2 * DimInner" : "2 * DimInner * HeadDim";
            if (!s.AblateStateTransition)
            {
                list.Add(("TransitionIn", "Depth", "rows * 2 * Heads", "x·Waᵀ before the bias"));
                list.Add(("Transition", "Depth", "rows * 2 * Heads", "the complex state transitions a"));
            }
            // The carried state has one row per sequence, not per token.
            list.Add(("Carry", "Depth", $"batch * {stateRow}", "scan state per sequence for passes that start from zero"));
            if (s.CheckpointGateLoopedAttn) list.Add(("StateScratch", null, $"rows * {stateRow}", "scan states of one layer, recomputed in backward"));
            else list.Add(("States", "Depth", $"rows * {stateRow}", "scan states of every layer"));
            if (s.MaxHeads) list.Add((ModelSource.ChunkAggregates, null, "(long)batch * ((seq + Chunk - 1) / Chunk) * DimInner * 4", "per chunk and channel, the chunked scans' aggregates, then carried-in values"));
            list.Add(("ScanOut", "Depth", "rows * DimInner", "scan outputs o (heads merged)"));
            if (s.SubLayerNorm)
            {
                list.Add(("SubOut", "Depth", "rows * DimInner", "sub-LayerNorm outputs"));
                list.Add(("SubStats", "Depth", "rows * 2", "sub-LayerNorm mean and rstd"));
                list.Add(("DScanOut", null, "rows * DimInner", "gradient of the scan output"));
            }
            if (!s.AblateStateTransition)
            {
                list.Add(("DTransition", null, "rows * 2 * Heads", "gradient of a"));
                list.Add(("DTransitionIn", null, "rows * 2 * Heads", "gradient of x·Waᵀ + ba"));
            }
            if (!s.MaxHeads) list.Add(("GradStates", null, $"rows * {stateRow}", "reverse-scan states Ĝ of one layer"));
        }

        void AttentionActivations(List<(string, string?, string, string)> list)
        {
            list.Add(("Probs", "Depth", "batch * Heads * (long)seq * seq", "causal attention probabilities (scores when not normalized)"));
            list.Add(("AttnOut", "Depth", "rows * DimInner", "attention outputs (heads merged)"));
            list.Add(("DProbs", null, "batch * Heads * (long)seq * seq", "gradient of the probabilities, then of the scores"));
            if (!s.RelPos) return;
            list.Add(("TransitionIn", "Depth", "rows * DimInner", "x·Waᵀ: complex relative-position gates"));
            list.Add(("Transition", "Depth", "rows * DimInner", "the gates a after the polar sigmoid"));
            list.Add(("Cum", "Depth", "rows * DimInner", "their cumulative products C"));
            list.Add(("DTransition", null, "rows * DimInner", "gradient of a"));
            list.Add(("DTransitionIn", null, "rows * DimInner", "gradient of x·Waᵀ"));
        }

        void KernelsClass()
        {
            // Kernel templates, and the host range entries written for some of them (the rest get generated twins).
            var parts = new List<string> { ActivationKernels.Helpers(n), EmbeddingKernels.Emit(n) };
            var host = new List<string>();
            if (Pre)
            {
                parts.Add(RmsNormKernels.Emit(n, s.Dim));
                host.Add(RmsNormKernels.HostEntries(n));
            }
            else
            {
                parts.Add(LayerNormKernels.Emit(n, "Dim"));
                host.Add(LayerNormKernels.HostEntries(n, "Dim"));
            }
            if (s.UseGateLoopedAttn)
            {
                if (!s.AblateStateTransition)
                {
                    parts.Add(TransitionKernels.Emit(s, n, "Heads", bias: true));
                    host.Add(TransitionKernels.HostEntries(s, n, "Heads", bias: true));
                }
                parts.Add(ScanKernels.Emit(s, n));
                host.Add(ScanKernels.HostEntries(s, n));
                if (s.SubLayerNorm)
                {
                    parts.Add(LayerNormKernels.Emit(n, "DimInner"));
                    host.Add(LayerNormKernels.HostEntries(n, "DimInner"));
                }
            }
            else
            {
                parts.Add(AttentionKernels.Attention(n, s.HeadDim));
                if (s.RotaryEmbedding) parts.Add(AttentionKernels.Rotary(n));
                if (s.RelPos)
                {
                    parts.Add(TransitionKernels.Emit(s, n, "(DimInner / 2)", bias: false));
                    host.Add(TransitionKernels.HostEntries(s, n, "(DimInner / 2)", bias: false));
                    parts.Add(AttentionKernels.RelPos(n));
                }
            }
            if (s.SwishGating)
            {
                parts.Add(ActivationKernels.SwishGate(n));
                host.Add(ActivationKernels.SwishGateHost(n));
            }
            if (!s.HasOutProjection) parts.Add(ElementwiseKernels.Add(n));
            parts.Add(ActivationKernels.Gelu(n));
            host.Add(ActivationKernels.GeluHost(n));
            parts.Add(ElementwiseKernels.AddBias(n, "Dim"));
            parts.Add(CrossEntropyKernels.Emit(n));
            ModelSource.Kernels(w, "The model's kernels: static ILGPU kernel methods whose sizes are the constants above.", parts, host);
        }
    }
}
