namespace GateLoop.EndToEnd.Tests;

/// <summary>
/// A consumer's first five minutes: pack GateLoop.Runtime into a local feed, create a fresh project outside the
/// solution that references only that package, declare a model and a SimpleGateLoop layer as the README does,
/// build and run them on the CPU; and check
/// that a wrong declaration fails the build with its GL id.
/// </summary>
public sealed class PackageTests : IDisposable
{
    readonly string root = Directory.CreateTempSubdirectory("gateloop-package-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "GateLoop.Compiler.sln"))) return dir.FullName;
        throw new InvalidOperationException("GateLoop.Compiler.sln not found above " + AppContext.BaseDirectory);
    }

    static CliResult Succeed(string directory, params string[] args)
    {
        // Packing the solution builds the tool once per platform it ships for: minutes on two busy cores.
        var result = Cli.Dotnet(directory, args, TimeSpan.FromMinutes(10));
        Assert.True(result.ExitCode == 0, $"dotnet failed\n{result}");
        return result;
    }

    const string Program = """
        using GateLoop;
        using GateLoop.Runtime;

        using var device = Device.Create("cpu");
        using var model = new TinyGateLoop(device);
        model.Initialize(seed: 0);
        var logits = model.Logits(new int[2 * 5], batch: 2, seq: 5);
        Console.WriteLine($"logits {logits.Length} = 2 x 5 x {model.Vocabulary}");
        Console.WriteLine($"loss {model.Forward(new int[2 * 6], batch: 2, seq: 5):F3}");
        Console.WriteLine($"tensors {TinyGateLoop.ParameterTable.Count}");

        using var mixer = new Mixer(device);
        mixer.Initialize(seed: 0);
        using var x = device.Allocate<float>(4096 * 16);
        using var y = device.Allocate<float>(4096 * 16);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(x.View.AsContiguous(), Enumerable.Range(0, 4096 * 16).Select(i => MathF.Sin(i)).ToArray());
        mixer.Forward(x.View, y.View, batch: 1, seq: 4096);
        var output = new float[4096 * 16];
        ILGPU.Runtime.ArrayViewExtensions.CopyToCPU(y.View.AsContiguous(), output);
        Console.WriteLine($"mixer {output.Length} finite {output.All(float.IsFinite)} nonzero {output.Count(v => v != 0)}");

        [GateLoopTransformer(NumTokens = 256, Dim = 16, Depth = 2, PostLayerNorm = true)]
        public partial class TinyGateLoop;

        [SimpleGateLoop(Dim = 16)]
        public partial class Mixer;
        """;

    [Fact]
    public void A_fresh_project_uses_the_package_and_a_wrong_declaration_fails_with_its_id()
    {
        // A version of its own, so no package cached by an earlier run is picked up instead of this build.
        string version = $"0.1.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}";
        string feed = Path.Combine(root, "feed"), app = Path.Combine(root, "app");
        Succeed(RepositoryRoot(), "pack", "src/Runtime/GateLoop.Runtime.csproj", "-c", "Release", "-o", feed, $"-p:Version={version}", "-nologo");
        Assert.True(File.Exists(Path.Combine(feed, $"GateLoop.Runtime.{version}.nupkg")));

        Directory.CreateDirectory(app);
        // Empty props files stop the repository's own build settings from applying to the consumer.
        File.WriteAllText(Path.Combine(root, "Directory.Build.props"), "<Project />");
        File.WriteAllText(Path.Combine(root, "Directory.Packages.props"), "<Project />");
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <configuration>
              <packageSources>
                <add key="local" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="GateLoop.Runtime" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), Program);

        Succeed(app, "build", "-nologo", "-v", "q");
        var run = Succeed(app, "run", "--no-build");
        Assert.Contains("logits 2560 = 2 x 5 x 256", run.Stdout);
        Assert.Contains("tensors 28", run.Stdout); // the embedding, 13 per layer, the head
        Assert.Contains("mixer 65536 finite True nonzero 65536", run.Stdout);
        var loss = double.Parse(run.Stdout.Split('\n').Single(l => l.StartsWith("loss ")).Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(loss, 4.5, 7.0);

        File.WriteAllText(Path.Combine(app, "Program.cs"), Program.Replace("public partial class TinyGateLoop;", "public class TinyGateLoop;"));
        var broken = Cli.Dotnet(app, ["build", "-nologo", "-v", "q"], TimeSpan.FromMinutes(5));
        Assert.NotEqual(0, broken.ExitCode);
        Assert.Contains("error GL0001", broken.Stdout + broken.Stderr);
    }

    [Fact]
    public void The_solution_packs_the_library_and_the_tool_only_and_the_tool_installs_and_runs()
    {
        string version = $"0.1.0-tool.{DateTime.UtcNow:yyyyMMddHHmmss}";
        string feed = Path.Combine(root, "feed"), tools = Path.Combine(root, "tools");
        Succeed(RepositoryRoot(), "pack", "GateLoop.Compiler.sln", "-c", "Release", "-o", feed, $"-p:Version={version}", "-nologo");
        // The generator ships inside GateLoop.Runtime; tests and benchmarks are not packages. The tool is one small
        // package naming its platforms and one package per platform, holding that platform's native libraries only.
        string[] platforms = ["linux-arm64", "linux-musl-x64", "linux-x64", "osx-arm64", "osx-x64", "win-x64"];
        Assert.Equal([$"GateLoop.Runtime.{version}.nupkg", $"gateloop.{version}.nupkg", .. platforms.Select(rid => $"gateloop.{rid}.{version}.nupkg")],
            Directory.GetFiles(feed, "*.nupkg").Select(Path.GetFileName).Order(StringComparer.Ordinal));
        long linux = new FileInfo(Path.Combine(feed, $"gateloop.linux-x64.{version}.nupkg")).Length;
        Assert.True(linux <= 25_000_000, $"the linux-x64 tool package is {linux / 1e6:F1} MB, more than 25 MB");
        using (var package = System.IO.Compression.ZipFile.OpenRead(Path.Combine(feed, $"gateloop.linux-x64.{version}.nupkg")))
            Assert.DoesNotContain(package.Entries, e => e.FullName.EndsWith(".dylib", StringComparison.Ordinal) || e.FullName.EndsWith(".dll", StringComparison.Ordinal) && e.FullName.Contains("/runtimes/"));

        Succeed(root, "tool", "install", "gateloop", "--tool-path", tools, "--add-source", feed, "--version", version, "--ignore-failed-sources");
        var models = Cli.Exec(Path.Combine(tools, "gateloop"), root, ["models"]);
        Assert.True(models.ExitCode == 0, models.ToString());
        Assert.Contains("gateloop-small ", models.Stdout);
        Assert.Contains("hybrid-small ", models.Stdout);
    }
}
