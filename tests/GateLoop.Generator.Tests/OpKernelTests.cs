using GateLoop.Generator.Emit;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Lowering;
using GateLoop.Generator.Model;
using GateLoop.Generator.Ops;
using GateLoop.Generator.Templates;
using Microsoft.CodeAnalysis;

namespace GateLoop.Generator.Tests;

/// <summary>
/// Each op's kernels compile on their own, from its IR node, against the size constants of a model that uses it
/// (nothing of any other op), and pass the kernel-safety analyzer: a typo or a construct ILGPU miscompiles in an
/// op's kernel text fails here, naming the op, before any model is generated.
/// </summary>
public sealed class OpKernelTests
{
    static readonly TypeLocation Stub = new(null, default, "Stub");

    static TransformerSpec GateLooped(bool postNorm = true, int heads = 16, bool swish = true, bool subLn = false) =>
        new(Stub, NumTokens: 256, Dim: 16, Depth: 2, Heads: heads, DimInner: 16, FeedForwardMult: 4, SwishGating: swish,
            PostLayerNorm: postNorm, SubLayerNorm: subLn, FracGradientStateTransition: 0.9, AblateComplex: false,
            AblateStateTransition: false, CheckpointGateLoopedAttn: false);

    /// <summary>Declarations that between them lower to every op kind with every option that changes its kernels.</summary>
    static readonly (string Name, string Constants, Graph Graph)[] Models =
    [
        .. new (string, TransformerSpec)[]
        {
            ("max heads, post-norm", GateLooped()),
            ("heads, pre-norm, sub-LayerNorm", GateLooped(postNorm: false, heads: 4, subLn: true)),
            ("ablated", GateLooped(swish: false) with { AblateComplex = true, AblateStateTransition = true }),
            ("checkpointed, squared-ReLU feed-forward", GateLooped() with { CheckpointGateLoopedAttn = true, FracGradientStateTransition = 1, FeedForwardReluSquared = true }),
            ("attention, rotary, relative positions", GateLooped(heads: 4) with { UseGateLoopedAttn = false, RotaryEmbedding = true, DataDependentRelPos = true }),
            ("attention, unnormalized", GateLooped(postNorm: false, heads: 4) with { UseGateLoopedAttn = false, SoftmaxNormalize = false }),
            ("hybrid", GateLooped(heads: 4) with { UseGateLoopedAttn = false, SimpleGateLoopBlocks = true }),
        }.Select(m => (m.Item1, ModelEmitter.SizeConstants(m.Item2), TransformerLowering.Lower(m.Item2))),
        .. new (string, SimpleGateLoopSpec)[]
        {
            ("layer", new(Stub, 8, PreNorm: true, PostLayerNorm: false, Reverse: false, Heinsen: false)),
            ("layer, post-LayerNorm, reverse", new(Stub, 8, PreNorm: false, PostLayerNorm: true, Reverse: true, Heinsen: false)),
            ("layer, log-space", new(Stub, 8, PreNorm: true, PostLayerNorm: false, Reverse: false, Heinsen: true)),
            ("layer, log-space, reverse", new(Stub, 8, PreNorm: false, PostLayerNorm: true, Reverse: true, Heinsen: true)),
        }.Select(m => (m.Item1, LayerEmitter.SizeConstants(m.Item2), SimpleGateLoopLowering.Lower(m.Item2))),
    ];

    /// <summary>The ops of a graph that are not made of other ops.</summary>
    static IEnumerable<Op> Leaves(IEnumerable<Op> ops) => ops.SelectMany(op => op is Sequence s ? Leaves(s.Ops) : [op]);

    public static TheoryData<string, string, string> Cases()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var (name, _, graph) in Models)
            foreach (var precision in new[] { "float", "double" })
                foreach (var op in Leaves(graph.Ops).Select(o => o.GetType().Name).Distinct())
                    data.Add(name, precision, op);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void An_ops_kernels_compile_alone_and_pass_the_safety_analyzer(string model, string precision, string op)
    {
        var (_, constants, graph) = Models.Single(m => m.Name == model);
        var numeric = precision == "float" ? Numeric.Float : Numeric.Double;
        var sources = Leaves(graph.Ops).Where(o => o.GetType().Name == op).SelectMany(o => o.Kernels(numeric))
            .GroupBy(k => k.Key).Select(g => g.First()).ToList();
        string members = string.Join("\n\n", sources.Select(k => k.Kernel));
        var w = new CodeWriter()
            .Line("using ILGPU;")
            .Line("using ILGPU.Runtime;")
            .Line("using System.Runtime.Intrinsics;")
            .Open("public static class Stub")
            .Line(constants)
            .Open("public static class Kernels")
            .Block(members)
            .Open("public static class Host")
            .Block(HostTwins.Emit(members, "Kernels", string.Join("\n\n", sources.Select(k => k.HostEntry).Where(e => e.Length > 0))))
            .Close()
            .Close()
            .Close();
        var compilation = GeneratorHarness.Compile([w.ToString()]);
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.True(errors.Count == 0, $"{op}'s kernels ({model}, {precision}) do not compile alone:\n{string.Join("\n", errors.Take(10))}");
        var refused = GeneratorHarness.Analyze(compilation).Where(d => d.Id == "GL0030").ToList();
        Assert.True(refused.Count == 0, $"{op}'s kernels ({model}, {precision}):\n{string.Join("\n", refused.Select(d => d.GetMessage()))}");
    }

    [Fact]
    public void The_models_cover_every_op_kind()
    {
        var kinds = typeof(Op).Assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(Op)) && !t.IsAbstract && t != typeof(Sequence) && !t.IsSubclassOf(typeof(Sequence)));
        var covered = Models.SelectMany(m => Leaves(m.Graph.Ops)).Select(o => o.GetType()).ToHashSet();
        Assert.Empty(kinds.Where(k => !covered.Contains(k)).Select(k => k.Name));
    }
}
