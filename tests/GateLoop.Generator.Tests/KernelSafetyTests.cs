using GateLoop.Tests.Shared;
using Microsoft.CodeAnalysis;

namespace GateLoop.Generator.Tests;

/// <summary>
/// The kernel-safety analyzer (GL0030): it refuses each construct ILGPU's PTX backend miscompiles, in the kernel
/// that uses it or in what that kernel calls, names the kernel and the construct, and accepts the safe spellings,
/// host code and every kernel the generator emits for the models the tests and the binary declare.
/// </summary>
public class KernelSafetyTests
{
    // Read from the output folder (copied there by the project file); the pragma that lets the runtime tests
    // compile the probes is dropped, so the analyzer reports them.
    static string ProbeSource() =>
        string.Join("\n", File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "PtxProbes.cs"))
            .Where(line => !line.TrimStart().StartsWith("#pragma warning", StringComparison.Ordinal)));

    static IReadOnlyList<Diagnostic> Analyze(params string[] sources) =>
        GeneratorHarness.Analyze(GeneratorHarness.Compile(sources)).Where(d => d.Id == "GL0030").ToList();

    public static TheoryData<string> Probes() => new(PtxProbes.Expected.Select(p => p.Kernel));

    [Theory]
    [MemberData(nameof(Probes))]
    public void Each_probe_is_refused_naming_its_kernel_and_construct(string kernel)
    {
        var expected = PtxProbes.Expected.Single(p => p.Kernel == kernel);
        var diagnostics = Analyze(ProbeSource());
        var mine = diagnostics.Where(d => d.GetMessage().Contains($"'{kernel}'")).ToList();
        var diagnostic = Assert.Single(mine);
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        Assert.StartsWith($"kernel '{kernel}'", diagnostic.GetMessage());
        Assert.Contains($": {expected.Construct} computes something else on CUDA: ", diagnostic.GetMessage());
    }

    [Fact]
    public void Every_diagnostic_is_a_probe()
    {
        var diagnostics = Analyze(ProbeSource());
        Assert.Equal(PtxProbes.Expected.Length, diagnostics.Count);
    }

    [Fact]
    public void A_helper_is_reported_where_it_is_written_with_the_kernels_that_reach_it()
    {
        var diagnostic = Assert.Single(Analyze("""
            using ILGPU;
            static class K
            {
                static float Sign(float v, float s) => MathF.CopySign(v, s);
                static float Twice(float v, float s) => 2 * Sign(v, s);
                public static void A(Index1D i, ArrayView<float> x) => x[i] = Twice(x[i], -1f);
                public static void B(Index1D i, ArrayView<float> x) => x[i] = Sign(x[i], 1f);
                static float Unused(float v) => MathF.CopySign(v, -1f);
            }
            """));
        Assert.StartsWith("kernels 'A', 'B' (in 'Sign'): CopySign computes something else on CUDA", diagnostic.GetMessage());
        Assert.Contains("MathF.CopySign(v, s)", diagnostic.Location.SourceTree!.ToString().Substring(diagnostic.Location.SourceSpan.Start, diagnostic.Location.SourceSpan.Length));
    }

    [Fact]
    public void A_method_handed_to_an_ilgpu_loader_is_a_kernel()
    {
        var diagnostic = Assert.Single(Analyze("""
            using ILGPU;
            using ILGPU.Runtime;
            static class K
            {
                static void Grouped(ArrayView<float> x) => x[Grid.GlobalIndex.X] = MathF.CopySign(x[Grid.GlobalIndex.X], -1f);
                public static void Load(Accelerator a) => a.LoadStreamKernel<ArrayView<float>>(Grouped);
            }
            """));
        Assert.StartsWith("kernel 'Grouped': CopySign computes", diagnostic.GetMessage());
    }

    [Fact]
    public void Safe_spellings_and_host_code_pass()
    {
        Assert.Empty(Analyze("""
            using ILGPU;
            static class K
            {
                public static void Safe(Index1D i, ArrayView<float> x, ArrayView<int> t, ArrayView<uint> u, ArrayView<ushort> w, ArrayView<byte> b)
                {
                    float v = x[i];
                    float sign = v < 0 ? -1f : 1f;                     // a select of floats
                    int hit = i.X == t[i] ? 1 : 0;                     // an int first, then converted
                    float h = hit;
                    float big = (float)(int)u[i] + (float)(long)u[i];  // unsigned through a signed type
                    float small = w[i] + b[i];                         // byte and ushort widen to int
                    b[i] = (byte)(int)v;                               // float to int, then narrowed
                    float relu = v < 0 ? 0f : v;                       // Max(v, 0) as a select
                    x[i] = sign * MathF.Abs(v) + h + big + small + MathF.Round(v) + MathF.Truncate(v) + MathF.Exp(v) + relu + Math.Max(hit, 1);
                    System.Threading.Interlocked.Exchange(ref t[0], 1);
                }

                // Host code: not reachable from a kernel.
                public static float Host(float a, float b, bool c, uint n) => MathF.CopySign(a, b) + (c ? 1 : 0) + n + MathF.Round(a) + MathF.Max(a, b) + (int)n / 2;
            }

            // A host twin takes HostViews: it never reaches a GPU.
            static class Twins
            {
                public static void Twin(Index1D i, GateLoop.Runtime.HostView<float> x) => x[i] = MathF.CopySign(x[i], -1f);
            }
            """));
    }

    /// <summary>
    /// A signed division by a power of two passes where the dividend is provably non-negative (the index, sizes,
    /// lengths, locals and loop counters set only from such), and is refused where it is not.
    /// </summary>
    [Fact]
    public void Signed_divisions_by_powers_of_two_pass_only_on_values_proven_non_negative()
    {
        var diagnostics = Analyze("""
            using ILGPU;
            static class K
            {
                const int Chunk = 32, Dim = 64;
                public static void Proven(Index1D index, int seq, ArrayView<int> x)
                {
                    int chunks = (seq + Chunk - 1) / Chunk, row = index / Dim, c = index.X % Dim;
                    long o = (long)index.X * Dim + x.Length / 2;
                    int sum = 0;
                    for (int k = 0; k < 8; k++) sum += k / 2;
                    int g = Group.IdxX / 2 + Grid.IdxX / 4;
                    x[index] = chunks + row + c + (int)(o / 16) + sum + g + (c & 7) / 2 + x[index] % 32 + x[index] / 3;
                }

                public static void Negative(Index1D index, ArrayView<int> x) => x[index] = x[index] / 32;
                public static void Difference(Index1D index, int seq) { int d = (seq - 5) / 4; }
                public static void Decremented(Index1D index, ArrayView<int> x) { int v = 10; v--; x[index] = v / 2; }
                public static void Long(Index1D index, ArrayView<long> x) => x[index] = x[index] / 1024L;
                public static void NegativePower(Index1D index, ArrayView<int> x) => x[index] = x[index] / -8;
            }
            """);
        Assert.Equal(["Decremented", "Difference", "Long", "Negative", "NegativePower"],
            diagnostics.Select(d => System.Text.RegularExpressions.Regex.Match(d.GetMessage(), "kernel '([A-Za-z]+)'").Groups[1].Value).Order());
        Assert.All(diagnostics, d => Assert.Contains("a signed division by a power of two of a value not known to be non-negative computes something else on CUDA", d.GetMessage()));
    }

    /// <summary>Every model the tests and the binary declare, in both precisions: the generated kernels pass.</summary>
    [Theory]
    [InlineData("float")]
    [InlineData("double")]
    public void Generated_kernels_of_every_declared_model_pass(string precision)
    {
        string root = ConsumerProject.FindRepoRoot();
        var sources = new[] { Path.Combine(root, "tests", "Shared", "TestDeclarations.cs"), Path.Combine(root, "src", "Models", "Declarations.cs") }
            .Select(File.ReadAllText).ToList();
        var run = GeneratorHarness.Run(sources, precision);
        int declared = sources.Sum(s => System.Text.RegularExpressions.Regex.Matches(s, @"^\[(GateLoopTransformer|SimpleGateLoop)\(", System.Text.RegularExpressions.RegexOptions.Multiline).Count);
        Assert.True(run.GeneratorDiagnostics.IsEmpty, GeneratorHarness.Describe(run.GeneratorDiagnostics));
        Assert.Equal(declared, run.Sources.Count);
        var diagnostics = GeneratorHarness.Analyze(run.Output).Where(d => d.Id == "GL0030").ToList();
        Assert.True(diagnostics.Count == 0, GeneratorHarness.Describe(diagnostics));
    }
}
