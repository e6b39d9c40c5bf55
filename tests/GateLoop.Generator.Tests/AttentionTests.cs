namespace GateLoop.Generator.Tests;

/// <summary>The softmax-attention baseline (UseGateLoopedAttn = false): generated source and its declaration errors.</summary>
public class AttentionTests
{
    static string Declare(string arguments, string name = "Model") => $$"""
        using GateLoop;

        namespace Consumer;

        [GateLoopTransformer({{arguments}})]
        public partial class {{name}};
        """;

    /// <summary>Post-norm, rotary, data-dependent relative positions with softmax on, gating: every attention kernel.</summary>
    [Fact]
    public void Snapshot_RotaryRelPos()
    {
        var run = GeneratorHarness.Run(Declare(
            "NumTokens = 256, Dim = 64, Depth = 2, PostLayerNorm = true, UseGateLoopedAttn = false, Heads = 4, DimHead = 16, " +
            "RotaryEmbedding = true, DataDependentRelPos = true, AttnSoftmaxNormalize = true", "AttentionRotaryRelPos"));
        GeneratorHarness.AssertClean(run);
        Snapshot.Match(run.Source, "AttentionRotaryRelPos");
    }

    [Fact]
    public void GL0012_OddHeadWidthWithRotary()
    {
        var run = GeneratorHarness.Run(Declare("NumTokens = 11, Dim = 8, Depth = 1, UseGateLoopedAttn = false, DimHead = 5, RotaryEmbedding = true"));
        var d = run.SingleError("GL0012");
        Assert.Equal("DimHead is 5, but RotaryEmbedding works on pairs of channels; use an even DimHead", d.GetMessage());
    }

    [Theory]
    [InlineData("UseGateLoopedAttn = false, SubLayerNorm = true", "SubLayerNorm only applies to gate-looped attention (UseGateLoopedAttn = true)")]
    [InlineData("UseGateLoopedAttn = false, GateLoopHeads = 4", "GateLoopHeads only applies to gate-looped attention")]
    [InlineData("RotaryEmbedding = true", "RotaryEmbedding only applies to the softmax-attention baseline (UseGateLoopedAttn = false)")]
    [InlineData("UseGateLoopedAttn = true, Heads = 4", "Heads only applies to the softmax-attention baseline")]
    [InlineData("SimpleGateLoopBlocks = true", "SimpleGateLoopBlocks only applies to the softmax-attention baseline (UseGateLoopedAttn = false)")]
    public void GL0013_OptionOfTheOtherMixer(string options, string message)
    {
        var run = GeneratorHarness.Run(Declare("NumTokens = 11, Dim = 8, Depth = 1, " + options));
        Assert.StartsWith(message, run.SingleError("GL0013").GetMessage());
    }

    [Theory]
    [InlineData("Heads = 0")]
    [InlineData("DimHead = -2")]
    public void GL0003_NonPositiveAttentionSizes(string option)
    {
        var run = GeneratorHarness.Run(Declare("NumTokens = 11, Dim = 8, Depth = 1, UseGateLoopedAttn = false, " + option));
        Assert.Equal("GL0003", Assert.Single(run.GeneratorDiagnostics).Id);
    }

    /// <summary>The seed's default: softmax unless the relative positions are on, which turn it off unless asked for.</summary>
    [Theory]
    [InlineData("", true)]
    [InlineData(", DataDependentRelPos = true", false)]
    [InlineData(", DataDependentRelPos = true, AttnSoftmaxNormalize = true", true)]
    [InlineData(", AttnSoftmaxNormalize = false", false)]
    public void SoftmaxDefaultFollowsRelativePositions(string options, bool softmax)
    {
        var run = GeneratorHarness.Run(Declare("NumTokens = 11, Dim = 8, Depth = 1, UseGateLoopedAttn = false, DimHead = 4" + options));
        GeneratorHarness.AssertClean(run);
        Assert.Equal(softmax, run.Source.Contains("Kernels.AttentionSoftmax,"));
        Assert.Contains($"[\"AttnSoftmaxNormalize\"] = {(softmax ? "true" : "false")}", run.Source);
    }
}
