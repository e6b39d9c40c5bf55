using System.Text.Json;
using Xunit.Abstractions;

namespace GateLoop.EndToEnd.Tests;

/// <summary>
/// <c>gateloop doctor</c> and the device check train and bench run first, as a user meets them: on ilgpu-cpu (ILGPU
/// compiling every kernel, as for a GPU) against the host backend, with the PTX audited for sm_90 on the way.
/// </summary>
/// <remarks>
/// They run alone (<see cref="IlgpuCpuCollection"/>): the CPU accelerator runs a warp as 32 threads that meet at a
/// barrier for every shuffle, so on a machine busy with other tests each meeting waits for 32 wake-ups and a two-step
/// run that takes 12 s idle took over 120 s.
/// </remarks>
[Collection(IlgpuCpuCollection.Name)]
public sealed class DoctorTests(TrainedModelFixture fixture, ITestOutputHelper output) : IClassFixture<TrainedModelFixture>
{
    CliResult Run(params string[] args)
    {
        var result = Cli.Run(fixture.Root, args);
        output.WriteLine($"[{result.Elapsed.TotalSeconds,5:F1} s] exit {result.ExitCode}: gateloop {result.CommandLine}");
        return result;
    }

    [Fact]
    public void Doctor_on_ilgpu_cpu_passes_for_gateloop_tiny_with_a_table_of_errors()
    {
        var result = Run("doctor", "--device", "ilgpu-cpu", "--model", "gateloop-tiny");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("PTX    runtime (optimizer, probes, tiled GEMM, bf16 roundings): 9 kernels compiled for sm_90, no known ILGPU fault", result.Stdout);
        Assert.Matches(@"PTX    gateloop-tiny: \d+ kernels compiled for sm_90, no known ILGPU fault", result.Stdout);
        foreach (var row in new[] { "exp(x)", "GEMM Aᵀ·Bᵀ, β 1", "column sums", "loss", "FfAct[0]", "DQkv", "∂to_logits.weight", "weights after an Adam step", "generation logits" })
            Assert.Matches($@"(?m)^\S.*{System.Text.RegularExpressions.Regex.Escape(row)}.*  ok\s*$", result.Stdout);
        Assert.DoesNotContain("FAIL", result.Stdout);
        Assert.Matches(@"doctor: all \d+ checks within tolerance \(closest to its tolerance: ", result.Stdout);
        // The legend explains the columns, "closest", and every buffer the table names (X[0] and X[1] as X[i]).
        Assert.Contains("closest: the check whose error is the largest fraction of its tolerance", result.Stdout);
        var legend = System.Text.RegularExpressions.Regex.Matches(result.Stdout, @"(?m)^  (?<name>\S+) +(?<meaning>\S.*)$")
            .ToDictionary(m => m.Groups["name"].Value, m => m.Groups["meaning"].Value);
        var buffers = System.Text.RegularExpressions.Regex.Matches(result.Stdout, @"(?m)^gateloop-tiny +(?<name>[A-Z]\w*(\[\d+\])?) ")
            .Select(m => System.Text.RegularExpressions.Regex.Replace(m.Groups["name"].Value, @"\[\d+\]$", "[i]")).Distinct().ToList();
        Assert.Contains("X[i]", buffers);
        Assert.Contains("DQkv", buffers);
        Assert.All(buffers, b => Assert.True(legend.ContainsKey(b), $"the legend does not explain {b}\n{result.Stdout}"));
        Assert.Equal("residual stream at each block boundary", legend["X[i]"]);
        // Progress goes to stderr (here redirected: a plain line at least at the end), the table stays on stdout.
        Assert.Matches(@"(?m)^doctor: 3/3 sections \(100%\), elapsed \d+m\d\ds, ETA 0m00s$", result.Stderr);
    }

    [Fact]
    public void Doctor_json_lists_every_check_as_passed()
    {
        var result = Run("doctor", "--device", "ilgpu-cpu", "--model", "gateloop-tiny", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        using var doc = JsonDocument.Parse(result.Stdout.Trim());
        var root = doc.RootElement;
        Assert.True(root.GetProperty("passed").GetBoolean());
        Assert.StartsWith("ilgpu-cpu", root.GetProperty("device").GetString());
        Assert.Equal(0, root.GetProperty("ptx_findings").GetArrayLength());
        Assert.True(root.GetProperty("ptx_kernels").GetInt32() > 20);
        var results = root.GetProperty("results").EnumerateArray().ToList();
        Assert.True(results.Count > 90, $"{results.Count} results");
        Assert.All(results, r => Assert.True(r.GetProperty("passed").GetBoolean(), r.ToString()));
        Assert.Contains(results, r => r.GetProperty("section").GetString() == "gateloop-tiny" && r.GetProperty("name").GetString() == "∂token_emb.weight");
    }

    [Fact]
    public void Training_on_a_compiled_device_checks_the_model_before_the_first_step()
    {
        string Out(string name) => Path.Combine(fixture.NewDirectory("doctor-" + name), "out");
        List<string> Args(string outDir) =>
        [
            "train", "--device", "ilgpu-cpu", "--model", "gateloop-tiny", "--data", fixture.CorpusPath, "--out", outDir,
            "--steps", "2", "--batch", "2", "--grad-accum", "1", "--seq-len", "40", "--validate-every", "2", "--generate-every", "0",
        ];
        var checkedRun = Run([.. Args(Out("checked"))]);
        Assert.True(checkedRun.ExitCode == 0, checkedRun.ToString());
        Assert.Matches(@"check  the device agrees with the host backend on \d+ buffers, gradients and outputs of gateloop-tiny", checkedRun.Stdout);

        var skipped = Run([.. Args(Out("skipped")), "--no-device-check"]);
        Assert.True(skipped.ExitCode == 0, skipped.ToString());
        Assert.DoesNotContain("agrees with the host backend", skipped.Stdout);

        var host = Run([.. Args(Out("host")).Select(a => a == "ilgpu-cpu" ? "cpu" : a)]);
        Assert.True(host.ExitCode == 0, host.ToString());
        Assert.DoesNotContain("agrees with the host backend", host.Stdout);
    }
}

/// <summary>The tests that run kernels on ilgpu-cpu: after the parallel ones, with nothing else running.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class IlgpuCpuCollection
{
    public const string Name = "ilgpu-cpu";
}
