using System.Diagnostics;
using System.Text;

namespace GateLoop.Generator.Tests;

/// <summary>
/// A consumer project, created in a temp folder outside the repository, referencing the runtime and the generator
/// (as an analyzer) the way a model project does. Restored once for the class; each test writes its sources and
/// runs a real <c>dotnet build</c>.
/// </summary>
public sealed class ConsumerProject : IDisposable
{
    public ConsumerProject()
    {
        RepoRoot = FindRepoRoot();
        Folder = Path.Combine(Path.GetTempPath(), "gateloop-consumer-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Folder);
        // Empty props stop MSBuild from walking up into whatever folder holds the temp dir.
        File.WriteAllText(Path.Combine(Folder, "Directory.Build.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(Folder, "Directory.Packages.props"), "<Project />\n");
        string runtime = Path.Combine(RepoRoot, "src", "Runtime", "GateLoop.Runtime.csproj");
        string generator = Path.Combine(RepoRoot, "src", "Generator", "GateLoop.Generator.csproj");
        File.WriteAllText(Path.Combine(Folder, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                <ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally>
              </PropertyGroup>
              <ItemGroup>
                <ProjectReference Include="{runtime}" />
                <ProjectReference Include="{generator}" OutputItemType="Analyzer" ReferenceOutputAssembly="false" />
              </ItemGroup>
            </Project>
            """);
        Write(Program: "", Model: "");
        Restore = Dotnet("restore", "-nologo", "-v", "q");
    }

    /// <summary>The folder holding <c>src/Generator/GateLoop.Generator.csproj</c> (and GateLoop.Compiler.sln, once it exists).</summary>
    public string RepoRoot { get; }

    public string Folder { get; }

    /// <summary>The one restore, shared by the tests.</summary>
    public (int ExitCode, string Output) Restore { get; }

    internal static string FindRepoRoot()
    {
        var start = new DirectoryInfo(AppContext.BaseDirectory);
        for (var d = start; d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "GateLoop.Compiler.sln"))) return d.FullName;
        for (var d = start; d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "src", "Generator", "GateLoop.Generator.csproj"))) return d.FullName;
        throw new InvalidOperationException($"no repository root above {start.FullName}");
    }

    public void Write(string Program, string Model)
    {
        File.WriteAllText(Path.Combine(Folder, "Program.cs"), Program);
        File.WriteAllText(Path.Combine(Folder, "Model.cs"), Model);
    }

    /// <summary>
    /// Builds without build servers or the shared compiler, so nothing outlives the test and the generator
    /// assembly is loaded fresh.
    /// </summary>
    public (int ExitCode, string Output) Build() =>
        Dotnet("build", "--no-restore", "-nologo", "-v", "q", "--disable-build-servers", "-p:UseSharedCompilation=false");

    public (int ExitCode, string Output) Run() => Dotnet("run", "--no-build", "--no-restore");

    public (int ExitCode, string Output) Dotnet(params string[] arguments)
    {
        var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = Folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        // The test host may inherit the outer build's MSBuild settings; the inner build must not see them.
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            info.Environment.Remove(key);
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";

        var output = new StringBuilder();
        using var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet {string.Join(' ', arguments)} ran over 3 minutes:\n{output}");
        }
        process.WaitForExit(); // drains the output
        lock (output) return (process.ExitCode, output.ToString());
    }

    public void Dispose()
    {
        try { Directory.Delete(Folder, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

/// <summary>
/// Real builds, not only in-memory compilations: the generator loads as an analyzer in the SDK's compiler, its
/// output compiles with the consumer's settings (warnings as errors), and its diagnostics fail the build.
/// </summary>
public class BuildTests(ConsumerProject project) : IClassFixture<ConsumerProject>
{
    [Fact]
    public void ValidModel_BuildsAndRuns()
    {
        Assert.True(project.Restore.ExitCode == 0, "restore failed:\n" + project.Restore.Output);
        project.Write(
            Program: """
                System.Console.WriteLine($"parameters {Consumer.TinyModel.ParameterTable.Count}");
                System.Console.WriteLine($"dim {Consumer.TinyModel.Dim}");
                System.Console.WriteLine($"base {typeof(Consumer.TinyModel).BaseType!.Name}<{typeof(Consumer.TinyModel).BaseType!.GetGenericArguments()[0].Name}>");
                """,
            Model: """
                using GateLoop;

                namespace Consumer;

                [GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 2, GateLoopHeads = 2, SubLayerNorm = true)]
                public partial class TinyModel;
                """);
        var build = project.Build();
        Assert.True(build.ExitCode == 0, "build failed:\n" + build.Output);

        var run = project.Run();
        Assert.True(run.ExitCode == 0, "run failed:\n" + run.Output);
        // token_emb + 2 layers × 13 tensors (qkv, to_a weight/bias, sub-LN weight/bias, gates, out, norm, 2 × FF weight/bias, norm) + 2 head tensors.
        Assert.Contains("parameters 29", run.Output);
        Assert.Contains("dim 8", run.Output);
        Assert.Contains("base TransformerModel`1<Single>", run.Output);
    }

    [Fact]
    public void KernelConstructsIlgpuMiscompiles_FailTheBuildWithGL0030()
    {
        Assert.True(project.Restore.ExitCode == 0, "restore failed:\n" + project.Restore.Output);
        project.Write(
            Program: """System.Console.WriteLine("unreachable");""",
            Model: """
                using ILGPU;

                namespace Consumer;

                public static class MyKernels
                {
                    public static void Flip(Index1D i, ArrayView<float> x) => x[i] = MathF.CopySign(x[i], -1f);

                    public static void OneHot(Index1D i, ArrayView<float> x, ArrayView<int> t) => x[i] -= i.X == t[i] ? 1 : 0;
                }
                """);
        var build = project.Build();
        Assert.True(build.ExitCode != 0, "build succeeded:\n" + build.Output);
        Assert.Matches(@"Model\.cs\(7,70\): error GL0030: kernel 'Flip': CopySign computes something else on CUDA", build.Output);
        Assert.Matches(@"Model\.cs\(9,91\): error GL0030: kernel 'OneHot': an integer conditional converted to a floating type computes something else on CUDA", build.Output);
    }

    [Fact]
    public void NonPartialModel_FailsTheBuildWithGL0001()
    {
        Assert.True(project.Restore.ExitCode == 0, "restore failed:\n" + project.Restore.Output);
        project.Write(
            Program: """System.Console.WriteLine("unreachable");""",
            Model: """
                using GateLoop;

                namespace Consumer;

                [GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 2)]
                public class NotPartial { }
                """);
        var build = project.Build();
        Assert.True(build.ExitCode != 0, "build succeeded:\n" + build.Output);
        Assert.Matches(@"Model\.cs\(6,14\): error GL0001: 'NotPartial' must be declared 'partial'", build.Output);
    }
}
