using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Model;
using GateLoop.Generator.Passes;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Emit
{
    /// <summary>
    /// Writes one SimpleGateLoop layer's source from its graph: its constant, parameter table, the forward's
    /// activations and the backward's scratch (planned on the first backward), the forward and backward schedules
    /// over the caller's views and the ops' constant-size kernels.
    /// </summary>
    internal sealed class LayerEmitter
    {
        readonly SimpleGateLoopSpec s;
        readonly Graph graph;
        readonly Numeric n;
        readonly ParameterLayout layout;
        readonly Program program;
        readonly LaunchCheck check;
        readonly CodeWriter w = new CodeWriter();

        LayerEmitter(SimpleGateLoopSpec spec, Graph graph, Numeric numeric)
        {
            s = spec;
            this.graph = graph;
            n = numeric;
            layout = new ParameterLayout(graph);
            program = new Program(graph, numeric);
            check = new LaunchCheck(program, new Dictionary<string, long> { ["Dim"] = spec.Dim });
        }

        /// <summary>The layer's source, or the problems its launches have (then no source).</summary>
        public static (string Source, IReadOnlyList<string> Problems) Emit(SimpleGateLoopSpec spec, Graph graph, Numeric numeric)
        {
            var emitter = new LayerEmitter(spec, graph, numeric);
            return emitter.check.Problems.Count > 0 ? ("", emitter.check.Problems) : (emitter.Write(), emitter.check.Problems);
        }

        /// <summary>The constant a layer's kernels are specialized to.</summary>
        public static string SizeConstants(SimpleGateLoopSpec s) => $"public const int Dim = {s.Dim};";

        string T => n.Type;

        string Write()
        {
            var options = new List<string> { s.PreNorm ? "pre-norm (RMSNorm)" : "no pre-norm" };
            if (s.PostLayerNorm) options.Add("post-LayerNorm");
            if (s.Reverse) options.Add("reverse");
            options.Add(s.Heinsen ? "log-space (Heinsen) scan" : "plain scan");
            ModelSource.Open(w, s.Type, $"SimpleGateLoop layer '{s.Type.Name}': Dim {s.Dim}, {string.Join(", ", options)}, {T}.",
                $"{Numeric.Runtime}SimpleGateLoopLayer<{T}>");

            w.Line("/// <summary>Channels per position; every kernel below is specialized to it.</summary>")
             .Line(SizeConstants(s))
             .Line()
             .Line("// Offsets into the flat parameter buffer, in state_dict order.")
             .Line($"const long {string.Join(", ", layout.Global.Select(t => $"{t.Param.Field} = {t.Offset}"))};")
             .Line();
            ModelSource.ParameterTable(w, layout.Table);
            ModelSource.Hyperparameters(w, "The declaration's attribute values.", new (string, object)[]
            {
                ("Dim", s.Dim), ("PreNorm", s.PreNorm), ("PostLayerNorm", s.PostLayerNorm), ("Reverse", s.Reverse), ("Heinsen", s.Heinsen),
            });
            Members();
            Forward();
            Backward();
            ModelSource.LargestLaunch(w, check.PlanDomains);
            var plan = new MemoryPlan(graph);
            ModelSource.Views(w, n, "Activations", "What the forward keeps for one (batch, sequence length).", plan.Forward);
            w.Line();
            ModelSource.Views(w, n, "Scratch", "Backward buffers for one (batch, sequence length), allocated on the first backward.", plan.Gradients);
            w.Line();
            ModelSource.Kernels(w, "The layer's kernels: static ILGPU kernel methods whose sizes are the constant above.", program.Kernels);
            ModelSource.Close(w, s.Type);
            return w.ToString();
        }

        void Members()
        {
            w.Line("Activations? act;")
             .Line("Scratch? scratch;")
             .Line()
             .Line("/// <summary>Creates the layer's buffers on <paramref name=\"device\"/>; call Initialize or WriteWeights before use.</summary>")
             .Line($"public {s.Type.Name}({Numeric.Runtime}Device device) : base(device, ParameterTable, Dim, reverse: {(s.Reverse ? "true" : "false")}) {{ }}")
             .Line();
            ModelSource.Members(w, graph.Members(n));
            w.Line("/// <inheritdoc />")
             .Line($"protected override void PlanForward({Numeric.Runtime}Workspace workspace, int batch, int seq) => act = new Activations(workspace, batch, seq);")
             .Line()
             .Line("/// <inheritdoc />")
             .Line($"protected override void PlanBackward({Numeric.Runtime}Workspace workspace, int batch, int seq) => scratch = new Scratch(workspace, batch, seq);")
             .Line()
             .Line("/// <inheritdoc />")
             .Line("protected override long ActivationElements(int batch, int seq) => Activations.Elements(batch, seq) + Scratch.Elements(batch, seq);")
             .Line();
        }

        void Forward()
        {
            w.Line("/// <inheritdoc />")
             .Open($"protected override void ForwardCore(int batch, int seq, ArrayView<{T}> x, ArrayView<{T}> y, ArrayView<{T}> initial, ArrayView<{T}> gate, ArrayView<{T}> state)");
            w.Line("var a = act!;").Line("int R = batch * seq;");
            new ScheduleText(w, n, layout.InLayer, ScheduleText.PlanNames).Write(program.ForwardGlobal);
            w.Close().Line();
        }

        void Backward()
        {
            w.Line("/// <inheritdoc />")
             .Open($"protected override void BackwardCore(int batch, int seq, ArrayView<{T}> x, ArrayView<{T}> dy, ArrayView<{T}> dx, ArrayView<{T}> initial)");
            w.Line("var a = act!;").Line("var d = scratch!;").Line("int R = batch * seq;");
            new ScheduleText(w, n, layout.InLayer, ScheduleText.PlanNames).Write(program.BackwardGlobal);
            w.Close().Line();
        }
    }
}
