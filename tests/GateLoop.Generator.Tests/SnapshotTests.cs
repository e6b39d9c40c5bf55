namespace GateLoop.Generator.Tests;

/// <summary>
/// The generated source for representative declarations, compared with reviewed snapshots in Snapshots/. Each one
/// must also compile, with the runtime and ILGPU, without errors or warnings.
/// </summary>
public class SnapshotTests
{
    static string Declare(string arguments, string name) => $$"""
        using GateLoop;

        namespace Consumer;

        [GateLoopTransformer({{arguments}})]
        public partial class {{name}};
        """;

    static void Check(string arguments, string name)
    {
        var run = GeneratorHarness.Run(Declare(arguments, name));
        GeneratorHarness.AssertClean(run);
        Assert.Equal("Consumer." + name + ".g.cs", Assert.Single(run.Sources).Key);
        Snapshot.Match(run.Source, name);
    }

    /// <summary>The seed's enwik8 config: post-norm, max heads (P = 1), gating, checkpointed scan.</summary>
    [Fact]
    public void Enwik8_PostNorm_MaxHeads() =>
        Check("NumTokens = 256, Dim = 512, Depth = 6, GateLoopHeads = 512, PostLayerNorm = true", "Enwik8GateLoop");

    /// <summary>Pre-norm (RMSNorm), 8 heads of 8 (P × P complex states), sub-LayerNorm, gating.</summary>
    [Fact]
    public void PreNorm_Heads_SubLayerNorm() =>
        Check("NumTokens = 256, Dim = 64, Depth = 2, GateLoopHeads = 8, SubLayerNorm = true", "PreNormHeadsSubLn");

    /// <summary>Pre-norm, max heads, no gating (so no output projection), both ablations (a = 1, no transition).</summary>
    [Fact]
    public void NoGating_BothAblations() =>
        Check("NumTokens = 256, Dim = 64, Depth = 2, AttnAddSwishGating = false, AblateComplex = true, AblateStateTransition = true",
            "AblatedNoGating");

    /// <summary>GateLoopPrecision=double emits double kernels with Math (not MathF) and double literals.</summary>
    [Fact]
    public void DoublePrecision_EmitsDoubleAndMath()
    {
        var run = GeneratorHarness.Run(Declare("NumTokens = 11, Dim = 8, Depth = 2, GateLoopHeads = 2, SubLayerNorm = true", "Tiny"), "double");
        GeneratorHarness.AssertClean(run);
        string source = run.Source;
        Assert.Contains("TransformerModel<double>", source);
        Assert.Contains("ArrayView<double>", source);
        Assert.Contains("Math.Exp(", source);
        Assert.Contains("Math.Sqrt(", source);
        Assert.DoesNotContain("MathF", source);
        Assert.DoesNotContain("float", source);
        Assert.DoesNotMatch(@"\d(\.\d+)?(E[-+]?\d+)?f\b", source); // no float literals such as 1E-05f
    }

    /// <summary>"float" spelled out is the same as the default.</summary>
    [Fact]
    public void FloatPrecision_IsTheDefault()
    {
        string source = Declare("NumTokens = 11, Dim = 8, Depth = 1", "Tiny");
        var byDefault = GeneratorHarness.Run(source);
        var explicitFloat = GeneratorHarness.Run(source, " float ");
        GeneratorHarness.AssertClean(explicitFloat);
        Assert.Equal(byDefault.Source, explicitFloat.Source);
        Assert.Contains("TransformerModel<float>", byDefault.Source);
    }

    /// <summary>Generated code must not depend on the consumer's global usings (ImplicitUsings may be off).</summary>
    [Fact]
    public void CompilesWithoutImplicitUsings()
    {
        var run = GeneratorHarness.Run(Declare("NumTokens = 11, Dim = 8, Depth = 1, GateLoopHeads = 2, SubLayerNorm = true", "Tiny"),
            implicitUsings: false);
        GeneratorHarness.AssertClean(run);
    }

    /// <summary>A consumer's own MathF (or Math) type next to the model must not capture the generated kernels' math calls.</summary>
    [Theory]
    [InlineData(null)]
    [InlineData("double")]
    public void ConsumerTypesNamedMath_DoNotCaptureGeneratedCalls(string? precision)
    {
        var run = GeneratorHarness.Run("""
            namespace Consumer;

            internal static class MathF { }
            internal static class Math { }

            [GateLoop.GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 1)]
            public partial class Tiny;
            """, precision);
        GeneratorHarness.AssertClean(run);
    }
}
