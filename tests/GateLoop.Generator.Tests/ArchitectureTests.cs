using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace GateLoop.Generator.Tests;

/// <summary>
/// The source tree as docs/ARCHITECTURE.md draws it: the generator's stages and the runtime's layers use only the
/// folders before them (found by binding every name in the sources with Roslyn), the README's layout table
/// names every folder there is, the runtime's text names no command-line flag, and the generated schedules read
/// the shape they run at from their arguments.
/// </summary>
public sealed class ArchitectureTests
{
    static readonly string Root = ConsumerProject.FindRepoRoot();

    /// <summary>Generator stages in pipeline order: the spec and its diagnostics, parsing, the IR, ops, lowering, passes, safety, emission; the driver at the root.</summary>
    static readonly string[] GeneratorStages = ["Templates", "Model", "Parsing", "Ir", "Ops", "Lowering", "Passes", "Safety", "Emit", "."];

    /// <summary>Runtime layers from the bottom up; the root holds the one exception type every layer may throw.</summary>
    static readonly string[] RuntimeLayers = [".", "Attributes", "Data", "Simulator", "Gemm", "HostSimd", "Devices", "Models", "Layers", "Optimizers", "Communication", "Checkpoints", "Doctor", "Training", "Serving", "Benchmarks"];

    public static TheoryData<string> Trees() => new("src/Generator", "src/Runtime");

    [Theory]
    [MemberData(nameof(Trees))]
    public void Each_folder_uses_only_the_folders_before_it(string tree)
    {
        var order = tree == "src/Generator" ? GeneratorStages : RuntimeLayers;
        var directory = Path.Combine(Root, tree);
        // Every folder has its place in the order (a new one needs one).
        Assert.Equal(order.Order(), Directory.EnumerateDirectories(directory).Select(d => Path.GetFileName(d)!)
            .Where(n => n is not ("bin" or "obj")).Append(".").Order());
        var uses = FolderUses(directory);
        var upward = uses.Where(u => Array.IndexOf(order, u.Key.To) > Array.IndexOf(order, u.Key.From))
            .Select(u => $"{u.Key.From} uses {u.Key.To} ({u.Value})").ToList();
        Assert.True(upward.Count == 0, $"{tree}: a folder uses one after it:\n{string.Join("\n", upward)}");
        // The check sees references at all: the top stage uses the ones below it.
        Assert.Contains(uses.Keys, k => k.From == order[^1]);
    }

    /// <summary>For each (folder, folder it uses), one example: the symbol and the file using it.</summary>
    static Dictionary<(string From, string To), string> FolderUses(string directory)
    {
        var files = Directory.EnumerateFiles(directory, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"));
        var options = new CSharpParseOptions(LanguageVersion.Latest);
        var trees = files.Select(f => CSharpSyntaxTree.ParseText(File.ReadAllText(f), options, f))
            .Append(CSharpSyntaxTree.ParseText(GeneratorHarness.ImplicitUsings, options, "GlobalUsings.g.cs")).ToList();
        string framework = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(p => Path.GetDirectoryName(p) == framework)
            .Append(typeof(ILGPU.Index1D).Assembly.Location)
            .Append(typeof(CSharpCompilation).Assembly.Location)
            .Append(typeof(Compilation).Assembly.Location)
            .Select(p => MetadataReference.CreateFromFile(p));
        var compilation = CSharpCompilation.Create("Tree", trees, references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, allowUnsafe: true));

        string Folder(string path)
        {
            var relative = Path.GetRelativePath(directory, path).Split(Path.DirectorySeparatorChar);
            return relative.Length == 1 ? "." : relative[0];
        }
        var uses = new Dictionary<(string, string), string>();
        foreach (var tree in trees.Where(t => t.FilePath.StartsWith(directory, StringComparison.Ordinal)))
        {
            var model = compilation.GetSemanticModel(tree);
            string from = Folder(tree.FilePath);
            foreach (var name in tree.GetRoot().DescendantNodes().OfType<SimpleNameSyntax>())
            {
                var info = model.GetSymbolInfo(name);
                var symbol = info.Symbol ?? info.CandidateSymbols.FirstOrDefault();
                // A member is where its type is declared; partial types count where each part lives.
                var type = symbol as INamedTypeSymbol ?? symbol?.ContainingType;
                while (type?.ContainingType is { } outer) type = outer;
                if (type is null) continue;
                foreach (var location in type.Locations.Where(l => l.IsInSource && l.SourceTree!.FilePath.StartsWith(directory, StringComparison.Ordinal)))
                {
                    string to = Folder(location.SourceTree!.FilePath);
                    if (to != from && type.Locations.All(l => !l.IsInSource || Folder(l.SourceTree!.FilePath) != from))
                        uses.TryAdd((from, to), $"{type.Name} in {Path.GetFileName(tree.FilePath)}");
                }
            }
        }
        return uses;
    }

    [Fact]
    public void The_runtime_names_API_parameters_not_command_line_flags()
    {
        // Only the command line (src/Models/Commands) knows its flags; an API caller never passed --seq-len.
        var flags = new List<string>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, "src/Runtime"), "*.cs", SearchOption.AllDirectories)
                     .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}")))
            foreach (var token in CSharpSyntaxTree.ParseText(File.ReadAllText(file)).GetRoot().DescendantTokens()
                         .Where(t => t.IsKind(SyntaxKind.StringLiteralToken) || t.IsKind(SyntaxKind.InterpolatedStringTextToken)
                             || t.IsKind(SyntaxKind.SingleLineRawStringLiteralToken) || t.IsKind(SyntaxKind.MultiLineRawStringLiteralToken)))
                foreach (Match flag in Regex.Matches(token.ValueText, @"(?<![\w-])--[a-z][a-z0-9-]*"))
                    flags.Add($"{Path.GetRelativePath(Root, file)}:{token.GetLocation().GetLineSpan().StartLinePosition.Line + 1}: {flag.Value}");
        Assert.True(flags.Count == 0, $"the runtime's strings name command-line flags:\n{string.Join("\n", flags)}");
    }

    [Theory]
    [InlineData(typeof(GateLoop.Runtime.TransformerModel<float>))]
    [InlineData(typeof(GateLoop.Runtime.SimpleGateLoopLayer<float>))]
    public void The_generated_schedules_read_their_shape_from_their_arguments(Type runtimeBase)
    {
        // What a generated subclass can read besides its arguments: no shape, and no view of one plan's buffers.
        const System.Reflection.BindingFlags Declared = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic
            | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.DeclaredOnly;
        var ambient = runtimeBase.GetProperties(Declared).Where(p => p.GetMethod is { IsFamily: true } or { IsFamilyOrAssembly: true })
            .Select(p => (p.Name, Type: p.PropertyType))
            .Concat(runtimeBase.GetFields(Declared).Where(f => f.IsFamily || f.IsFamilyOrAssembly).Select(f => (f.Name, Type: f.FieldType)))
            .Where(m => m.Type == typeof(int) || m.Type.Name.StartsWith("ArrayView", StringComparison.Ordinal))
            .Select(m => m.Name).ToList();
        Assert.True(ambient.Count == 0, $"{runtimeBase.Name} hands its subclass a shape or a plan's view outside the schedules' arguments: {string.Join(", ", ambient)}");
        // The schedules themselves take it: each Core method's first parameter is the plan or the batch.
        var schedules = runtimeBase.GetMethods(Declared).Where(m => m.IsAbstract && m.Name.EndsWith("Core", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(schedules);
        Assert.All(schedules, m => Assert.True(m.GetParameters() is [{ Name: "plan" }, ..] or [{ Name: "batch" }, { Name: "seq" }, ..], $"{m.Name} is not passed its shape"));
    }

    [Fact]
    public void The_readme_layout_table_names_every_source_folder()
    {
        var rows = File.ReadAllLines(Path.Combine(Root, "README.md"))
            .Select(l => Regex.Match(l, @"^\| `([^`]+)/?` \|"))
            .Where(m => m.Success).Select(m => m.Groups[1].Value.TrimEnd('/')).ToHashSet();
        var folders = Directory.EnumerateDirectories(Path.Combine(Root, "src"))
            .SelectMany(d => Directory.EnumerateDirectories(d).Prepend(d))
            .Where(d => Path.GetFileName(d) is not ("bin" or "obj"))
            .Select(d => Path.GetRelativePath(Root, d).Replace(Path.DirectorySeparatorChar, '/'))
            .Append("tests").Append("bench").Append("docs").ToHashSet();
        Assert.Empty(folders.Except(rows).Order());
        Assert.Empty(rows.Where(r => r.StartsWith("src/", StringComparison.Ordinal) || r is "tests" or "bench" or "docs").Except(folders).Order());
    }
}
