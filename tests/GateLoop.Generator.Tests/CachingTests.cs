using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;

namespace GateLoop.Generator.Tests;

/// <summary>
/// The pipeline is incremental: edits that do not touch a declaration leave its parse step's output equal
/// (Cached or Unchanged) and its source output cached; changing an attribute value re-emits the model.
/// </summary>
public class CachingTests
{
    const string ModelSource = """
        using GateLoop;

        namespace Consumer;

        [GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 2, GateLoopHeads = 2)]
        public partial class Model;
        """;

    const string OtherSource = """
        namespace Consumer;

        public static class Helpers
        {
            public static int Twice(int x) => 2 * x;
        }
        """;

    static (GeneratorDriver Driver, CSharpCompilation Compilation) FirstRun(params string[] sources)
    {
        var compilation = GeneratorHarness.Compile(sources);
        var run = GeneratorHarness.Run(GeneratorHarness.CreateDriver(), compilation);
        GeneratorHarness.AssertClean(run);
        Assert.All(ParseOutputs(run), o => Assert.Equal(IncrementalStepRunReason.New, o.Reason));
        return (run.Driver, compilation);
    }

    static IEnumerable<(object Value, IncrementalStepRunReason Reason)> ParseOutputs(GeneratorRun run)
    {
        var steps = run.Result.TrackedSteps;
        Assert.True(steps.ContainsKey(GateLoopGenerator.ParseStep), $"no tracked step '{GateLoopGenerator.ParseStep}'");
        var outputs = steps[GateLoopGenerator.ParseStep].SelectMany(s => s.Outputs).ToList();
        Assert.NotEmpty(outputs);
        return outputs;
    }

    static IEnumerable<(object Value, IncrementalStepRunReason Reason)> SourceOutputs(GeneratorRun run)
    {
        var outputs = run.Result.TrackedOutputSteps["SourceOutput"].SelectMany(s => s.Outputs).ToList();
        Assert.NotEmpty(outputs);
        return outputs;
    }

    static void AssertAllCached(GeneratorRun run)
    {
        Assert.All(ParseOutputs(run), o =>
            Assert.True(o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged,
                $"parse step output was {o.Reason}: {o.Value}"));
        Assert.All(SourceOutputs(run), o => Assert.Equal(IncrementalStepRunReason.Cached, o.Reason));
    }

    [Fact]
    public void AddingAnUnrelatedFile_KeepsTheModelCached()
    {
        var (driver, compilation) = FirstRun(ModelSource);
        var next = compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText(OtherSource, GeneratorHarness.ParseOptions, "Other.cs"));
        var run = GeneratorHarness.Run(driver, next);
        GeneratorHarness.AssertClean(run);
        AssertAllCached(run);
    }

    [Fact]
    public void EditingAnUnrelatedFile_KeepsTheModelCached()
    {
        var (driver, compilation) = FirstRun(ModelSource, OtherSource);
        var tree = compilation.SyntaxTrees.Single(t => t.ToString().Contains("Helpers"));
        var text = tree.GetText();
        int at = text.ToString().IndexOf("2 * x", StringComparison.Ordinal);
        var edited = tree.WithChangedText(text.WithChanges(new TextChange(new TextSpan(at, 5), "x + x")));
        var run = GeneratorHarness.Run(driver, compilation.ReplaceSyntaxTree(tree, edited));
        GeneratorHarness.AssertClean(run);
        AssertAllCached(run);
    }

    [Fact]
    public void EditingTheModelFileElsewhere_KeepsTheModelCached()
    {
        var (driver, compilation) = FirstRun(ModelSource);
        var tree = compilation.SyntaxTrees.Single(t => t.ToString().Contains("GateLoopTransformer"));
        var edited = tree.WithChangedText(SourceText.From(tree.ToString() + "\n// a trailing comment\ninternal static class Unrelated { }\n"));
        var run = GeneratorHarness.Run(driver, compilation.ReplaceSyntaxTree(tree, edited));
        GeneratorHarness.AssertClean(run);
        AssertAllCached(run);
    }

    [Fact]
    public void ChangingDim_ReEmitsTheModel()
    {
        var (driver, compilation) = FirstRun(ModelSource, OtherSource);
        var tree = compilation.SyntaxTrees.Single(t => t.ToString().Contains("GateLoopTransformer"));
        var edited = tree.WithChangedText(SourceText.From(tree.ToString().Replace("Dim = 8", "Dim = 16")));
        var run = GeneratorHarness.Run(driver, compilation.ReplaceSyntaxTree(tree, edited));
        GeneratorHarness.AssertClean(run);
        Assert.Contains(ParseOutputs(run), o => o.Reason == IncrementalStepRunReason.Modified);
        Assert.Contains(SourceOutputs(run), o => o.Reason == IncrementalStepRunReason.Modified);
        Assert.Contains("Dim = 16", run.Source);
    }

    [Fact]
    public void ChangingPrecision_ReEmitsTheModel()
    {
        var (driver, compilation) = FirstRun(ModelSource);
        var run = GeneratorHarness.Run(driver.WithUpdatedAnalyzerConfigOptions(GeneratorHarness.Options("double")), compilation);
        GeneratorHarness.AssertClean(run);
        Assert.Contains("TransformerModel<double>", run.Source);
        Assert.Contains(SourceOutputs(run), o => o.Reason == IncrementalStepRunReason.Modified);
    }
}
