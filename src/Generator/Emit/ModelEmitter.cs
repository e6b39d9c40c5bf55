using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Model;
using GateLoop.Generator.Ops;
using GateLoop.Generator.Passes;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Emit
{
    /// <summary>
    /// Writes one transformer's source from its program: constants, the parameter table, the activation plan, the
    /// forward schedule (the ops' steps in order, the layer's for each layer), the backward schedule (the same ops in
    /// reverse, each its own backward), the launches' plan check and the ops' constant-size kernels; or the
    /// problems the launch check found, and no source.
    /// </summary>
    internal sealed class ModelEmitter
    {
        readonly TransformerSpec s;
        readonly Graph graph;
        readonly Numeric n;
        readonly ParameterLayout layout;
        readonly Program program;
        readonly LaunchCheck check;
        readonly MemoryPlan plan;
        readonly CodeWriter w = new CodeWriter();

        ModelEmitter(TransformerSpec spec, Graph graph, Numeric numeric)
        {
            s = spec;
            this.graph = graph;
            n = numeric;
            layout = new ParameterLayout(graph);
            program = Rewritten(spec, graph, numeric);
            check = new LaunchCheck(program, Constants(spec));
            plan = new MemoryPlan(graph, program, Constants(spec));
        }

        /// <summary>The program of <paramref name="graph"/> with the fusions applied, as the model's source renders it.</summary>
        public static Program Rewritten(TransformerSpec spec, Graph graph, Numeric numeric)
        {
            var program = new Program(graph, numeric);
            program.Rewrite(Fusion.BiasActivation);
            // The scan's consumer follows it once the gates' product runs with the others of its input; then the
            // transition, the scan and the gate are one launch where the scan is one.
            program.GroupProducts();
            // A token's forward on a GPU is its own branch, the ops around each product joined into it; the rewrites
            // below apply in both branches. Models with softmax attention carry no state and re-run their prefix at
            // every step of generation, so their forward never runs one position alone.
            if (!graph.Members(numeric).Any(m => m.Key == Attention.Core.NoCarriedState)) program.Branch(Decoding.Condition, Decoding.Variant);
            program.Rewrite(Fusion.AddsIntoRow);
            var constants = Constants(spec);
            program.RewriteChoices((p, a, b) => Fusion.PairsWhereRead(p, a, b, constants));
            program.RewriteChoices((p, a, b) => Fusion.ElementwiseWhereWritten(p, a, b, constants));
            // A token is one position, which no scan chunks.
            program.Never("Chunked", within: Decoding.Condition);
            return program;
        }

        /// <summary>The model's source, or the problems its launches have (then no source).</summary>
        public static (string Source, IReadOnlyList<string> Problems) Emit(TransformerSpec spec, Graph graph, Numeric numeric)
        {
            var emitter = new ModelEmitter(spec, graph, numeric);
            return emitter.check.Problems.Count > 0 ? ("", emitter.check.Problems) : (emitter.Write(), emitter.check.Problems);
        }

        /// <summary>The values of the constants <see cref="SizeConstants"/> declares, by name.</summary>
        public static IReadOnlyDictionary<string, long> Constants(TransformerSpec s) => new Dictionary<string, long>
        {
            ["NumTokens"] = s.NumTokens, ["Dim"] = s.Dim, ["Depth"] = s.Depth, ["Heads"] = s.Heads, ["HeadDim"] = s.HeadDim,
            ["DimInner"] = s.DimInner, ["Hidden"] = s.Hidden,
        };

        string T => n.Type;

        const string Rt = Numeric.Runtime;

        string Write()
        {
            ModelSource.Open(w, s.Type,
                $"GateLoop transformer '{s.Type.Name}': NumTokens {s.NumTokens}, Dim {s.Dim}, Depth {s.Depth}, {s.Heads} heads of {s.HeadDim}, inner {s.DimInner}, " +
                $"{(s.PostLayerNorm ? "post" : "pre")}-norm, {(s.UseGateLoopedAttn ? "gate-looped" : "softmax")} attention, {n.Type}.",
                $"{Rt}TransformerModel<{T}>");
            Constants();
            ModelSource.ParameterTable(w, layout.Table);
            Hyperparameters();
            Members();
            Forward();
            Backward();
            ModelSource.LargestLaunch(w, check.PlanDomains);
            ModelSource.Views(w, n, "Activations", "Every activation for one (batch, sequence length), allocated once per shape.",
                plan.Forward.Concat(plan.Gradients), plan.Packed, plan.PackedPerRow, plan.GemmInputs);
            w.Line();
            ModelSource.Kernels(w, "The model's kernels: static ILGPU kernel methods whose sizes are the constants above.", program.Kernels);
            ModelSource.Close(w, s.Type);
            return w.ToString();
        }

        /// <summary>The constants a transformer's kernels are specialized to.</summary>
        public static string SizeConstants(TransformerSpec s) =>
            $"public const int NumTokens = {s.NumTokens}, Dim = {s.Dim}, Depth = {s.Depth}, Heads = {s.Heads}, HeadDim = {s.HeadDim}, " +
            $"DimInner = {s.DimInner}, Hidden = {s.Hidden};";

        void Constants()
        {
            static string Offsets(IEnumerable<(Param Param, long Offset)> tensors) => string.Join(", ", tensors.Select(t => $"{t.Param.Field} = {t.Offset}"));
            w.Line("/// <summary>Model sizes; every kernel below is specialized to them.</summary>")
             .Line(SizeConstants(s))
             .Line()
             .Line("// Offsets into the flat parameter buffer: globals, then Depth layers of LayerStride elements, then the head.")
             .Line($"const long {Offsets(layout.Global)};")
             .Line($"const long LayerStart = {layout.LayerStart}, LayerStride = {layout.LayerStride};")
             .Line($"const long {Offsets(layout.Layer)};")
             .Line($"const long {Offsets(layout.Head)};")
             .Line();
        }

        void Hyperparameters()
        {
            var values = new List<(string, object)>
            {
                ("NumTokens", s.NumTokens), ("Dim", s.Dim), ("Depth", s.Depth), ("FeedForwardMult", s.FeedForwardMult), ("FeedForwardReluSquared", s.FeedForwardReluSquared),
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
                    ("SimpleGateLoopBlocks", s.SimpleGateLoopBlocks),
                });
            ModelSource.Hyperparameters(w, "The declaration's attribute values, resolved (heads and inner width filled in).", values);
        }

        void Members()
        {
            w.Line("/// <summary>Creates the model's buffers on <paramref name=\"device\"/>; call Initialize or WriteWeights before use.</summary>")
             .Line($"public {s.Type.Name}({Rt}Device device) : base(device, ParameterTable) {{ }}")
             .Line()
             .Line("/// <inheritdoc />")
             .Line("public override int Vocabulary => NumTokens;")
             .Line()
             .Line("/// <inheritdoc />")
             .Line($"protected override object PlanActivations({Rt}Workspace workspace, int batch, int seq, bool bf16) => new Activations(workspace, batch, seq, bf16);")
             .Line()
             .Line("/// <inheritdoc />")
             .Line("protected override long ActivationPlanBytes(int batch, int seq, bool bf16) => Activations.Bytes(batch, seq, bf16);")
             .Line();
            ModelSource.Members(w, program.Steps.OfType<Choice>().Any(c => c.Condition == Decoding.Condition)
                ? graph.Members(n).Append(Decoding.Member) : graph.Members(n));
            w.Line("/// <inheritdoc />")
             .Line($"protected override void ComputeLoss({Plan} plan, {T} gradScale) =>");
            var loss = new CodeWriter();
            // The loss is one launch over the rows: the plan's, as an expression body has no locals.
            var names = ModelViews.ToDictionary(e => e.Key, e => e.Value);
            names["Rows"] = "plan.Rows";
            new ScheduleText(loss, n, layout.InLayer, names, plan.GemmInputs).Write(program.Loss);
            w.Line("    " + loss.ToString().Trim()).Line();
        }

        /// <summary>The model's views the ops name, each a member of the plan the schedules are passed.</summary>
        static readonly IReadOnlyDictionary<string, string> ModelViews = new Dictionary<string, string>
        {
            ["Inputs"] = "plan.Inputs", ["Targets"] = "plan.Targets", ["LogitsView"] = "plan.Logits", ["LogitGrads"] = "plan.LogitGrads",
            ["LossRows"] = "plan.LossRows",
        };

        string Plan => $"{Rt}ModelPlan<{T}>";

        ScheduleText Schedule() => new ScheduleText(w, n, layout.InLayer,
            ScheduleText.PlanNames.Concat(ModelViews).ToDictionary(e => e.Key, e => e.Value), plan.GemmInputs);

        /// <summary>The start of a schedule: the plan's activations and shape as locals.</summary>
        void PlanLocals() => w.Line("var a = (Activations)plan.Activations;").Line("int batch = plan.Batch, seq = plan.Seq, R = plan.Rows;");

        void Forward()
        {
            w.Line("/// <inheritdoc />").Open($"protected override void ForwardCore({Plan} plan, bool continueState)");
            PlanLocals();
            var schedule = Schedule();
            schedule.Write(program.ForwardGlobal);
            w.Open("for (int l = 0; l < Depth; l++)");
            w.Line("long p = LayerStart + l * LayerStride;");
            schedule.Write(program.ForwardLayer);
            w.Close();
            w.Line("// Head.");
            schedule.Write(program.ForwardHead);
            w.Close().Line();
        }

        void Backward()
        {
            w.Line("/// <inheritdoc />").Open($"protected override void BackwardCore({Plan} plan)");
            PlanLocals();
            w.Line("var dX = a.DX;");
            w.Line($"// Head: dX = ∂L/∂X[{(s.SimpleGateLoopBlocks ? 3 : 2)}·Depth].");
            var schedule = Schedule();
            schedule.Write(program.BackwardHead);
            // The parameters lie globals, layers, head: each part's gradients are final once its ops' backwards have run.
            w.Line("ReportGradientsReady(LayerStart + Depth * LayerStride);");
            w.Open("for (int l = Depth - 1; l >= 0; l--)");
            w.Line("long p = LayerStart + l * LayerStride;");
            schedule.Write(program.BackwardLayer);
            w.Line("ReportGradientsReady(p);");
            w.Close();
            schedule.Write(program.BackwardGlobal);
            w.Line("ReportGradientsReady(0);");
            w.Close().Line();
        }
    }
}
