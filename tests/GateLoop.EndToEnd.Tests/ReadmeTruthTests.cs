using System.CommandLine;
using System.Reflection;
using System.Text.RegularExpressions;

namespace GateLoop.EndToEnd.Tests;

/// <summary>
/// The README true to the letter, beside its two programs (compiled and run by the generator tests): every API name
/// it writes in code resolves to a type or member that exists, every repository path it names is in the tree, every
/// <c>--flag</c> is an option of the command it is given to, and the command table's signatures list exactly the
/// options each command's parser has.
/// </summary>
public sealed class ReadmeTruthTests
{
    static readonly string Root = RepositoryRoot();
    static readonly string Readme = File.ReadAllText(Path.Combine(Root, "README.md")).Replace("\r\n", "\n");

    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "GateLoop.Compiler.sln"))) return dir.FullName;
        throw new InvalidOperationException("GateLoop.Compiler.sln not found above " + AppContext.BaseDirectory);
    }

    static readonly Regex Fence = new(@"^```(?<lang>\w*)\n(?<code>.*?)^```", RegexOptions.Singleline | RegexOptions.Multiline);

    /// <summary>The inline code spans of the prose (outside fenced blocks), whitespace runs made one space.</summary>
    static IEnumerable<string> Spans() =>
        Regex.Matches(Fence.Replace(Readme, ""), @"`([^`]+)`").Select(m => Regex.Replace(m.Groups[1].Value, @"\s+", " ").Trim())
            .Where(s => s.Length > 0);

    /// <summary>The lines of the shell blocks, comments (#SBATCH lines too) dropped.</summary>
    static IEnumerable<string> ShellLines() =>
        Fence.Matches(Readme).Where(m => m.Groups["lang"].Value is "sh" or "bash" or "shell")
            .SelectMany(m => m.Groups["code"].Value.Split('\n')).Select(l => Regex.Replace(l, @"(^|\s)#.*$", "").Trim()).Where(l => l.Length > 0);

    // ------------------------------------------------------------------ the parser

    static readonly RootCommand Parser = GateLoop.Models.Program.Commands();

    static IReadOnlySet<string> OptionsOf(Command command) =>
        command.Options.Where(o => o is not System.CommandLine.Help.HelpOption).Select(o => o.Name).ToHashSet();

    static readonly Regex Flag = new(@"(?<![\w-])--[a-z][a-z0-9-]*");

    // Programs whose own flags a line or span may give before (or instead of) a gateloop command.
    static readonly HashSet<string> OtherPrograms = ["dotnet", "bash", "sh", "git", "python", "python3", "env", "mpirun", "srun", "kill", "docker", "export", "cd", "nohup", "time"];

    /// <summary>
    /// The flags that <paramref name="words"/> (a command line or a code span) gives to a gateloop command: those after
    /// <c>gateloop CMD</c>, <c>dotnet run … -- CMD</c> or a leading <c>CMD</c>, with that command; flags of other
    /// programs are not ours; a span of bare flags (null command) names options of some command.
    /// </summary>
    static (Command? Command, IEnumerable<string> Flags)? FlagsGiven(string words)
    {
        // Settings (NAME=value) before the program are not words of it.
        var tokens = words.Split(' ', StringSplitOptions.RemoveEmptyEntries).SkipWhile(t => Regex.IsMatch(t, @"^\w+=")).ToArray();
        Command? Named(int i) => i < tokens.Length ? Parser.Subcommands.FirstOrDefault(c => c.Name == tokens[i]) : null;
        // The program as a tool, a built binary or its dll (under mpirun, dotnet …), or after dotnet run's "--".
        static bool Starts(string t) => t is "gateloop" or "--" || t.EndsWith("/gateloop", StringComparison.Ordinal) || t.EndsWith("gateloop.dll", StringComparison.Ordinal);
        for (int i = 0; i < tokens.Length; i++)
            if ((Starts(tokens[i]) || i == 0) && Named(Starts(tokens[i]) ? i + 1 : i) is { } command)
                return (command, tokens.Skip(i).SelectMany(t => Flag.Matches(t).Select(m => m.Value)));
        if (tokens.Length == 0 || OtherPrograms.Contains(tokens[0]) || tokens[0].EndsWith(".sh", StringComparison.Ordinal)) return null;
        return (null, tokens.SelectMany(t => Flag.Matches(t).Select(m => m.Value)));
    }

    [Theory]
    [InlineData("gateloop train --steps 5 --out runs/a", "train", "--steps --out")]
    [InlineData("mpirun -np 2 --oversubscribe gateloop train --steps 5", "train", "--steps")]
    [InlineData("OMPI_X=1 mpirun --oversubscribe dotnet src/Models/bin/Release/net10.0/gateloop.dll eval --json", "eval", "--json")]
    [InlineData("dotnet run -c Release --project src/Models -- sample --length 3", "sample", "--length")]
    [InlineData("eval --weights int8", "eval", "--weights")]
    [InlineData("--resume DIR --steps N", null, "--resume --steps")]
    [InlineData("dotnet tool install --global gateloop --add-source feed", "none", "")]
    [InlineData("bash bench/precision.sh --x", "none", "")]
    public void Flags_are_read_as_the_command_they_follow_gets_them(string words, string? command, string flags)
    {
        var given = FlagsGiven(words);
        if (command == "none") { Assert.Null(given); return; }
        Assert.NotNull(given);
        Assert.Equal(command, given!.Value.Command?.Name);
        Assert.Equal(flags.Split(' ', StringSplitOptions.RemoveEmptyEntries), given.Value.Flags);
    }

    [Fact]
    public void Every_flag_the_readme_gives_a_command_is_one_of_its_options()
    {
        var all = Parser.Subcommands.SelectMany(OptionsOf).Append("--help").ToHashSet();
        var wrong = new List<string>();
        foreach (var words in Spans().Concat(ShellLines()))
            if (FlagsGiven(words) is var (command, flags))
                foreach (var flag in flags.Where(f => !(command is null ? all : OptionsOf(command)).Contains(f) && f != "--help"))
                    wrong.Add($"{flag} in `{words}`: not an option of {(command is null ? "any command" : "gateloop " + command.Name)}");
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public void The_command_table_lists_every_command_with_exactly_the_options_its_parser_has()
    {
        var rows = Regex.Matches(Readme, @"(?m)^\| `(?<signature>[^`]+)` \|").Select(m => m.Groups["signature"].Value.Replace(@"\|", "|")).ToList();
        var problems = new List<string>();
        foreach (var command in Parser.Subcommands)
        {
            var row = rows.FirstOrDefault(r => r.Split(' ')[0] == command.Name);
            if (row is null) { problems.Add($"{command.Name}: no row in the command table"); continue; }
            var listed = Flag.Matches(row).Select(m => m.Value).ToHashSet();
            var options = OptionsOf(command);
            if (!listed.SetEquals(options))
                problems.Add($"{command.Name}: the table lists {string.Join(" ", listed.Order())}; the parser has {string.Join(" ", options.Order())}" +
                    $" (missing: {string.Join(" ", options.Except(listed))}; not options: {string.Join(" ", listed.Except(options))})");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    // ------------------------------------------------------------------ paths

    static readonly string[] SourceExtensions = [".cs", ".csproj", ".sh", ".py", ".md", ".sln", ".props"];

    /// <summary>The files git tracks (a user's runs/ or feed/ are not the repository's).</summary>
    static readonly string[] TreeFiles = Tracked();

    static string[] Tracked()
    {
        var git = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("git", ["-C", Root, "ls-files"])
            { RedirectStandardOutput = true, UseShellExecute = false })!;
        string list = git.StandardOutput.ReadToEnd();
        git.WaitForExit();
        Assert.True(git.ExitCode == 0, "git ls-files failed: the README's paths are checked against the files git tracks");
        return list.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    static readonly HashSet<string> TopLevel = TreeFiles.Select(f => f.Split('/')[0]).ToHashSet();

    /// <summary>Whether a word names a file or folder of the repository: it starts at its root (or above it), or it is a source file's name.</summary>
    static bool IsRepositoryPath(string word) =>
        Regex.IsMatch(word, @"^[\w.*/-]+$") && (word.Contains('/') && (TopLevel.Contains(word.Split('/')[0]) || word.StartsWith("../", StringComparison.Ordinal))
            || SourceExtensions.Any(e => word.EndsWith(e, StringComparison.Ordinal)));

    /// <summary>Whether the path exists: from the root, as the tail of a path in the tree (Emit/HostTwins.cs), or for a pattern, its folder.</summary>
    static bool Exists(string path)
    {
        path = path.TrimEnd('/');
        if (path.Contains('*')) path = path[..path.LastIndexOf('/')];
        string full = Path.GetFullPath(Path.Combine(Root, path));
        if (full.StartsWith(Root + Path.DirectorySeparatorChar, StringComparison.Ordinal) && (File.Exists(full) || Directory.Exists(full))) return true;
        return !path.StartsWith("../", StringComparison.Ordinal) && TreeFiles.Any(f => ("/" + f).EndsWith("/" + path, StringComparison.Ordinal) || ("/" + f).Contains("/" + path + "/", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_path_the_readme_names_is_in_the_tree()
    {
        var words = Spans().Concat(ShellLines()).SelectMany(s => s.Split(' ')).Select(w => w.Trim('"', '\'', ',', ';', ':', '(', ')'));
        var links = Regex.Matches(Readme, @"\]\((?<target>[^)#\s]+)(#[^)]*)?\)").Select(m => m.Groups["target"].Value).Where(t => !t.Contains("://"));
        var missing = words.Where(IsRepositoryPath).Concat(links).Distinct().Where(p => !Exists(p)).ToList();
        Assert.True(missing.Count == 0, "not in the tree: " + string.Join(", ", missing));
    }

    // ------------------------------------------------------------------ API names

    // The product's assemblies (the runtime, and the command line with its generated models) and .NET's.
    static readonly Assembly[] Product = [typeof(GateLoop.Runtime.Device).Assembly, typeof(GateLoop.Models.Program).Assembly];
    static readonly Assembly[] Platform = [typeof(object).Assembly, typeof(System.Runtime.Intrinsics.X86.Avx).Assembly, typeof(Interlocked).Assembly, typeof(ILGPU.Context).Assembly];

    static readonly Type[] ProductTypes = Product.SelectMany(a => a.GetTypes()).ToArray();
    static readonly Type[] PlatformTypes = Platform.SelectMany(a => a.GetTypes()).Where(t => t.IsPublic || t.IsNestedPublic).ToArray();

    const BindingFlags Members = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.FlattenHierarchy;

    static string Simple(string name) => Regex.Replace(name, @"`\d+$", "");

    static IEnumerable<Type> TypesNamed(string name) =>
        ProductTypes.Concat(PlatformTypes).Where(t => Simple(t.Name) == name && !t.Name.StartsWith('<'));

    static bool HasMember(Type type, string name) =>
        type.GetMember(name, Members).Length > 0 || type.GetInterfaces().Any(i => i.GetMember(name, Members).Length > 0);

    // Identifiers in the product's source (and its benchmarks): kernel and buffer names, generator types, test-free names.
    static readonly Lazy<HashSet<string>> SourceWords = new(() => TreeFiles
        .Where(f => f.EndsWith(".cs", StringComparison.Ordinal) && (f.StartsWith("src/", StringComparison.Ordinal) || f.StartsWith("bench/", StringComparison.Ordinal))
            && !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal))
        .SelectMany(f => Regex.Matches(File.ReadAllText(Path.Combine(Root, f)), @"\b[A-Za-z_]\w*\b").Select(m => m.Value)).ToHashSet());

    static readonly Regex Dotted = new(@"(?<![\w.])(?<chain>[A-Za-z_]\w*(?:<[^<>]*>)?(?:\.[A-Za-z_]\w*(?:<[^<>]*>)?)+)(?![\w/])");

    static readonly HashSet<string> Namespaces = ProductTypes.Concat(PlatformTypes).Select(t => t.Namespace).OfType<string>()
        .SelectMany(ns => ns.Split('.').Select((_, i) => string.Join('.', ns.Split('.')[..(i + 1)]))).ToHashSet();

    static readonly string[] FileExtensions = ["cs", "csproj", "sln", "props", "md", "json", "jsonl", "png", "sh", "py", "zip", "gz", "safetensors", "txt", "so", "lock"];

    /// <summary>Why <paramref name="chain"/> (A.B.C, generic arguments allowed) does not resolve, or null when it does.</summary>
    static string? Unresolved(string chain)
    {
        var parts = Regex.Replace(chain, @"<[^<>]*>", "").Split('.');
        // Python (safetensors.torch.save_file), tensor names (norm.gamma), file names (ARCHITECTURE.md): not .NET names.
        if (!parts.Any(p => char.IsUpper(p[0])) || parts.Any(p => p.Contains('_')) || FileExtensions.Contains(parts[^1])) return null;
        // A namespace (GateLoop.Runtime), then a type, then its members.
        int first = Enumerable.Range(0, parts.Length + 1).Last(n => n == 0 || Namespaces.Contains(string.Join('.', parts[..n])));
        if (first == parts.Length) return null;
        var rest = parts[first..];
        if (first == 0 && char.IsLower(rest[0][0]))
            // model.UseWeights: a variable of some product (or .NET) type.
            return ProductTypes.Concat(PlatformTypes).Any(t => HasMember(t, rest[1])) ? null : $"no type has a member {rest[1]}";
        var types = TypesNamed(rest[0]).Where(t => first == 0 || t.Namespace == string.Join('.', parts[..first])).ToList();
        if (types.Count == 0) return $"no type {string.Join('.', parts[..(first + 1)])}";
        foreach (var member in rest.Skip(1))
        {
            if (!types.Any(t => HasMember(t, member))) return $"{rest[0]} has no member {member}";
            types = types.SelectMany(t => t.GetMember(member, Members).OfType<Type>()).ToList();
            if (types.Count == 0) break; // a method, property or field: what follows is not looked up
        }
        return null;
    }

    /// <summary>Why a lone identifier written as code (a type, a member, an attribute) names nothing, or null.</summary>
    static string? UnresolvedName(string name) =>
        TypesNamed(name).Any() || ProductTypes.Any(t => HasMember(t, name))
        || new[] { typeof(Math), typeof(MathF), typeof(Interlocked) }.Any(t => HasMember(t, name)) || SourceWords.Value.Contains(name)
            ? null : $"nothing is named {name}";

    [Fact]
    public void Every_API_name_the_readme_writes_as_code_exists()
    {
        var problems = new List<string>();
        foreach (var span in Spans().Where(s => !s.Contains('/') && !s.StartsWith('-')))
        {
            // Dotted names anywhere in the span (also inside a call's arguments), then a lone name, call or attribute.
            foreach (Match m in Dotted.Matches(span))
                if (Unresolved(m.Groups["chain"].Value) is { } why) problems.Add($"`{span}`: {why}");
            // Python (the seed's `Transformer(num_tokens = 256, …)`) has snake_case words; C# names have none.
            if (Regex.Match(span, @"^\[?(?<name>[A-Z][A-Za-z0-9]+)(<[^<>]*>)?(\(.*\))?\]?( = .+)?$") is { Success: true } lone
                && !Regex.IsMatch(span, @"\b[a-z]+_[a-z_]+\b")
                && UnresolvedName(lone.Groups["name"].Value) is { } whyNot)
                problems.Add($"`{span}`: {whyNot}");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems.Distinct()));
    }
}
