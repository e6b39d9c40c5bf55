using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Kernels;
using GateLoop.Generator.Model;

namespace GateLoop.Generator.Emit
{
    /// <summary>
    /// Writes one SimpleGateLoop layer: its constant, parameter table, activation plan, the forward and backward
    /// schedules (kernel launches and GEMMs in order) and the constant-size kernels.
    /// Forward: [RMSNorm] → Z = h·Wᵀ → fused sigmoid + scan + q ⊙ S → [LayerNorm]. The scan overwrites kv with S_t
    /// and the gate logits with a_t in Z, which is all backward needs of the scan.
    /// </summary>
    internal sealed class SimpleGateLoopEmitter
    {
        readonly SimpleGateLoopSpec s;
        readonly Numeric n;
        readonly List<Tensor> tensors = new List<Tensor>();
        readonly CodeWriter w = new CodeWriter();

        SimpleGateLoopEmitter(SimpleGateLoopSpec spec, Numeric numeric)
        {
            s = spec;
            n = numeric;
            // The seed's state_dict order: norm, to_qkva, maybe_post_ln.
            var dim = ("Dim", s.Dim);
            if (s.PreNorm) tensors.Add(new Tensor("NormGamma", "norm.gamma", new[] { dim }, "Ones", 0));
            tensors.Add(new Tensor("QkvaW", "to_qkva.0.weight", new[] { ("3 * Dim", 3 * s.Dim), dim }, "Uniform", s.Dim));
            if (s.PostLayerNorm)
            {
                tensors.Add(new Tensor("PostLnW", "maybe_post_ln.weight", new[] { dim }, "Ones", 0));
                tensors.Add(new Tensor("PostLnB", "maybe_post_ln.bias", new[] { dim }, "Zeros", 0));
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                t.Offset = offset;
                offset += t.Length;
            }
        }

        public static string Emit(SimpleGateLoopSpec spec, Numeric numeric) => new SimpleGateLoopEmitter(spec, numeric).Write();

        /// <summary>Every member the generated class declares; a layer may not share a name with one (CS0542).</summary>
        public static readonly HashSet<string> MemberNames = new HashSet<string>(new[]
        {
            "Dim", "NormGamma", "QkvaW", "PostLnW", "PostLnB", "ParameterTable", "Hyperparameters", "Configuration",
            "act", "scratch", "PlanForward", "PlanBackward", "ForwardCore", "BackwardCore",
            "Activations", "Scratch", "Kernels",
        }.Concat(ModelSource.ChunkedScanMembers));

        string T => n.Type;
        string One => n.Lit(1);
        string Zero => n.Lit(0);

        // The backward needs a buffer for ∂L/∂h whenever h is not x itself, and LayerNorm's backward borrows it
        // for ∂L/∂(q ⊙ S) (dead before ∂L/∂h is written).
        bool HasDH => s.PreNorm || s.PostLayerNorm;

        string Write()
        {
            var options = new List<string> { s.PreNorm ? "pre-norm (RMSNorm)" : "no pre-norm" };
            if (s.PostLayerNorm) options.Add("post-LayerNorm");
            if (s.Reverse) options.Add("reverse");
            options.Add(s.Heinsen ? "log-space (Heinsen) scan" : "plain scan");
            ModelSource.Open(w, s.Type, $"SimpleGateLoop layer '{s.Type.Name}': Dim {s.Dim}, {string.Join(", ", options)}, {T}.",
                $"{ModelSource.Runtime}SimpleGateLoopLayer<{T}>");

            w.Line("/// <summary>Channels per position; every kernel below is specialized to it.</summary>")
             .Line($"public const int Dim = {s.Dim};")
             .Line()
             .Line("// Offsets into the flat parameter buffer, in state_dict order.")
             .Line($"const long {string.Join(", ", tensors.Select(t => $"{t.Field} = {t.Offset}"))};")
             .Line();
            ModelSource.ParameterTable(w, tensors.Select(t => (t, t.Name, t.Offset)));
            ModelSource.Hyperparameters(w, "The declaration's attribute values.", new (string, object)[]
            {
                ("Dim", s.Dim), ("PreNorm", s.PreNorm), ("PostLayerNorm", s.PostLayerNorm), ("Reverse", s.Reverse), ("Heinsen", s.Heinsen),
            });
            Members();
            Forward();
            Backward();
            ModelSource.Views(w, n, "Activations", "What the forward keeps for one (batch, sequence length).", ActivationViews());
            w.Line();
            ModelSource.Views(w, n, "Scratch", "Backward buffers for one (batch, sequence length), allocated on the first backward.", ScratchViews());
            w.Line();
            KernelsClass();
            ModelSource.Close(w, s.Type);
            return w.ToString();
        }

        void Members()
        {
            w.Line("Activations? act;")
             .Line("Scratch? scratch;")
             .Line()
             .Line("/// <summary>Creates the layer's buffers on <paramref name=\"device\"/>; call Initialize or WriteWeights before use.</summary>")
             .Line($"public {s.Type.Name}({ModelSource.Runtime}Device device) : base(device, ParameterTable, Dim, reverse: {(s.Reverse ? "true" : "false")}) {{ }}")
             .Line();
            ModelSource.ChunkedScans(w, "Dim", 64);
            w.Line("/// <inheritdoc />")
             .Line($"protected override void PlanForward({ModelSource.Runtime}Workspace workspace) => act = new Activations(workspace, Batch, Seq);")
             .Line()
             .Line("/// <inheritdoc />")
             .Line($"protected override void PlanBackward({ModelSource.Runtime}Workspace workspace) => scratch = new Scratch(workspace, Batch, Seq);")
             .Line()
             .Line("/// <inheritdoc />")
             .Line("protected override long ActivationElements(int batch, int seq) => Activations.Elements(batch, seq) + Scratch.Elements(batch, seq);")
             .Line();
        }

        string Param(string buffer, string field) => $"{buffer}({field}, {tensors.Single(t => t.Field == field).LengthExpr})";

        void Gemm(bool ta, bool tb, string m, string nn, string k, string a, string b, string beta, string c) =>
            w.Line($"Device.Gemm({(ta ? "true" : "false")}, {(tb ? "true" : "false")}, {m}, {nn}, {k}, {One}, {a}, {b}, {beta}, {c});");

        void Launch(string kernel, string count, params string[] args) =>
            w.Line($"Device.Launch(Kernels.{kernel}, {count}, {string.Join(", ", args)});");

        string H => s.PreNorm ? "a.H" : "x";

        void Forward()
        {
            w.Line("/// <inheritdoc />")
             .Open($"protected override void ForwardCore(ArrayView<{T}> x, ArrayView<{T}> y, ArrayView<{T}> initial, ArrayView<{T}> gate, ArrayView<{T}> state)");
            w.Line("var a = act!;").Line("int R = Rows;");
            if (s.PreNorm) Launch("RmsNormForward", "R", "x", Param("W", "NormGamma"), "a.H", "a.InvNorm");
            Gemm(false, true, "R", "3 * Dim", "Dim", H, Param("W", "QkvaW"), Zero, "a.Z");
            string mixed = s.PostLayerNorm ? "a.Out" : "y";
            if (s.Heinsen) Launch("HeinsenScanForward", "Batch * Dim", "Seq", "a.Z", "initial", mixed, "gate", "state");
            else
            {
                w.Open("if (Chunked)");
                Launch("ChunkScanForward", "Batch * Chunks * Dim", "Seq", "a.Z", "a.ChunkAgg");
                Launch("ChunkCarryForward", "Batch * Dim", "Seq", "a.ChunkAgg", "initial", "gate", "state");
                Launch("ChunkApplyForward", "Batch * Chunks * Dim", "Seq", "a.Z", "a.ChunkAgg", mixed);
                w.Close().Line("else");
                w.Line("    " + $"Device.Launch(Kernels.ScanForward, Batch * Dim, Seq, a.Z, initial, {mixed}, gate, state);");
            }
            if (s.PostLayerNorm) Launch("LayerNormDimForward", "R", "a.Out", Param("W", "PostLnW"), Param("W", "PostLnB"), "y", "a.Stats");
            w.Close().Line();
        }

        void Backward()
        {
            w.Line("/// <inheritdoc />")
             .Open($"protected override void BackwardCore(ArrayView<{T}> x, ArrayView<{T}> dy, ArrayView<{T}> dx, ArrayView<{T}> initial)");
            w.Line("var a = act!;").Line("var d = scratch!;").Line("int R = Rows;");
            string dMixed = "dy";
            if (s.PostLayerNorm)
            {
                Launch("LayerNormDimBackwardParams", "Dim", "R", "a.Out", "a.Stats", "dy", Param("G", "PostLnW"), Param("G", "PostLnB"));
                Launch("LayerNormDimBackward", "R", "a.Out", Param("W", "PostLnW"), "a.Stats", "dy", "d.DH");
                dMixed = "d.DH";
            }
            w.Open("if (Chunked)");
            Launch("ChunkScanBackward", "Batch * Chunks * Dim", "Seq", "a.Z", dMixed, "d.DZ", "a.ChunkAgg");
            Launch("ChunkCarryBackward", "Batch * Dim", "Seq", "a.ChunkAgg");
            Launch("ChunkApplyBackward", "Batch * Chunks * Dim", "Seq", "a.Z", "initial", dMixed, "d.DZ", "a.ChunkAgg");
            w.Close().Line("else");
            w.Line("    " + $"Device.Launch(Kernels.ScanBackward, Batch * Dim, Seq, a.Z, initial, {dMixed}, d.DZ);");
            Gemm(true, false, "3 * Dim", "Dim", "R", "d.DZ", H, One, Param("G", "QkvaW"));
            if (s.PreNorm)
            {
                Gemm(false, false, "R", "Dim", "3 * Dim", "d.DZ", Param("W", "QkvaW"), Zero, "d.DH");
                w.Line("dx.MemSetToZero();");
                Launch("RmsNormBackward", "R", "x", Param("W", "NormGamma"), "a.InvNorm", "d.DH", "dx");
                Launch("RmsNormBackwardGamma", "Dim", "R", "x", "a.InvNorm", "d.DH", Param("G", "NormGamma"));
            }
            else Gemm(false, false, "R", "Dim", "3 * Dim", "d.DZ", Param("W", "QkvaW"), Zero, "dx");
            w.Close().Line();
        }

        IEnumerable<(string, string, string)> ActivationViews()
        {
            if (s.PreNorm)
            {
                yield return ("H", "rows * Dim", "RMSNorm(x)");
                yield return ("InvNorm", "rows", "1/‖x‖ per position");
            }
            yield return ("Z", "rows * 3 * Dim", "[q | kv | gate logits] = h·Wᵀ; after the scan [q | S | a]");
            yield return (ModelSource.ChunkAggregates, "(long)batch * ((seq + Chunk - 1) / Chunk) * Dim * 2", "per chunk and channel, the chunked scans' aggregates, then carried-in values");
            if (s.PostLayerNorm)
            {
                yield return ("Out", "rows * Dim", "q ⊙ S before the LayerNorm");
                yield return ("Stats", "rows * 2", "LayerNorm mean and rstd per position");
            }
        }

        IEnumerable<(string, string, string)> ScratchViews()
        {
            yield return ("DZ", "rows * 3 * Dim", "gradient of Z");
            if (HasDH)
                yield return ("DH", "rows * Dim", s.PostLayerNorm && s.PreNorm ? "gradient of q ⊙ S, then of h" : s.PostLayerNorm ? "gradient of q ⊙ S" : "gradient of h");
        }

        void KernelsClass()
        {
            // Kernel templates, and the host range entries written for some of them (the rest get generated twins).
            var parts = new List<string> { ActivationKernels.Helpers(n) };
            var host = new List<string> { SimpleGateLoopScanKernels.HostEntries(s, n) };
            if (s.PreNorm)
            {
                parts.Add(RmsNormKernels.Emit(n, s.Dim));
                host.Add(RmsNormKernels.HostEntries(n));
            }
            parts.Add(SimpleGateLoopScanKernels.Emit(s, n));
            if (s.PostLayerNorm)
            {
                parts.Add(LayerNormKernels.Emit(n, "Dim"));
                host.Add(LayerNormKernels.HostEntries(n, "Dim"));
            }
            ModelSource.Kernels(w, "The layer's kernels: static ILGPU kernel methods whose sizes are the constant above.", parts, host);
        }
    }
}
