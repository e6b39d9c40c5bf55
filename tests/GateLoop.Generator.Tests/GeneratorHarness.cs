using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace GateLoop.Generator.Tests;

/// <summary>What one generator run produced.</summary>
/// <param name="Driver">The driver after the run; run it again on an edited compilation to test caching.</param>
/// <param name="Compilation">The input compilation (user sources only).</param>
/// <param name="Output">The input compilation plus the generated sources.</param>
/// <param name="Sources">Generated sources by hint name.</param>
/// <param name="GeneratorDiagnostics">Diagnostics the generator reported.</param>
/// <param name="CompilationDiagnostics">Warnings and errors of <paramref name="Output"/> (the generated code compiled).</param>
public sealed record GeneratorRun(
    GeneratorDriver Driver,
    CSharpCompilation Compilation,
    Compilation Output,
    ImmutableDictionary<string, string> Sources,
    ImmutableArray<Diagnostic> GeneratorDiagnostics,
    ImmutableArray<Diagnostic> CompilationDiagnostics)
{
    /// <summary>The one generated source (fails when there is not exactly one).</summary>
    public string Source => Assert.Single(Sources).Value;

    /// <summary>The incremental step results of the last run.</summary>
    public GeneratorRunResult Result => Driver.GetRunResult().Results.Single();

    /// <summary>The run's only diagnostic, checking its id and that it is an error; nothing is generated.</summary>
    public Diagnostic SingleError(string id)
    {
        var diagnostic = Assert.Single(GeneratorDiagnostics);
        Assert.Equal(id, diagnostic.Id);
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        Assert.Empty(Sources);
        return diagnostic;
    }

    /// <summary>
    /// The source text a diagnostic points at. The generator keeps diagnostics as plain values for caching, so its
    /// locations are file locations (path + span), not tied to a syntax tree: resolve them against the user's files.
    /// </summary>
    public string LocatedText(Diagnostic diagnostic)
    {
        Assert.True(diagnostic.Location != Location.None, $"{diagnostic.Id} has no location: {diagnostic}");
        string path = diagnostic.Location.GetLineSpan().Path;
        var tree = Compilation.SyntaxTrees.SingleOrDefault(t => t.FilePath == path);
        Assert.True(tree is not null, $"{diagnostic.Id} points at '{path}', not at a user file: {diagnostic}");
        var span = diagnostic.Location.SourceSpan;
        Assert.Equal(tree!.GetText().Lines.GetLinePositionSpan(span), diagnostic.Location.GetLineSpan().Span);
        return tree.GetText().ToString(span);
    }
}

/// <summary>
/// Runs <see cref="GateLoopGenerator"/> in memory with <see cref="CSharpGeneratorDriver"/> over a library compilation
/// that references the running .NET's framework assemblies, ILGPU and GateLoop.Runtime, as a consumer project would.
/// </summary>
public static class GeneratorHarness
{
    /// <summary>The global usings the SDK adds for <c>ImplicitUsings=enable</c> (Microsoft.NET.Sdk).</summary>
    public const string ImplicitUsings = """
        global using global::System;
        global using global::System.Collections.Generic;
        global using global::System.IO;
        global using global::System.Linq;
        global using global::System.Net.Http;
        global using global::System.Threading;
        global using global::System.Threading.Tasks;
        """;

    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    static readonly Lazy<ImmutableArray<MetadataReference>> LazyReferences = new(LoadReferences);

    /// <summary>Framework assemblies (from the trusted platform assemblies), ILGPU and GateLoop.Runtime.</summary>
    public static ImmutableArray<MetadataReference> References => LazyReferences.Value;

    static ImmutableArray<MetadataReference> LoadReferences()
    {
        // The test host's TPA list also holds the test's own dependencies (Roslyn, xunit, the generator); keep the
        // shared framework only, then add what a model project references.
        string framework = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var paths = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(p => string.Equals(Path.GetDirectoryName(p), framework, StringComparison.OrdinalIgnoreCase))
            .Append(typeof(ILGPU.Index1D).Assembly.Location)
            .Append(typeof(GateLoopTransformerAttribute).Assembly.Location)
            .Distinct(StringComparer.OrdinalIgnoreCase);
        return paths.Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToImmutableArray();
    }

    /// <summary>A library compilation of <paramref name="sources"/> (file names Source0.cs, Source1.cs, …).</summary>
    /// <param name="implicitUsings">Add the SDK's implicit global usings, as <c>ImplicitUsings=enable</c> does.</param>
    public static CSharpCompilation Compile(IEnumerable<string> sources, bool implicitUsings = true)
    {
        var trees = sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, $"Source{i}.cs")).ToList();
        if (implicitUsings) trees.Add(CSharpSyntaxTree.ParseText(ImplicitUsings, ParseOptions, "GlobalUsings.g.cs"));
        return CSharpCompilation.Create("Consumer", trees, References,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary,
                nullableContextOptions: NullableContextOptions.Enable,
                allowUnsafe: true,
                warningLevel: 9999));
    }

    /// <summary>A driver for the generator; <paramref name="precision"/> sets <c>build_property.GateLoopPrecision</c>.</summary>
    public static GeneratorDriver CreateDriver(string? precision = null) =>
        CSharpGeneratorDriver.Create(
            [new GateLoopGenerator().AsSourceGenerator()],
            parseOptions: ParseOptions,
            optionsProvider: Options(precision),
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    /// <summary>Analyzer config options as MSBuild passes them: <c>build_property.GateLoopPrecision</c> when set.</summary>
    public static AnalyzerConfigOptionsProvider Options(string? precision)
    {
        var options = new Dictionary<string, string>();
        if (precision is not null) options["build_property.GateLoopPrecision"] = precision;
        return new OptionsProvider(options);
    }

    /// <summary>Runs the generator over <paramref name="sources"/>.</summary>
    public static GeneratorRun Run(string source, string? precision = null, bool implicitUsings = true) =>
        Run([source], precision, implicitUsings);

    /// <inheritdoc cref="Run(string, string?, bool)"/>
    public static GeneratorRun Run(IEnumerable<string> sources, string? precision = null, bool implicitUsings = true) =>
        Run(CreateDriver(precision), Compile(sources, implicitUsings));

    /// <summary>Runs <paramref name="driver"/> (possibly holding an earlier run's state) over <paramref name="compilation"/>.</summary>
    public static GeneratorRun Run(GeneratorDriver driver, CSharpCompilation compilation)
    {
        driver = driver.RunGeneratorsAndUpdateCompilation(compilation, out var output, out var generatorDiagnostics);
        var result = driver.GetRunResult().Results.Single();
        if (result.Exception is not null) throw new InvalidOperationException("the generator threw", result.Exception);
        var sources = result.GeneratedSources.ToImmutableDictionary(s => s.HintName, s => s.SourceText.ToString());
        var compileDiagnostics = output.GetDiagnostics()
            .Where(d => d.Severity >= DiagnosticSeverity.Warning)
            .ToImmutableArray();
        return new GeneratorRun(driver, compilation, output, sources, generatorDiagnostics, compileDiagnostics);
    }

    /// <summary>The diagnostics <see cref="Safety.KernelSafetyAnalyzer"/> reports on <paramref name="compilation"/>.</summary>
    public static ImmutableArray<Diagnostic> Analyze(Compilation compilation) =>
        compilation.WithAnalyzers([new Safety.KernelSafetyAnalyzer()])
            .GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();

    /// <summary>Formats diagnostics one per line, for assertion messages.</summary>
    public static string Describe(IEnumerable<Diagnostic> diagnostics) =>
        string.Join("\n", diagnostics.Select(d => d.ToString()));

    /// <summary>Asserts the generator reported nothing and the generated code compiles without errors or warnings.</summary>
    public static void AssertClean(GeneratorRun run)
    {
        Assert.True(run.GeneratorDiagnostics.IsEmpty, "generator diagnostics:\n" + Describe(run.GeneratorDiagnostics));
        Assert.True(run.CompilationDiagnostics.IsEmpty, "compilation diagnostics:\n" + Describe(run.CompilationDiagnostics));
    }

    /// <summary>
    /// Asserts <paramref name="run"/> is clean, emits its output and loads it into a collectible context named
    /// <paramref name="name"/>; unload the context when done with the assembly.
    /// </summary>
    public static (System.Reflection.Assembly Assembly, System.Runtime.Loader.AssemblyLoadContext Context) Load(GeneratorRun run, string name)
    {
        AssertClean(run);
        using var image = new MemoryStream();
        var result = run.Output.Emit(image);
        Assert.True(result.Success, Describe(result.Diagnostics));
        image.Position = 0;
        var context = new System.Runtime.Loader.AssemblyLoadContext(name, isCollectible: true);
        return (context.LoadFromStream(image), context);
    }

    sealed class OptionsProvider(Dictionary<string, string> global) : AnalyzerConfigOptionsProvider
    {
        static readonly ConfigOptions Empty = new([]);

        public override AnalyzerConfigOptions GlobalOptions { get; } = new ConfigOptions(global);

        public override AnalyzerConfigOptions GetOptions(SyntaxTree tree) => Empty;

        public override AnalyzerConfigOptions GetOptions(AdditionalText textFile) => Empty;
    }

    sealed class ConfigOptions(Dictionary<string, string> values) : AnalyzerConfigOptions
    {
        public override bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value) =>
            values.TryGetValue(key, out value);
    }
}
