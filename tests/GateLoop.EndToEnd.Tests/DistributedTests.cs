using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace GateLoop.EndToEnd.Tests;

/// <summary>The launchers the distributed tests run <c>gateloop</c> under, found on PATH.</summary>
public static class Launchers
{
    /// <summary>Open MPI's <c>mpirun</c>, or null when Open MPI is not installed.</summary>
    public static string? OpenMpi { get; } = Find(["mpirun.openmpi", "mpirun"], "Open MPI");

    /// <summary>MPICH's Hydra <c>mpiexec</c>, or null when MPICH is not installed.</summary>
    public static string? Mpich { get; } = Find(["mpiexec.mpich", "mpiexec.hydra"], "HYDRA");

    static string? Find(string[] names, string banner)
    {
        foreach (var name in names)
            foreach (var directory in (System.Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            {
                string path = Path.Combine(directory, name);
                if (!File.Exists(path)) continue;
                var version = Cli.Exec(path, Path.GetTempPath(), ["--version"], TimeSpan.FromSeconds(30));
                if (version.Stdout.Contains(banner, StringComparison.OrdinalIgnoreCase)) return path;
            }
        return null;
    }

    /// <summary>Open MPI refuses to start as root unless told twice.</summary>
    public static readonly IReadOnlyDictionary<string, string> RootAllowed = new Dictionary<string, string>
    {
        ["OMPI_ALLOW_RUN_AS_ROOT"] = "1", ["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1",
    };
}

/// <summary>A test that needs Open MPI; skipped, saying so, where it is not installed.</summary>
public sealed class OpenMpiFactAttribute : FactAttribute
{
    public OpenMpiFactAttribute()
    {
        if (Launchers.OpenMpi is null) Skip = "Open MPI is not installed (no mpirun of Open MPI on PATH): apt-get install openmpi-bin, as .ci/run does";
    }
}

/// <summary>A test that needs MPICH; skipped, saying so, where it is not installed.</summary>
public sealed class MpichFactAttribute : FactAttribute
{
    public MpichFactAttribute()
    {
        if (Launchers.Mpich is null || Launchers.OpenMpi is null)
            Skip = "MPICH and Open MPI are not both installed (mpiexec.mpich, mpirun): apt-get install mpich openmpi-bin, as .ci/run does";
    }
}

/// <summary>The corpus and the runs several distributed tests compare with, each made once.</summary>
public sealed class DistributedFixture : IDisposable
{
    public const int Steps = 6, Batch = 4;
    public const double LearningRate = 3e-3;

    public DistributedFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), $"gateloop-mpi-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(Root);
        CorpusPath = Path.Combine(Root, "corpus.txt");
        File.WriteAllBytes(CorpusPath, TestCorpus.Make(0, TestCorpus.TrainingLength));
    }

    public string Root { get; }
    public string CorpusPath { get; }

    readonly Dictionary<string, CliResult> runs = [];

    /// <summary>Runs once, by name, and returns what it printed (in <see cref="Root"/>/<paramref name="name"/>).</summary>
    public CliResult Once(string name, Func<string, CliResult> run)
    {
        lock (runs)
        {
            if (!runs.TryGetValue(name, out var result)) runs[name] = result = run(Path.Combine(Root, name));
            return result;
        }
    }

    /// <summary>The options of every run: gateloop-tiny on the CPU, validated every 3 steps; <paramref name="more"/> replace or add.</summary>
    public List<string> Train(string outDir, params string[] more)
    {
        var args = new List<string>
        {
            "train", "--device", "cpu", "--model", "gateloop-tiny", "--data", CorpusPath, "--out", outDir, "--steps", $"{Steps}",
            "--batch", $"{Batch}", "--grad-accum", "1", "--seq-len", "64", "--lr", LearningRate.ToString(CultureInfo.InvariantCulture),
            "--validate-every", "3", "--generate-every", "0", "--checkpoint-every", "3",
        };
        for (int i = 0; i + 1 < more.Length; i += 2)
        {
            int at = args.IndexOf(more[i]);
            if (at >= 0) args[at + 1] = more[i + 1];
            else args.AddRange([more[i], more[i + 1]]);
        }
        return args;
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); }
        catch (IOException) { }
    }
}

/// <summary>
/// <c>mpirun -np 2 gateloop train</c> trains the model one process trains with the global batch; only rank 0 writes;
/// it resumes exactly on the same ranks and with the global batch on others; ranks started differently are refused in
/// one line; a killed rank ends the job with a message; SIGTERM checkpoints as it does for one process.
/// </summary>
public sealed class DistributedTests(DistributedFixture fixture, ITestOutputHelper output) : IClassFixture<DistributedFixture>
{
    static readonly TimeSpan Limit = TimeSpan.FromMinutes(3);

    // Each Adam step moves a weight by at most about the learning rate, and summing the gradients in another order
    // changes them by float rounding only, which the step's normalization m/√v passes on relatively; the largest weight
    // difference after 6 steps was 1.6e-4 and 3.4e-4 of lr × steps on two corpora (this one the second). Two thousandths
    // of the largest possible movement leave room for that and for other CPUs' GEMM kernels, and are still far below what
    // a wrong share of the batch or a bucket left unreduced moves (checked: one process with the per-rank batch differs
    // by more than 20 times as much).
    const double WeightTolerance = 2e-3 * DistributedFixture.LearningRate * DistributedFixture.Steps;

    CliResult Log(CliResult result)
    {
        output.WriteLine($"[{result.Elapsed.TotalSeconds,5:F1} s] exit {result.ExitCode}: {result.CommandLine}");
        return result;
    }

    /// <summary>
    /// <c>mpirun</c> with one <c>gateloop</c> per element of <paramref name="ranks"/> (its arguments), as an MPMD job when
    /// they differ.
    /// </summary>
    CliResult Launch(string launcher, params List<string>[] ranks) =>
        Log(Cli.Exec(launcher, fixture.Root, LauncherArgs(launcher, ranks), Limit, Launchers.RootAllowed));

    static List<string> LauncherArgs(string launcher, List<string>[] ranks)
    {
        var args = new List<string>();
        // Two cores here: a third rank needs Open MPI's leave to share one.
        if (launcher == Launchers.OpenMpi && ranks.Length > 2) args.Add("--oversubscribe");
        foreach (var group in ranks.GroupBy(r => string.Join("\0", r)))
        {
            if (args.Count > 0 && args[^1] != "--oversubscribe") args.Add(":");
            args.AddRange(["-np", $"{group.Count()}", Cli.Host, Cli.DllPath, .. group.First()]);
        }
        return args;
    }

    static List<string>[] Same(int n, List<string> args) => [.. Enumerable.Repeat(args, n)];

    // The reference runs: one process with the global batch, and two ranks with half of it each.
    CliResult Single() => fixture.Once("single", dir => Log(Cli.Run(fixture.Root, fixture.Train(dir, "--batch", $"{2 * DistributedFixture.Batch}"), Limit)));

    CliResult TwoRanks() => fixture.Once("two", dir => Launch(Launchers.OpenMpi!, fixture.Train(dir), fixture.Train(dir + "-rank1")));

    string Dir(string name) => Path.Combine(fixture.Root, name);

    static float[] Weights(string dir) =>
        [.. SafeTensorsFile.Read(Path.Combine(dir, "model.safetensors")).Tensors.SelectMany(t => t.Data)];

    static double MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => (double)Math.Abs(x - y)).Max();

    static List<JsonElement> Metrics(string dir) =>
        [.. File.ReadLines(Path.Combine(dir, "metrics.jsonl")).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement)];

    static double LastGradientNorm(CliResult run) =>
        double.Parse(Regex.Matches(run.Stdout, @"grad-norm ([0-9.]+)")[^1].Groups[1].Value, CultureInfo.InvariantCulture);

    static void Succeeded(CliResult run) => Assert.True(run.ExitCode == 0, $"expected success\n{run}");

    [OpenMpiFact]
    public void Two_ranks_train_the_model_one_process_trains_with_their_global_batch()
    {
        var single = Single();
        var two = TwoRanks();
        Succeeded(single);
        Succeeded(two);
        Assert.Contains("world  2 ranks, Open MPI", two.Stdout);

        // Only rank 0 wrote: rank 1 was told another --out, and nothing is there.
        Assert.False(Directory.Exists(Dir("two-rank1")), "rank 1 created its --out directory");
        foreach (var file in new[] { "model.safetensors", "optimizer.safetensors", "config.json", "metrics.jsonl", "loss.png" })
            Assert.True(File.Exists(Path.Combine(Dir("two"), file)), $"rank 0 wrote no {file}");
        Assert.Equal(2, JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir("two"), "config.json"))).RootElement.GetProperty("WorldSize").GetInt32());

        double difference = MaxDifference(Weights(Dir("single")), Weights(Dir("two")));
        output.WriteLine($"max |weight difference| after {DistributedFixture.Steps} steps: {difference:G3} (tolerance {WeightTolerance:G3})");
        Assert.True(difference <= WeightTolerance, $"2 ranks × batch 4 and 1 process × batch 8 differ by {difference:G3} > {WeightTolerance:G3}");

        // The loss of the whole job, step by step, and the validation loss shared out over the ranks.
        var (a, b) = (Metrics(Dir("single")), Metrics(Dir("two")));
        Assert.Equal(a.Count, b.Count);
        double worst = 0;
        for (int i = 0; i < a.Count; i++)
            foreach (var key in new[] { "train_loss", "valid_loss" })
            {
                if (a[i].GetProperty(key).ValueKind == JsonValueKind.Null) continue;
                double x = a[i].GetProperty(key).GetDouble(), y = b[i].GetProperty(key).GetDouble();
                worst = Math.Max(worst, Math.Abs(x - y) / x);
                Assert.True(Math.Abs(x - y) <= 1e-5 * x, $"step {i + 1} {key}: {x} (one process) against {y} (two ranks)");
            }
        // The gradients are the global batch's mean (summed, then scaled), which Adam's step alone would not show.
        double normA = LastGradientNorm(single), normB = LastGradientNorm(two);
        output.WriteLine($"largest relative loss difference {worst:G3}; last gradient norms {normA} and {normB}");
        Assert.True(Math.Abs(normA - normB) <= 2e-3 * normA, $"last gradient norm {normA} (one process) against {normB} (two ranks)");

        // The tolerance can fail: one process with only the per-rank batch trains another model.
        var half = fixture.Once("half", dir => Log(Cli.Run(fixture.Root, fixture.Train(dir), Limit)));
        Succeeded(half);
        double other = MaxDifference(Weights(Dir("half")), Weights(Dir("two")));
        output.WriteLine($"max |weight difference| from one process with the per-rank batch: {other:G3}");
        Assert.True(other > 20 * WeightTolerance, $"the tolerance does not tell a per-rank batch from the global one ({other:G3})");
    }

    [OpenMpiFact]
    public void Reducing_during_the_backward_or_after_it_gives_the_same_weights_bit_for_bit()
    {
        Succeeded(TwoRanks());
        var after = Launch(Launchers.OpenMpi!, Same(2, fixture.Train(Dir("after"), "--bucket-mb", "0")));
        Succeeded(after);
        Assert.Equal(Weights(Dir("two")), Weights(Dir("after")));
    }

    [OpenMpiFact]
    public void A_distributed_run_resumes_exactly_on_its_ranks_and_with_its_global_batch_on_others()
    {
        Succeeded(TwoRanks());
        var first = Launch(Launchers.OpenMpi!, Same(2, fixture.Train(Dir("resumed"), "--steps", "3")));
        Succeeded(first);
        var copy = Dir("resumed-copy");
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.GetFiles(Dir("resumed"))) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));

        // The same two ranks continue exactly.
        Succeeded(Launch(Launchers.OpenMpi!, Same(2, ["train", "--resume", Dir("resumed"), "--steps", $"{DistributedFixture.Steps}"])));
        Assert.Equal(Weights(Dir("two")), Weights(Dir("resumed")));

        // One process takes the whole global batch of 8 and trains on as the two ranks did, up to the order of the sums.
        var alone = Log(Cli.Run(fixture.Root, ["train", "--resume", copy, "--steps", $"{DistributedFixture.Steps}"], Limit));
        Succeeded(alone);
        Assert.Contains("resuming a run of 2 rank(s) on 1: --batch 8 on each keeps its global batch of 8 sequences", alone.Stdout);
        Assert.True(MaxDifference(Weights(Dir("two")), Weights(copy)) <= WeightTolerance);

        // Three ranks cannot share 8 sequences: one line, nothing changed.
        var before = File.ReadAllBytes(Path.Combine(copy, "model.safetensors"));
        var three = Launch(Launchers.OpenMpi!, Same(3, ["train", "--resume", copy, "--steps", "9"]));
        Assert.NotEqual(0, three.ExitCode);
        Assert.Equal([$"gateloop: checkpoint '{copy}' was trained with a global batch of 8 sequences (1 × --batch 8), which 3 ranks cannot share evenly; " +
            "resume on a number of ranks that divides 8"], three.Stderr.Split('\n').Where(l => l.StartsWith("gateloop:", StringComparison.Ordinal)));
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(copy, "model.safetensors")));
    }

    [OpenMpiFact]
    public void Ranks_started_differently_are_refused_in_one_line_naming_the_difference()
    {
        var run = Launch(Launchers.OpenMpi!, fixture.Train(Dir("mismatch")), fixture.Train(Dir("mismatch-1"), "--lr", "0.001"));
        Assert.NotEqual(0, run.ExitCode);
        var lines = run.Stderr.Split('\n').Where(l => l.StartsWith("gateloop:", StringComparison.Ordinal)).ToList();
        Assert.True(lines.Count == 1, $"expected one line from gateloop\n{run}");
        Assert.Matches(@"^gateloop: the ranks were not started alike: rank 1 has --lr '0\.001', rank 0 '0\.003' \(configuration digest [0-9a-f]{12} against rank 0's [0-9a-f]{12}\); start every rank with the same command, model and data$", lines[0].TrimEnd('\r'));
        Assert.False(File.Exists(Path.Combine(Dir("mismatch"), "metrics.jsonl")), "the refused run trained");
    }

    // The rank processes of a launcher: its children that are gateloop, with the rank their environment gives them.
    static Dictionary<int, int> Ranks(int launcher)
    {
        var ranks = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                if (int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture) != launcher) continue;
                var environment = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0');
                if (environment.FirstOrDefault(v => v.StartsWith("OMPI_COMM_WORLD_RANK=", StringComparison.Ordinal)) is { } rank)
                    ranks[int.Parse(rank.Split('=')[1], CultureInfo.InvariantCulture)] = pid;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        }
        return ranks;
    }

    // A long two-rank run, started, once rank 0 has written its first checkpoint.
    RunningCli StartLong(string name)
    {
        var job = Cli.StartExec(Launchers.OpenMpi!, fixture.Root,
            LauncherArgs(Launchers.OpenMpi!, Same(2, fixture.Train(Dir(name), "--steps", "100000", "--checkpoint-every", "2"))), Launchers.RootAllowed);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!File.Exists(Path.Combine(Dir(name), "config.json")) || Ranks(job.Id).Count < 2)
        {
            if (job.HasExited) throw new InvalidOperationException($"the job ended before its first checkpoint\n{job.WaitForExit(Limit)}");
            if (clock.Elapsed > Limit) throw new TimeoutException("no checkpoint after 3 minutes");
            Thread.Sleep(50);
        }
        return job;
    }

    [OpenMpiFact]
    public void A_rank_killed_ends_the_job_with_a_clear_message_within_seconds()
    {
        using var job = StartLong("killed");
        int victim = Ranks(job.Id)[1];
        Assert.Equal(0, kill(victim, 9));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var run = Log(job.WaitForExit(TimeSpan.FromSeconds(30)));
        output.WriteLine($"the job ended {clock.Elapsed.TotalSeconds:F1} s after kill -9 of rank 1\n{run.Stderr}");
        Assert.NotEqual(0, run.ExitCode);
        Assert.Matches($@"gateloop: rank 1 \(process {victim} on [^)]+\) has ended, so an? [a-z-]+ it was part of cannot finish; rank 0 stops during step \d+: the checkpoint of step \d+ in .* is intact, resume from it", run.Stderr);
    }

    [OpenMpiFact]
    public void SIGTERM_to_every_rank_checkpoints_and_exits_as_one_process_does()
    {
        using var job = StartLong("terminated");
        foreach (var pid in Ranks(job.Id).Values) Assert.Equal(0, kill(pid, 15));
        var run = Log(job.WaitForExit(Limit));
        Assert.Equal(143, run.ExitCode);
        var stopped = Regex.Match(run.Stdout, @"stopped by SIGTERM at step (\d+), checkpoint written; resume with: gateloop train --resume (\S+)");
        Assert.True(stopped.Success, $"no closing line\n{run}");
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir("terminated"), "config.json"))).RootElement;
        Assert.Equal(long.Parse(stopped.Groups[1].Value, CultureInfo.InvariantCulture), config.GetProperty("Step").GetInt64());
        Assert.Equal(Metrics(Dir("terminated")).Count, config.GetProperty("Step").GetInt64());
    }

    [MpichFact]
    public void Mpich_trains_the_same_model_as_Open_MPI()
    {
        Succeeded(TwoRanks());
        var run = Launch(Launchers.Mpich!, Same(2, fixture.Train(Dir("mpich"))));
        Succeeded(run);
        Assert.Contains("world  2 ranks, MPICH", run.Stdout);
        Assert.Equal(Weights(Dir("two")), Weights(Dir("mpich")));
    }

    [Fact]
    public void A_rank_without_its_MPI_library_says_what_to_install()
    {
        var environment = new Dictionary<string, string> { ["OMPI_COMM_WORLD_SIZE"] = "2", ["OMPI_COMM_WORLD_RANK"] = "0", ["GATELOOP_MPI_LIBRARY"] = "libmpi-missing.so.0" };
        var run = Log(Cli.Exec(Cli.Host, fixture.Root, [Cli.DllPath, .. fixture.Train(Dir("nompi"))], Limit, environment));
        Assert.Equal(2, run.ExitCode);
        Assert.Equal("gateloop: started as rank 0 of 2 (OMPI_COMM_WORLD_SIZE), but no MPI library could be loaded (libmpi-missing.so.0 not found); " +
            "install the MPI the launcher belongs to (Debian: apt-get install openmpi-bin, or mpich), or name its library in GATELOOP_MPI_LIBRARY\n", run.Stderr);
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int sig);
}
