using Microsoft.CodeAnalysis;

namespace GateLoop.Generator.Tests;

/// <summary>
/// Every invalid declaration is a compile error with a stable id (GL0001…GL0011), a message that says what to change,
/// and a location on the class name (declaration problems) or the attribute (size problems). Valid declarations in
/// the places a model may live compile cleanly.
/// </summary>
public class DiagnosticTests
{
    const string Valid = "NumTokens = 11, Dim = 8, Depth = 1";

    static string Model(string arguments, string declaration = "public partial class Model;") => $$"""
        using GateLoop;

        namespace Consumer;

        [GateLoopTransformer({{arguments}})]
        {{declaration}}
        """;



    /// <summary>The diagnostic spans exactly the class name <paramref name="identifier"/>.</summary>
    static void AssertAtIdentifier(GeneratorRun run, Diagnostic diagnostic, string identifier) =>
        Assert.Equal(identifier, run.LocatedText(diagnostic));

    /// <summary>The diagnostic spans the <c>GateLoopTransformer(…)</c> attribute.</summary>
    static void AssertAtAttribute(GeneratorRun run, Diagnostic diagnostic)
    {
        string text = run.LocatedText(diagnostic);
        Assert.Matches(@"^(GateLoop\.)?GateLoopTransformer\(.*\)$", text);
    }

    static void AssertAtIdentifierOrAttribute(GeneratorRun run, Diagnostic diagnostic, string identifier)
    {
        string text = run.LocatedText(diagnostic);
        Assert.True(text == identifier || text.StartsWith("GateLoopTransformer(", StringComparison.Ordinal),
            $"{diagnostic.Id} is located at '{text}', not at the class name or the attribute");
    }

    [Fact]
    public void GL0001_NotPartial()
    {
        var run = GeneratorHarness.Run(Model(Valid, "public class Plain { }"));
        var d = run.SingleError("GL0001");
        Assert.Contains("'Plain'", d.GetMessage());
        Assert.Contains("partial", d.GetMessage());
        AssertAtIdentifier(run, d, "Plain");
    }

    [Theory]
    [InlineData("public partial class Generic<T>;", "Generic")]
    [InlineData("public partial class Outer<T> { [GateLoop.GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 1)] public partial class Inner; }", "Inner")]
    public void GL0002_GenericContext(string declaration, string name)
    {
        // The nested case carries its own (fully qualified) attribute and namespace.
        string source = declaration.Contains("Inner")
            ? "namespace Consumer;\n" + declaration
            : Model(Valid, declaration);
        var run = GeneratorHarness.Run(source);
        var d = run.SingleError("GL0002");
        Assert.Contains($"'{name}'", d.GetMessage());
        Assert.Contains("non-generic", d.GetMessage());
        AssertAtIdentifier(run, d, name);
    }

    [Theory]
    [InlineData("NumTokens = 11, Dim = 0, Depth = 1", "Dim is 0")]
    [InlineData("NumTokens = -3, Dim = 8, Depth = 1", "NumTokens is -3")]
    [InlineData("NumTokens = 11, Dim = 8", "Depth is 0")] // a required size left out
    [InlineData("NumTokens = 11, Dim = 8, Depth = 1, FeedForwardMult = 0", "FeedForwardMult is 0")]
    public void GL0003_NonPositiveSize(string arguments, string expected)
    {
        var run = GeneratorHarness.Run(Model(arguments));
        var d = run.SingleError("GL0003");
        Assert.Contains(expected, d.GetMessage());
        Assert.Contains("set it to a positive integer", d.GetMessage());
        AssertAtAttribute(run, d);
    }

    [Theory]
    [InlineData("DimGateLoopedAttn = -4", "DimGateLoopedAttn is -4")]
    [InlineData("GateLoopHeads = -2", "GateLoopHeads is -2")]
    public void GL0004_NegativeOptionalSize(string argument, string expected)
    {
        var run = GeneratorHarness.Run(Model(Valid + ", " + argument));
        var d = run.SingleError("GL0004");
        Assert.Contains(expected, d.GetMessage());
        Assert.Contains("use 0 for the default", d.GetMessage());
        AssertAtAttribute(run, d);
    }

    [Theory]
    [InlineData("GateLoopHeads = 3", "DimGateLoopedAttn (8) is not divisible by GateLoopHeads (3)")]
    [InlineData("DimGateLoopedAttn = 12, GateLoopHeads = 5", "DimGateLoopedAttn (12) is not divisible by GateLoopHeads (5)")]
    public void GL0005_HeadsDoNotDivide(string arguments, string expected)
    {
        var run = GeneratorHarness.Run(Model(Valid + ", " + arguments));
        var d = run.SingleError("GL0005");
        Assert.Contains(expected, d.GetMessage());
        Assert.Contains("choose a head count that divides", d.GetMessage());
        AssertAtAttribute(run, d);
    }

    [Theory]
    [InlineData("1.5", "1.5")]
    [InlineData("-0.25", "-0.25")]
    [InlineData("double.NaN", "NaN")]
    public void GL0006_FracGradientOutOfRange(string value, string shown)
    {
        var run = GeneratorHarness.Run(Model(Valid + ", FracGradientStateTransition = " + value));
        var d = run.SingleError("GL0006");
        Assert.Contains($"FracGradientStateTransition is {shown}", d.GetMessage());
        Assert.Contains("between 0 and 1", d.GetMessage());
        AssertAtAttribute(run, d);
    }

    [Fact]
    public void GL0007_BaseClass()
    {
        var run = GeneratorHarness.Run(Model(Valid, "public partial class Derived : Base;\npublic class Base;"));
        var d = run.SingleError("GL0007");
        Assert.Contains("'Derived' derives from 'Consumer.Base'", d.GetMessage());
        Assert.Contains("remove the base class", d.GetMessage());
        AssertAtIdentifier(run, d, "Derived");
    }

    /// <summary>A second partial declaration may name the generated base itself; that is not GL0007.</summary>
    [Fact]
    public void GL0007_NotReportedForTheGeneratedBase()
    {
        var run = GeneratorHarness.Run(Model(Valid,
            "public partial class Model;\npublic partial class Model : GateLoop.Runtime.TransformerModel<float>;"));
        GeneratorHarness.AssertClean(run);
    }

    [Fact]
    public void GL0008_UnknownPrecision()
    {
        var run = GeneratorHarness.Run(Model(Valid), precision: "half");
        var d = run.SingleError("GL0008");
        Assert.Contains("GateLoopPrecision is 'half'", d.GetMessage());
        Assert.Contains("use 'float' (the default) or 'double'", d.GetMessage());
        AssertAtIdentifierOrAttribute(run, d, "Model");
    }

    [Fact]
    public void GL0009_TooLarge()
    {
        var run = GeneratorHarness.Run(Model("NumTokens = 100000, Dim = 50000, Depth = 1"));
        Assert.Empty(run.Sources);
        Assert.NotEmpty(run.GeneratorDiagnostics);
        Assert.All(run.GeneratorDiagnostics, d =>
        {
            Assert.Equal("GL0009", d.Id);
            Assert.Equal(DiagnosticSeverity.Error, d.Severity);
            Assert.Contains("reduce Dim, DimGateLoopedAttn, Depth, NumTokens or FeedForwardMult", d.GetMessage());
            AssertAtAttribute(run, d);
        });
        // The first tensor that does not fit is named, with its size.
        Assert.StartsWith("to_qkv.weight would have 7,500,000,000 elements", Assert.Single(run.GeneratorDiagnostics).GetMessage());
    }

    /// <summary>The whole flat buffer must fit too, even when every single tensor does.</summary>
    [Fact]
    public void GL0009_CoversTheTotalParameterCount()
    {
        var run = GeneratorHarness.Run(Model("NumTokens = 256, Dim = 4096, Depth = 12"));
        Assert.StartsWith("the parameter buffer would have 3,", run.SingleError("GL0009").GetMessage());
    }

    [Fact]
    public void GL0010_StaticModel()
    {
        var run = GeneratorHarness.Run(Model(Valid, "public static partial class Model { }"));
        var d = run.SingleError("GL0010");
        Assert.Contains("'Model' is static; remove 'static'", d.GetMessage());
    }

    [Fact]
    public void GL0011_NameOfAGeneratedMember()
    {
        var run = GeneratorHarness.Run(Model(Valid, "public partial class Kernels;"));
        var d = run.SingleError("GL0011");
        Assert.Contains("cannot be named 'Kernels'", d.GetMessage());
    }

    [Fact]
    public void GL0001_ContainingTypeNotPartial()
    {
        var run = GeneratorHarness.Run("""
            using GateLoop;

            namespace Consumer;

            public class Holder
            {
                [GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 1)]
                public partial class Model;
            }
            """);
        var d = run.SingleError("GL0001");
        Assert.Contains("'Holder' must be declared 'partial'", d.GetMessage());
    }

    [Fact]
    public void KeywordNamedModel_Compiles()
    {
        var run = GeneratorHarness.Run(Model(Valid, "public partial class @event;"));
        GeneratorHarness.AssertClean(run);
    }

    /// <summary>
    /// Every parameter tensor must fit an int-indexed buffer, not only the embedding and feed-forward weights: a wide
    /// inner attention width makes to_qkv ([3·I, Dim]) overflow while those two are small.
    /// </summary>
    [Fact]
    public void GL0009_CoversTheAttentionProjections()
    {
        var run = GeneratorHarness.Run(Model("NumTokens = 2, Dim = 2, Depth = 1, DimGateLoopedAttn = 400000000, GateLoopHeads = 400000000"));
        Assert.True(run.GeneratorDiagnostics.Any(d => d.Id == "GL0009"),
            "no GL0009; the generated code fails to compile instead:\n" + GeneratorHarness.Describe(run.CompilationDiagnostics.Take(3)));
        Assert.Empty(run.Sources);
    }

    /// <summary>Several problems are reported together, so one build shows everything to fix.</summary>
    [Fact]
    public void SeveralProblemsAreReportedTogether()
    {
        var run = GeneratorHarness.Run(Model("NumTokens = 0, Dim = 8, Depth = 1, GateLoopHeads = -1, FracGradientStateTransition = 2",
            "public class Plain { }"));
        Assert.Equal(["GL0001", "GL0003", "GL0004", "GL0006"], run.GeneratorDiagnostics.Select(d => d.Id).Order());
    }

    [Fact]
    public void NestedInNonGenericTypesInANamespace_Compiles()
    {
        var run = GeneratorHarness.Run($$"""
            using GateLoop;

            namespace Consumer.Models
            {
                public static partial class Catalog
                {
                    public partial class Small
                    {
                        [GateLoopTransformer({{Valid}}, GateLoopHeads = 2, PostLayerNorm = true)]
                        public partial class Model;
                    }
                }
            }
            """);
        GeneratorHarness.AssertClean(run);
        Assert.Equal("Consumer.Models.Catalog.Small.Model.g.cs", Assert.Single(run.Sources).Key);
        Assert.NotNull(run.Output.GetTypeByMetadataName("Consumer.Models.Catalog+Small+Model"));
    }

    [Fact]
    public void NestedInAStruct_Compiles()
    {
        var run = GeneratorHarness.Run($$"""
            namespace Consumer;

            public partial struct Holder
            {
                [GateLoop.GateLoopTransformer({{Valid}})]
                public partial class Model;
            }
            """);
        GeneratorHarness.AssertClean(run);
    }

    /// <summary>The generator re-declares containing types; a record container must be re-declared as a record.</summary>
    [Theory]
    [InlineData("partial record")]
    [InlineData("partial record struct")]
    public void NestedInARecord_Compiles(string kind)
    {
        var run = GeneratorHarness.Run($$"""
            namespace Consumer;

            public {{kind}} Holder
            {
                [GateLoop.GateLoopTransformer({{Valid}})]
                public partial class Model;
            }
            """);
        GeneratorHarness.AssertClean(run);
    }

    [Fact]
    public void GlobalNamespace_Compiles()
    {
        var run = GeneratorHarness.Run($$"""
            [GateLoop.GateLoopTransformer({{Valid}})]
            internal sealed partial class GlobalModel;
            """);
        GeneratorHarness.AssertClean(run);
        Assert.Equal("GlobalModel.g.cs", Assert.Single(run.Sources).Key);
        var type = run.Output.GetTypeByMetadataName("GlobalModel");
        Assert.NotNull(type);
        Assert.Equal("GateLoop.Runtime.TransformerModel<float>", type!.BaseType!.ToDisplayString());
    }

    /// <summary>Two models in one compilation each get their own file and compile together.</summary>
    [Fact]
    public void TwoModels_Compile()
    {
        var run = GeneratorHarness.Run([
            Model(Valid, "public partial class First;"),
            Model(Valid + ", PostLayerNorm = true", "public partial class Second;").Replace("namespace Consumer;", "namespace Consumer.Other;"),
        ]);
        GeneratorHarness.AssertClean(run);
        Assert.Equal(["Consumer.First.g.cs", "Consumer.Other.Second.g.cs"], run.Sources.Keys.Order());
    }
}
