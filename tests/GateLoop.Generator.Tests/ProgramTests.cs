using GateLoop.Generator.Emit;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Lowering;
using GateLoop.Generator.Model;
using GateLoop.Generator.Passes;
using GateLoop.Generator.Templates;
using Xunit.Abstractions;

namespace GateLoop.Generator.Tests;

/// <summary>
/// The schedule as data: a model's program has one value per tensor with its producer and consumers, every launch
/// passes the launch check (and a planted bad one does not), and the memory plan packs the backward's gradients by
/// liveness.
/// </summary>
public sealed class ProgramTests(ITestOutputHelper output)
{
    static readonly TypeLocation Stub = new(null, default, "Stub");

    // The seed's enwik8 config: post-norm, 512 heads of one channel, gating.
    static readonly TransformerSpec Seed = new(Stub, NumTokens: 256, Dim: 512, Depth: 6, Heads: 512, DimInner: 512, FeedForwardMult: 4,
        SwishGating: true, PostLayerNorm: true, SubLayerNorm: false, FracGradientStateTransition: 0.9, AblateComplex: false,
        AblateStateTransition: false, CheckpointGateLoopedAttn: true);

    /// <summary>A kernel over one view, launched as the test says.</summary>
    sealed class Planted(Size domain, Func<Schedule, Arg[]> args) : Op
    {
        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            yield return new KernelSource("Planted", $"public static void Planted(Index1D index, ArrayView<{n.Type}> x) => x[index] = 0;");
        }

        public override void Forward(Schedule s) => s.Launch("Planted", domain, args(s));

        public override void Backward(Schedule s) { }
    }

    static readonly Value Residual = new("a.X[0]", "rows * Dim");

    // A forward schedule's steps where it does not decode a token on a GPU.
    static IReadOnlyList<Step> Training(IReadOnlyList<Step> steps) =>
        steps is [Choice { Condition: Decoding.Condition } decoding] ? decoding.Otherwise : steps;

    [Fact]
    public void A_token_on_a_gpu_runs_each_products_input_as_one_launch_with_the_ops_around_it()
    {
        var program = ModelEmitter.Rewritten(Seed, TransformerLowering.Lower(Seed), Numeric.Float);
        IReadOnlyList<Step> Decoded(IReadOnlyList<Step> steps) => Assert.IsType<Choice>(Assert.Single(steps)).Then;
        var layer = Decoded(program.ForwardLayer);
        // The scan is one launch with the transition and the gate: one position is never chunked, so the branch does
        // not ask (the training branch still does).
        Assert.DoesNotContain(layer, s => s is Choice);
        Assert.Contains(Assert.IsType<Choice>(Assert.Single(program.ForwardLayer)).Otherwise, s => s is Choice { Condition: "Chunked" });
        Assert.Equal(["ProductsQkvTransitionGates", "TransitionScanSwishGateForward", "ProductsOutAddResidual", "LayerNormDimProductsFf1BiasGelu",
            "ProductsFf2BiasAddResidual", "LayerNormDimForward"], layer.OfType<Launch>().Select(l => l.Kernel));
        Assert.DoesNotContain(layer, s => s is LinearProduct);
        Assert.Equal(["ProductsHead"], Decoded(program.ForwardHead).OfType<Launch>().Select(l => l.Kernel));
        // A token: the embedding, six launches per layer, the head: 38 (62 as GEMMs and row launches).
        Assert.Equal(38, program.ForwardGlobal.OfType<Launch>().Count() + Seed.Depth * layer.OfType<Launch>().Count() + 1);
        // The LayerNorm runs in every warp of its row; the warps of the first output store its output and statistics.
        var joined = Assert.Single(program.Kernels, k => k.Key == "LayerNormDimProductsFf1BiasGelu");
        Assert.Contains("if (stores) y[o + d] = xd;", joined.Kernel);
        Assert.Contains("dot = RowSum(dot);", joined.Kernel);
        Assert.Contains("LayerNormDimForwardSimd<", joined.HostEntry);
        // Checked at the branch's largest shape, and not a domain of the plans.
        var check = new LaunchCheck(program, ModelEmitter.Constants(Seed));
        Assert.Empty(check.Problems);
        Assert.DoesNotContain(check.PlanDomains, d => d.Kernel.Contains("Products"));
        // What only products read stays a GemmInput: the branch runs at fp32 products, where its values are the values.
        var plan = new MemoryPlan(TransformerLowering.Lower(Seed), program, ModelEmitter.Constants(Seed));
        Assert.Contains(plan.GemmInputs, b => b.Field == "FfAct");
    }

    static LaunchCheck Check(Op planted)
    {
        var graph = new Graph(new[] { planted }, new Op[0], new Op[0], 1);
        return new LaunchCheck(new Passes.Program(graph, Numeric.Float), new Dictionary<string, long> { ["Dim"] = 2048 });
    }

    [Fact]
    public void A_launch_whose_constant_domain_overflows_an_int_is_refused()
    {
        var check = Check(new Planted("Dim * Dim * Dim", _ => [Residual]));
        Assert.Equal("launch of Planted has 8,589,934,592 indices (Dim * Dim * Dim), more than a launch can index (2,147,483,647)", Assert.Single(check.Problems));
    }

    [Fact]
    public void A_model_with_an_overflowing_launch_gets_no_source_but_the_problem()
    {
        var graph = TransformerLowering.Lower(Seed);
        var planted = new Planted("Depth * Dim * Dim * Hidden", _ => [Residual]);
        var (source, problems) = ModelEmitter.Emit(Seed, new Graph(graph.Global, graph.Layer, graph.Head.Append(planted).ToList(), graph.Depth, graph.Loss), Numeric.Float);
        Assert.Equal("", source);
        // Once for each branch of the head: a token's on a GPU, and the others.
        Assert.Equal(2, problems.Count);
        Assert.All(problems, p => Assert.Contains("more than a launch can index", p));
        Assert.Equal("GL0040", Diagnostics.BadLaunch.Id);
    }

    [Fact]
    public void A_launch_that_does_not_fit_its_kernel_is_refused()
    {
        Assert.Equal("launch of Planted passes 2 arguments to its 1 parameters (x)",
            Assert.Single(Check(new Planted("R * Dim", _ => [Residual, Residual])).Problems));
        Assert.Equal("launch of Planted binds the view Inputs of int to ArrayView<float> x",
            Assert.Single(Check(new Planted("R", _ => [new Value("Inputs", "rows", element: "int")])).Problems));
        Assert.Equal("launch of Planted binds the float 1f to ArrayView<float> x", Assert.Single(Check(new Planted("R", s => [s.One])).Problems));
    }

    [Fact]
    public void A_domain_batch_and_seq_decide_is_left_to_the_plan_check_in_64_bits()
    {
        var check = Check(new Planted("Batch * Dim * Seq * Seq", _ => [Residual]));
        Assert.Empty(check.Problems);
        var (kernel, domain) = Assert.Single(check.PlanDomains);
        Assert.Equal("Planted", kernel);
        Assert.Equal("((((long)b * (long)Dim) * (long)s) * (long)s)", domain.Long("b", "s"));
    }

    [Fact]
    public void Every_tensor_is_one_value_with_its_producer_and_consumers()
    {
        var program = new Passes.Program(TransformerLowering.Lower(Seed), Numeric.Float);
        var values = program.Values;
        Assert.Equal(values.Count, values.Select(v => v.Name).Distinct().Count());
        Assert.Equal(Enumerable.Range(0, values.Count), values.Select(v => v.Id));
        var qkv = values.Single(v => v.Name == "a.Qkv[l]");
        Assert.IsType<LinearProduct>(qkv.Producer);
        Assert.Contains(qkv.Consumers, s => s is Launch { Kernel: "ScanForward" });
        Assert.Contains(qkv.Consumers, s => s is Launch { Kernel: "ScanBackward" });
        // One gradient for the whole residual stream: every element's is the same value.
        var stream = values.Where(v => v.Name.StartsWith("a.X[")).ToList();
        Assert.True(stream.Count >= 3);
        Assert.Single(stream.Select(v => v.Grad).Distinct());
        Assert.Empty(new LaunchCheck(program, ModelEmitter.Constants(Seed)).Problems);
    }

    [Fact]
    public void The_seed_plan_packs_the_backward_gradients_by_liveness()
    {
        var graph = TransformerLowering.Lower(Seed);
        var program = new Passes.Program(graph, Numeric.Float);
        var plan = new MemoryPlan(graph, program, ModelEmitter.Constants(Seed));
        Assert.Contains(plan.Packed, p => p.Buffer.Field == "DQkv");
        Assert.Contains(plan.Packed, p => p.Buffer.Field == "DF");
        Assert.DoesNotContain(plan.Packed, p => p.Buffer.Field == "DX"); // the head and the embedding read it too
        // The seed protocol: batch 4 of 256 tokens (the max-heads scan's chunks are 32 positions, and the column
        // sums' parts 32 rows).
        var constants = new Dictionary<string, long>(ModelEmitter.Constants(Seed)) { ["Kernels.Chunk"] = 32, ["Kernels.ColumnPart"] = 32 };
        var (packed, unpacked) = plan.Elements(constants, 4, 256);
        output.WriteLine($"seed activation plan at batch 4 × seq 256: {unpacked * 4:N0} bytes unpacked, {packed * 4:N0} packed by liveness");
        Assert.Equal(315_162_624, unpacked * 4);
        Assert.Equal(300_482_560, packed * 4);
        // Under bf16 products the GELU and gated outputs, which only their Linear and its weight gradient read, are kept
        // as bf16 copies (2 bytes where 4 were) beside one fp32 buffer each that the layers share.
        Assert.Equal(["Gated", "FfAct"], plan.GemmInputs.Select(b => b.Field));
        long rows = 4 * 256, perLayer = plan.GemmInputs.Sum(b => new Size(b.Size).Evaluate(new Dictionary<string, long>(constants) { ["rows"] = rows })!.Value);
        long bf16 = packed * 4 - Seed.Depth * perLayer * 4 + Seed.Depth * perLayer * 2 + perLayer * 4;
        output.WriteLine($"with bf16 products: {bf16:N0} bytes, {packed * 4 - bf16:N0} fewer");
        Assert.Equal(279_511_040, bf16);
        // Two packed buffers share memory only when no step of the layer's backward touches both.
        var steps = program.BackwardLayer.SelectMany(s => s.Flatten()).ToList();
        int First(Ir.Buffer b) => steps.FindIndex(s => s.Reads.Concat(s.Writes).Any(v => v.Storage == b));
        int Last(Ir.Buffer b) => steps.FindLastIndex(s => s.Reads.Concat(s.Writes).Any(v => v.Storage == b));
        foreach (var p in plan.Packed)
            foreach (var q in plan.Packed.Where(q => q.Buffer != p.Buffer && q.Offset < p.Offset + p.PerRow && p.Offset < q.Offset + q.PerRow))
                Assert.True(Last(p.Buffer) < First(q.Buffer) || Last(q.Buffer) < First(p.Buffer), $"{p.Buffer.Field} and {q.Buffer.Field} share memory while both live");
    }

    [Fact]
    public void The_feed_forward_bias_and_activation_are_fused_by_a_rewrite()
    {
        foreach (var (spec, activation) in new[] { (Seed, "GeluForward"), (Seed with { FeedForwardReluSquared = true }, "ReluSquaredForward") })
        {
            var program = new Passes.Program(TransformerLowering.Lower(spec), Numeric.Float);
            // The ops launch the bias and the activation apart.
            var before = program.ForwardLayer.OfType<Launch>().Select(l => l.Kernel).ToList();
            Assert.Contains("AddBiasHidden", before);
            Assert.Contains(activation, before);
            program.Rewrite(Fusion.BiasActivation);
            var launches = program.ForwardLayer.OfType<Launch>().ToList();
            var fused = Assert.Single(launches, l => l.Kernel == "Bias" + activation);
            Assert.DoesNotContain(launches, l => l.Kernel == "AddBiasHidden" || l.Kernel == activation);
            Assert.Equal(["x", "bias", "z"], fused.Signature!.Parameters.Select(p => p.Name));
            Assert.Equal(["a.FfPre[l]", "W", "a.FfAct[l]"], fused.Args.Select(a => a is TensorArg t ? t.Value.Name : "W"));
            // The unfused activation's kernel is gone; the second Linear's bias joins the residual add after it.
            Assert.DoesNotContain(program.Kernels, k => k.Key == activation || k.Key == "AddBiasDim");
            Assert.Contains(program.Kernels, k => k.Key == "BiasAddResidual");
            Assert.Empty(new LaunchCheck(program, ModelEmitter.Constants(spec)).Problems);
        }
        // Two launches that touch a value away from their own index do not fuse.
        var seed = new Passes.Program(TransformerLowering.Lower(Seed), Numeric.Float);
        var scan = seed.ForwardLayer.OfType<Choice>().First().Otherwise.OfType<Launch>().Single();
        var bias = new Launch("AddBiasHidden", seed.Signatures["AddBiasHidden"], scan.Domain, new Arg[] { ((TensorArg)scan.Args[1]).Value, "Seq" });
        Assert.Null(Fusion.Elementwise(seed, bias, scan, "Fused"));
    }

    [Fact]
    public void The_seed_layer_runs_its_transition_scan_and_gate_as_one_launch_where_the_scan_is_one()
    {
        var program = ModelEmitter.Rewritten(Seed, TransformerLowering.Lower(Seed), Numeric.Float);
        var layer = Training(program.ForwardLayer);
        var choice = Assert.Single(layer.OfType<Choice>());
        var fused = Assert.IsType<Launch>(Assert.Single(choice.Otherwise));
        output.WriteLine(program.Kernel(fused.Kernel)!.Value.Method.ToFullString());
        Assert.Equal("TransitionScanSwishGateForward", fused.Kernel);
        Assert.Equal("Batch * DimInner", fused.Domain.Text);
        // It still writes what the backward reads (the transitions, the scan's output and states), and the gated output.
        Assert.Equal(new[] { "a.Transition[l]", "a.ScanOut[l]", "a.StateScratch", "carry", "a.Gated[l]" }, fused.Writes.Select(v => v.Name).Distinct());
        // The chunked scans keep their own launches, with the transition before them and the gate after.
        Assert.Equal(new[] { "TransitionForward", "ChunkScanForward", "ChunkCarryForward", "ChunkApplyForward", "SwishGateForward" },
            choice.Then.OfType<Launch>().Select(l => l.Kernel));
        Assert.DoesNotContain(layer.OfType<Launch>(), l => l.Kernel is "TransitionForward" or "SwishGateForward" or "ScanForward");
        // The gates' product runs with the other two of the layer's input, before the scan.
        Assert.Equal(3, layer.TakeWhile(s => s is not Choice).OfType<LinearProduct>().Count());
    }

    [Fact]
    public void A_scan_over_heads_of_several_channels_keeps_its_transition_and_gate_apart()
    {
        var spec = Seed with { Heads = 8 };
        var layer = Training(ModelEmitter.Rewritten(spec, TransformerLowering.Lower(spec), Numeric.Float).ForwardLayer);
        Assert.Equal(new[] { "TransitionForward", "ScanStatesForward", "ScanOutputForward", "SwishGateForward" },
            layer.OfType<Launch>().Select(l => l.Kernel).Where(k => k.Contains("Transition") || k.Contains("Scan") || k.Contains("Gate")));
    }

    [Fact]
    public void The_post_norm_residual_and_bias_adds_and_layernorm_are_one_row_launch_by_rewrites()
    {
        var program = new Passes.Program(TransformerLowering.Lower(Seed), Numeric.Float);
        // The feed-forward's ops launch its bias over R·Dim, the block adds the residual to the projection (no copy of
        // it for the GEMM to add into), then the LayerNorm runs over R rows of a warp each, on one buffer.
        var before = program.ForwardLayer.OfType<Launch>().ToList();
        int bias = before.FindIndex(l => l.Kernel == "AddBiasDim");
        Assert.Equal(["AddBiasDim", "AddResidual", "LayerNormDimForward"], before.Skip(bias).Take(3).Select(l => l.Kernel));
        Assert.Equal("R * Dim", before[bias + 1].Domain.Text);
        Assert.Equal(2, before.Count(l => l.Kernel == "AddResidual"));
        Assert.DoesNotContain(program.ForwardLayer, s => s is Copy);
        program.Rewrite(Fusion.BiasActivation);
        program.Rewrite(Fusion.AddsIntoRow);
        var launches = program.ForwardLayer.OfType<Launch>().ToList();
        var fused = Assert.Single(launches, l => l.Kernel == "BiasResidualLayerNormDimForward");
        Assert.Equal("R * Kernels.RowLanes", fused.Domain.Text);
        // The mixer's LayerNorm follows the scan's output projection, no bias add: the residual alone joins it.
        Assert.Single(launches, l => l.Kernel == "ResidualLayerNormDimForward");
        Assert.DoesNotContain(launches, l => l.Kernel is "AddBiasDim" or "AddResidual" or "BiasAddResidual" or "LayerNormDimForward");
        // The fused kernel adds the bias and the residual to each of the lane's elements before the row's passes,
        // and its host entry runs the pieces' entries over the same rows.
        var source = Assert.Single(program.Kernels, k => k.Key == "BiasResidualLayerNormDimForward");
        Assert.Contains("Index1D element = (int)(o + d);", source.Kernel);
        int addBias = source.Kernel.IndexOf("= xe + be;"), addResidual = source.Kernel.IndexOf("= se + re;"), firstPass = source.Kernel.IndexOf("sum = RowSum(sum);");
        Assert.True(addBias >= 0 && addResidual > addBias && firstPass > addResidual, source.Kernel);
        Assert.Contains("elementFrom = (from + Kernels.RowLanes - 1) / Kernels.RowLanes * Dim", source.HostEntry);
        Assert.Empty(new LaunchCheck(program, ModelEmitter.Constants(Seed)).Problems);

        // Not fused: a bias add over other rows than the row kernel's, a row kernel that reads the shared value as a
        // row scalar (not at its lanes' own elements), and an elementwise launch before a kernel that is not a row kernel.
        var seed = new Passes.Program(TransformerLowering.Lower(Seed), Numeric.Float);
        var layerNorm = seed.ForwardLayer.OfType<Launch>().First(l => l.Kernel == "LayerNormDimForward");
        var sum = ((TensorArg)layerNorm.Args[0]).Value;
        var other = new Launch("AddBiasDim", seed.Signatures["AddBiasDim"], "Batch * Dim", new Arg[] { sum, "W" });
        Assert.Null(Fusion.ElementwiseRow(seed, other, layerNorm, "Fused"));
        var onStats = new Launch("AddBiasDim", seed.Signatures["AddBiasDim"], "R * Dim", new Arg[] { ((TensorArg)layerNorm.Args[4]).Value, "W" });
        Assert.Null(Fusion.ElementwiseRow(seed, onStats, layerNorm, "Fused"));
        var gelu = seed.ForwardLayer.OfType<Launch>().First(l => l.Kernel == "GeluForward");
        var beforeGelu = new Launch("AddBiasHidden", seed.Signatures["AddBiasHidden"], gelu.Domain, new Arg[] { ((TensorArg)gelu.Args[0]).Value, "W" });
        Assert.Null(Fusion.ElementwiseRow(seed, beforeGelu, gelu, "Fused"));
        var unfused = new Launch("AddBiasDim", seed.Signatures["AddBiasDim"], "R * Dim", new Arg[] { sum, "W" });
        Assert.NotNull(Fusion.ElementwiseRow(seed, unfused, layerNorm, "Fused"));
    }
}
