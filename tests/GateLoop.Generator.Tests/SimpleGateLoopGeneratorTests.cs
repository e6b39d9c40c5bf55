using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;

namespace GateLoop.Generator.Tests;

/// <summary>
/// The generator's <c>[SimpleGateLoop]</c> pipeline: a reviewed snapshot, every option combination compiling cleanly
/// in both precisions, each invalid declaration as its compile error (the ids shared with the transformer mean the
/// same thing here), and incremental caching of the parse step.
/// </summary>
public class SimpleGateLoopGeneratorTests
{
    static string Layer(string arguments, string declaration = "public partial class Mixer;") => $$"""
        using GateLoop;

        namespace Consumer;

        [SimpleGateLoop({{arguments}})]
        {{declaration}}
        """;



    /// <summary>The seed's layer at Dim 512 with the default options (pre-norm, plain scan).</summary>
    [Fact]
    public void Snapshot_LongContextMixer()
    {
        var run = GeneratorHarness.Run(Layer("Dim = 512", "public partial class LongContextMixer;"));
        GeneratorHarness.AssertClean(run);
        Assert.Equal("Consumer.LongContextMixer.g.cs", Assert.Single(run.Sources).Key);
        Snapshot.Match(run.Source, "LongContextMixer");
    }

    public static TheoryData<bool, bool, bool, bool, string?> Combinations()
    {
        var data = new TheoryData<bool, bool, bool, bool, string?>();
        foreach (var precision in new[] { null, "double" })
            for (int bits = 0; bits < 16; bits++)
                data.Add((bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0, (bits & 8) != 0, precision);
        return data;
    }

    [Theory]
    [MemberData(nameof(Combinations))]
    public void Every_option_combination_compiles(bool preNorm, bool postLayerNorm, bool reverse, bool heinsen, string? precision)
    {
        static string B(bool v) => v ? "true" : "false";
        var run = GeneratorHarness.Run(
            Layer($"Dim = 6, PreNorm = {B(preNorm)}, PostLayerNorm = {B(postLayerNorm)}, Reverse = {B(reverse)}, Heinsen = {B(heinsen)}"),
            precision, implicitUsings: false);
        GeneratorHarness.AssertClean(run);
        string source = run.Source;
        Assert.Contains($"SimpleGateLoopLayer<{precision ?? "float"}>", source);
        Assert.Equal(preNorm, source.Contains("\"norm.gamma\""));
        Assert.Equal(postLayerNorm, source.Contains("\"maybe_post_ln.weight\""));
        Assert.Equal(heinsen, source.Contains("HeinsenScanForward"));
        Assert.Equal(reverse, source.Contains("reverse: true"));
    }

    [Fact]
    public void GL0001_NotPartial()
    {
        var run = GeneratorHarness.Run(Layer("Dim = 8", "public class Plain { }"));
        var d = run.SingleError("GL0001");
        Assert.Contains("'Plain' must be declared 'partial'", d.GetMessage());
        Assert.Equal("Plain", run.LocatedText(d));
    }

    [Fact]
    public void GL0002_Generic()
    {
        var run = GeneratorHarness.Run(Layer("Dim = 8", "public partial class Mixer<T>;"));
        var d = run.SingleError("GL0002");
        Assert.Contains("'Mixer' is generic", d.GetMessage());
    }

    [Theory]
    [InlineData("Dim = 0", "Dim is 0")]
    [InlineData("Dim = -4", "Dim is -4")]
    [InlineData("PreNorm = false", "Dim is 0")] // Dim is required
    public void GL0003_NonPositiveDim(string arguments, string expected)
    {
        var run = GeneratorHarness.Run(Layer(arguments));
        var d = run.SingleError("GL0003");
        Assert.Contains(expected + "; set it to a positive integer", d.GetMessage());
        Assert.StartsWith("SimpleGateLoop(", run.LocatedText(d));
    }

    [Fact]
    public void GL0007_BaseClass()
    {
        var run = GeneratorHarness.Run(Layer("Dim = 8", "public partial class Derived : Base;\npublic class Base;"));
        var d = run.SingleError("GL0007");
        Assert.Contains("'Derived' derives from 'Consumer.Base'; remove the base class", d.GetMessage());
    }

    /// <summary>A second partial declaration may name the generated base itself; that is not GL0007.</summary>
    [Fact]
    public void GL0007_NotReportedForTheGeneratedBase()
    {
        var run = GeneratorHarness.Run(Layer("Dim = 8",
            "public partial class Mixer;\npublic partial class Mixer : GateLoop.Runtime.SimpleGateLoopLayer<float>;"));
        GeneratorHarness.AssertClean(run);
    }

    [Fact]
    public void GL0008_UnknownPrecision()
    {
        var run = GeneratorHarness.Run(Layer("Dim = 8"), precision: "half");
        var d = run.SingleError("GL0008");
        Assert.Contains("GateLoopPrecision is 'half'", d.GetMessage());
    }

    /// <summary>to_qkva.0.weight is [3·Dim, Dim]: past Dim 26,754 it no longer fits an int-indexed buffer.</summary>
    [Theory]
    [InlineData(26_754, false)]
    [InlineData(26_755, true)]
    public void GL0009_DimTooLarge(int dim, bool tooLarge)
    {
        var run = GeneratorHarness.Run(Layer($"Dim = {dim}"));
        if (!tooLarge)
        {
            GeneratorHarness.AssertClean(run);
            return;
        }
        var d = run.SingleError("GL0009");
        Assert.StartsWith("to_qkva.0.weight would have 2,147,490,075 elements", d.GetMessage());
    }

    [Fact]
    public void GL0010_Static()
    {
        var run = GeneratorHarness.Run(Layer("Dim = 8", "public static partial class Mixer { }"));
        var d = run.SingleError("GL0010");
        Assert.Contains("'Mixer' is static", d.GetMessage());
    }

    [Theory]
    [InlineData("Kernels")]
    [InlineData("Scratch")]
    public void GL0011_NameOfAGeneratedMember(string name)
    {
        var run = GeneratorHarness.Run(Layer("Dim = 8", $"public partial class {name};"));
        var d = run.SingleError("GL0011");
        Assert.Contains($"cannot be named '{name}'", d.GetMessage());
    }

    /// <summary>A class is a model or a layer: both attributes are GL0020 (the model is still generated).</summary>
    [Fact]
    public void GL0020_BothAttributes()
    {
        var run = GeneratorHarness.Run("""
            using GateLoop;

            namespace Consumer;

            [GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 1)]
            [SimpleGateLoop(Dim = 8)]
            public partial class Both;
            """);
        var d = Assert.Single(run.GeneratorDiagnostics);
        Assert.Equal("GL0020", d.Id);
        Assert.Contains("'Both' carries both [GateLoopTransformer] and [SimpleGateLoop]", d.GetMessage());
        Assert.Contains("TransformerModel<float>", Assert.Single(run.Sources).Value);
    }

    /// <summary>
    /// The declaration's problems are reported together; a name that collides with a generated member is found in
    /// what the generator emits, so it is reported once the declaration is otherwise valid and there is code to look at.
    /// </summary>
    [Fact]
    public void Several_problems_are_reported_together()
    {
        var run = GeneratorHarness.Run(Layer("Dim = 0", "public static class Kernels { }"));
        Assert.Equal(["GL0001", "GL0003", "GL0010"], run.GeneratorDiagnostics.Select(d => d.Id).Order());
        Assert.Contains("cannot be named 'Kernels'", GeneratorHarness.Run(Layer("Dim = 8", "public partial class Kernels;")).SingleError("GL0011").GetMessage());
    }

    [Fact]
    public void Nested_and_keyword_named_layers_compile()
    {
        var run = GeneratorHarness.Run([
            """
            namespace Consumer.Layers
            {
                public static partial class Holder
                {
                    [GateLoop.SimpleGateLoop(Dim = 8, PostLayerNorm = true)]
                    internal sealed partial class Mixer;
                }
            }
            """,
            Layer("Dim = 8", "public partial class @event;"),
        ]);
        GeneratorHarness.AssertClean(run);
        Assert.Equal(["Consumer.event.g.cs", "Consumer.Layers.Holder.Mixer.g.cs"], run.Sources.Keys.Order());
    }

    /// <summary>Editing another file leaves the layer's parse and source output cached; changing Dim re-emits it.</summary>
    [Fact]
    public void The_parse_step_is_cached()
    {
        var compilation = GeneratorHarness.Compile([Layer("Dim = 8")]);
        var first = GeneratorHarness.Run(GeneratorHarness.CreateDriver(), compilation);
        GeneratorHarness.AssertClean(first);

        var unrelated = compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText("namespace Consumer; static class Other { }", GeneratorHarness.ParseOptions, "Other.cs"));
        var second = GeneratorHarness.Run(first.Driver, unrelated);
        Assert.All(ParseOutputs(second), reason => Assert.True(reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{reason}"));

        var tree = unrelated.SyntaxTrees.First(t => t.ToString().Contains("SimpleGateLoop("));
        var edited = unrelated.ReplaceSyntaxTree(tree, tree.WithChangedText(SourceText.From(tree.ToString().Replace("Dim = 8", "Dim = 16"))));
        var third = GeneratorHarness.Run(second.Driver, edited);
        Assert.Contains(IncrementalStepRunReason.Modified, ParseOutputs(third));
        Assert.Contains("public const int Dim = 16;", third.Source);
    }

    static IEnumerable<IncrementalStepRunReason> ParseOutputs(GeneratorRun run) =>
        run.Result.TrackedSteps[GateLoopGenerator.ParseLayerStep].SelectMany(s => s.Outputs).Select(o => o.Reason);
}
