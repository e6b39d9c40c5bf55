using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;

namespace GateLoop.Generator.Tests;

/// <summary>Tests that change the process's console: not run beside others.</summary>
[CollectionDefinition(nameof(ConsoleCollection), DisableParallelization = true)]
public sealed class ConsoleCollection;

/// <summary>
/// The README's programs, as written there: each C# block followed by "prints" and a text block is compiled with
/// the generator as a console program, run, and what it prints compared with that text, so the README cannot drift.
/// </summary>
[Collection(nameof(ConsoleCollection))]
public sealed class ReadmeTests
{
    static readonly Regex Program = new(@"```csharp\n(?<code>.*?)```\n\nprints\n\n```text\n(?<output>.*?)```", RegexOptions.Singleline);

    static IReadOnlyList<(string Code, string Output)> Programs() =>
        Program.Matches(File.ReadAllText(Path.Combine(ConsumerProject.FindRepoRoot(), "README.md")).Replace("\r\n", "\n"))
            .Select(m => (m.Groups["code"].Value, m.Groups["output"].Value)).ToList();

    public static TheoryData<int> Indices() => new(Enumerable.Range(0, Programs().Count));

    [Fact]
    public void The_readme_has_the_seeds_two_examples_as_programs()
    {
        var programs = Programs();
        Assert.Equal(2, programs.Count);
        Assert.Contains("Dim = 624", programs[0].Code);
        Assert.Contains("[SimpleGateLoop(Dim = 512)]", programs[1].Code);
    }

    [Theory]
    [MemberData(nameof(Indices))]
    public void A_readme_program_prints_what_the_readme_says(int index)
    {
        var (code, expected) = Programs()[index];
        var compilation = GeneratorHarness.Compile([code]).WithOptions(
            new Microsoft.CodeAnalysis.CSharp.CSharpCompilationOptions(OutputKind.ConsoleApplication, allowUnsafe: true,
                nullableContextOptions: NullableContextOptions.Enable));
        var (assembly, context) = GeneratorHarness.Load(GeneratorHarness.Run(GeneratorHarness.CreateDriver(), compilation), "readme-program");
        var console = Console.Out;
        var printed = new StringWriter { NewLine = "\n" };
        try
        {
            Console.SetOut(printed);
            var entry = assembly.EntryPoint!;
            entry.Invoke(null, entry.GetParameters().Length == 0 ? null : [Array.Empty<string>()]);
        }
        finally
        {
            Console.SetOut(console);
            context.Unload();
        }
        Assert.Equal(expected, printed.ToString());
    }
}
