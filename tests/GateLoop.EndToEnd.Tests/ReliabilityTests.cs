using System.Security.Cryptography;
using System.Text.Json;
using Xunit.Abstractions;

namespace GateLoop.EndToEnd.Tests;

/// <summary>
/// Nothing lost, nothing mixed: the real binary killed while it saves, stopped by signals, run twice on one
/// directory, diverging, fed NaN weights, a long prompt, sizes that cannot fit, and a full disk.
/// </summary>
public sealed class ReliabilityTests(TrainedModelFixture fixture, ITestOutputHelper output) : IClassFixture<TrainedModelFixture>
{
    static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    CliResult Log(CliResult result)
    {
        output.WriteLine($"[{result.Elapsed.TotalSeconds,5:F1} s] exit {result.ExitCode}: gateloop {Short(result.CommandLine)}");
        return result;
    }

    static string Short(string commandLine) => commandLine.Length > 200 ? commandLine[..200] + "…" : commandLine;

    CliResult Run(params string[] args) => Log(Cli.Run(fixture.Root, args));

    /// <summary>A gateloop-tiny run on the CPU; <paramref name="options"/> (pairs of option and value) replace or add to its options.</summary>
    static List<string> Tiny(string data, string outDir, int steps, params string[] options)
    {
        var args = TrainedModelFixture.TrainArgs(data, outDir, steps, validateEvery: 100_000, checkpointEvery: 100_000);
        for (int i = 0; i + 1 < options.Length; i += 2)
        {
            int at = args.IndexOf(options[i]);
            if (at >= 0) args[at + 1] = options[i + 1];
            else args.AddRange([options[i], options[i + 1]]);
        }
        return args;
    }

    static void WaitFor(Func<bool> condition, RunningCli process, string what, int pollMilliseconds = 20)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (process.HasExited) throw new InvalidOperationException($"the run ended before {what}:\n{process.WaitForExit(Minute)}");
            if (clock.Elapsed > Minute) throw new TimeoutException($"no {what} after a minute");
            Thread.Sleep(pollMilliseconds);
        }
    }

    static int MetricsLines(string directory)
    {
        try
        {
            return File.ReadLines(Path.Combine(directory, "metrics.jsonl")).Count(l => l.Length > 0);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    static void AssertOneLineError(CliResult result, params string[] expected)
    {
        Assert.True(result.ExitCode != 0, $"expected failure\n{result}");
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1 && lines[0].StartsWith("gateloop: ", StringComparison.Ordinal), $"expected one line on stderr\n{result}");
        foreach (var text in expected) Assert.True(lines[0].Contains(text, StringComparison.Ordinal), $"stderr does not mention \"{text}\"\n{result}");
        Assert.DoesNotContain("unexpected error", result.Stderr);
    }

    /// <summary>
    /// The checkpoint a directory holds as the loader reads it (CheckpointDirectory's rule: while a staged config.json
    /// exists, staged files replace the directory's own), checked to be of one save: config, weights and optimizer
    /// name the same save, and the optimizer's step is the config's.
    /// </summary>
    static long AssertOneUnit(string directory)
    {
        string staging = Path.Combine(directory, ".next");
        bool staged = File.Exists(Path.Combine(staging, "config.json"));
        string PathOf(string name) => staged && File.Exists(Path.Combine(staging, name)) ? Path.Combine(staging, name) : Path.Combine(directory, name);
        using var config = JsonDocument.Parse(File.ReadAllBytes(PathOf("config.json")));
        long step = config.RootElement.GetProperty("Step").GetInt64();
        string? id = config.RootElement.TryGetProperty("Id", out var value) ? value.GetString() : null;
        var model = SafeTensorsFile.Metadata(PathOf("model.safetensors"));
        var optimizer = SafeTensorsFile.Metadata(PathOf("optimizer.safetensors"));
        Assert.True(optimizer["step"] == step.ToString(), $"config.json is of step {step}, optimizer.safetensors of step {optimizer["step"]}");
        Assert.True(id is not null && model.GetValueOrDefault("checkpoint") == id && optimizer.GetValueOrDefault("checkpoint") == id,
            $"files of different saves: config {id}, model {model.GetValueOrDefault("checkpoint")}, optimizer {optimizer.GetValueOrDefault("checkpoint")}");
        return step;
    }

    /// <summary>
    /// kill -9 at seeded random moments of a run that saves the seed config (95 MB of weights, 190 MB of moments)
    /// after every step, so most kills land inside a save: each time one complete checkpoint is left, the next run
    /// resumes from it, and eval reads it.
    /// </summary>
    [Fact]
    public void Kill_9_at_any_moment_leaves_one_complete_checkpoint()
    {
        string dir = Path.Combine(fixture.NewDirectory("kill"), "run");
        string data = Path.Combine(fixture.NewDirectory("kill-data"), "data.txt");
        File.WriteAllBytes(data, fixture.Corpus[..60_000]);
        List<string> Args(bool resume, long steps = 100_000) =>
        [
            "train", "--device", "cpu", "--model", "enwik8", "--data", data, "--out", dir, "--batch", "1", "--grad-accum", "1",
            "--seq-len", "8", "--steps", $"{steps}", "--checkpoint-every", "1", "--validate-every", "100000", "--generate-every", "0",
            .. resume ? new[] { "--resume", dir } : [],
        ];
        var random = new Random(11);
        int kills = 8, duringSave = 0;
        long lastStep = 0;
        // While the run lives, only its last completed save's step: a save may be moving files as they are read, so the
        // whole checkpoint is checked once the process is dead.
        long Saved()
        {
            try
            {
                using var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "config.json")));
                return config.RootElement.GetProperty("Step").GetInt64();
            }
            catch (Exception e) when (e is IOException or JsonException)
            {
                return 0; // not written yet, or being replaced this instant
            }
        }
        for (int k = 0; k < kills; k++)
        {
            using var run = Cli.Start(fixture.Root, Args(resume: k > 0));
            // Each run gets past a save of its own, then dies at a random moment of the saves and steps that follow.
            long before = Saved();
            WaitFor(() => Saved() > before, run, "a checkpoint of its own");
            // Every other kill waits for a save to begin (its staging directory), so that the window is probed
            // however the save's share of the time varies with the machine (polled each millisecond: on a fast disk a
            // save takes tens of them); the others come at a random moment.
            if (k % 2 == 0) WaitFor(() => Directory.Exists(Path.Combine(dir, ".next")), run, "a save", pollMilliseconds: 1);
            Thread.Sleep(random.Next(0, k % 2 == 0 ? 5 : 1500));
            run.Signal(9);
            var result = run.WaitForExit(Minute);
            Assert.True(result.ExitCode == 137, result.ToString());
            // Only a save leaves its staging directory behind.
            bool saving = Directory.Exists(Path.Combine(dir, ".next"));
            if (saving) duringSave++;
            long step = AssertOneUnit(dir);
            output.WriteLine($"kill {k + 1}: {(saving ? "during a save" : "between saves")}, checkpoint of step {step}");
            Assert.True(step >= lastStep, $"the checkpoint went back from step {lastStep} to {step}");
            lastStep = step;
        }
        Assert.True(duringSave >= kills / 2, $"only {duringSave} of {kills} kills landed in a save: the test does not probe the window");
        var eval = Log(Cli.Succeed(fixture.Root, ["eval", "--device", "cpu", "--checkpoint", dir, "--json"], Minute));
        Assert.True(JsonDocument.Parse(eval.Stdout).RootElement.GetProperty("tokens").GetInt64() > 0);
        var resumed = Log(Cli.Succeed(fixture.Root, Args(resume: true, steps: lastStep + 1), Minute));
        Assert.Contains($"done: step {lastStep + 1}", resumed.Stdout);
    }

    [Theory]
    [InlineData(15, "SIGTERM", 143)]
    [InlineData(1, "SIGHUP", 129)]
    [InlineData(2, "Ctrl+C", 130)]
    public void A_stop_signal_checkpoints_before_exiting(int signal, string name, int exitCode)
    {
        string dir = Path.Combine(fixture.NewDirectory("signal-" + signal), "run");
        using var run = Cli.Start(fixture.Root, Tiny(fixture.CorpusPath, dir, 100_000));
        WaitFor(() => MetricsLines(dir) >= 3, run, "three steps");
        if (Ignored(signal))
        {
            // Started with the signal ignored (a background job of a shell ignores SIGINT, nohup SIGHUP): the run
            // honours that, as Unix programs do, and keeps going; SIGTERM still stops it.
            run.Signal(signal);
            long before = MetricsLines(dir);
            WaitFor(() => MetricsLines(dir) > before + 2, run, "steps after the ignored signal");
            (signal, name, exitCode) = (15, "SIGTERM", 143);
        }
        run.Signal(signal);
        var result = Log(run.WaitForExit(Minute));
        Assert.True(result.ExitCode == exitCode, result.ToString());
        Assert.Contains($"stopped by {name} at step", result.Stdout);
        long step = AssertOneUnit(dir);
        Assert.Equal(MetricsLines(dir), step);
        var resumed = Run("train", "--device", "cpu", "--resume", dir, "--steps", $"{step + 2}");
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Equal(step + 2, AssertOneUnit(dir));
    }

    /// <summary>Whether this process ignores <paramref name="signal"/> (its children inherit that): SigIgn in /proc/self/status.</summary>
    static bool Ignored(int signal)
    {
        string mask = File.ReadLines("/proc/self/status").Single(l => l.StartsWith("SigIgn:", StringComparison.Ordinal))[7..].Trim();
        return (Convert.ToUInt64(mask, 16) >> (signal - 1) & 1) == 1;
    }

    [Fact]
    public void A_second_train_on_the_same_directory_refuses_naming_the_first_and_a_dead_ones_lock_is_no_lock()
    {
        string dir = Path.Combine(fixture.NewDirectory("lock"), "run");
        using (var first = Cli.Start(fixture.Root, Tiny(fixture.CorpusPath, dir, 100_000, "--checkpoint-every", "5")))
        {
            WaitFor(() => File.Exists(Path.Combine(dir, "config.json")), first, "a checkpoint");
            var second = Run([.. Tiny(fixture.CorpusPath, dir, 10)]);
            AssertOneLineError(second, $"{dir} is in use by gateloop train (process {first.Id}", "pass another --out");
            Assert.True(second.Stdout == "", $"the refusal printed before it refused\n{second}");
            first.Signal(9);
            first.WaitForExit(Minute);
        }
        long step = AssertOneUnit(dir);
        var third = Run("train", "--device", "cpu", "--resume", dir, "--steps", $"{step + 1}");
        Assert.True(third.ExitCode == 0, third.ToString());
    }

    /// <summary>
    /// Re-typing a train command on a run's directory (instead of --resume) loses nothing: train refuses at once,
    /// printing and writing nothing, naming the step and the two ways on; --overwrite starts over there.
    /// </summary>
    [Fact]
    public void Train_on_a_directory_holding_a_checkpoint_refuses_unless_told_to_resume_or_overwrite()
    {
        string dir = Path.Combine(fixture.NewDirectory("overwrite"), "run");
        Assert.True(Run([.. Tiny(fixture.CorpusPath, dir, 3)]).ExitCode == 0);
        // Every file but the lock, which names the last process that held it.
        Dictionary<string, byte[]> Files() => Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) != ".lock").Order().ToDictionary(f => f, File.ReadAllBytes);
        var files = Files();

        foreach (var again in new[] { Tiny(fixture.CorpusPath, dir, 5), [.. Tiny(fixture.CorpusPath, dir, 5), "--init", dir] })
        {
            var refused = Run([.. again]);
            AssertOneLineError(refused, $"{dir} holds the checkpoint of step 3", $"--resume {dir}", "--overwrite");
            Assert.True(refused.Stdout == "", $"the refusal printed before it refused\n{refused}");
            var now = Files();
            Assert.Equal(files.Keys, now.Keys);
            Assert.All(files, f => Assert.True(f.Value.SequenceEqual(now[f.Key]), $"{f.Key} changed"));
        }
        // Resuming into another directory that holds a checkpoint would replace that one: refused the same way.
        string other = Path.Combine(fixture.NewDirectory("overwrite-other"), "run");
        Assert.True(Run([.. Tiny(fixture.CorpusPath, other, 1)]).ExitCode == 0);
        AssertOneLineError(Run("train", "--device", "cpu", "--resume", dir, "--out", other, "--steps", "4"), $"{other} holds the checkpoint of step 1");
        AssertOneLineError(Run("train", "--device", "cpu", "--resume", dir, "--steps", "4", "--overwrite"), "--overwrite", "--resume", "pass only one");

        var restarted = Run([.. Tiny(fixture.CorpusPath, dir, 2), "--overwrite"]);
        Assert.True(restarted.ExitCode == 0, restarted.ToString());
        Assert.Equal(2, AssertOneUnit(dir));
        Assert.Equal([1L, 2L], MetricsLine.ReadAll(Path.Combine(dir, "metrics.jsonl")).Select(m => m.Step));
    }

    [Fact]
    public void A_diverging_run_stops_at_the_step_it_happens_and_keeps_the_last_good_checkpoint()
    {
        string dir = Path.Combine(fixture.NewDirectory("diverge"), "run");
        var result = Run([.. Tiny(fixture.CorpusPath, dir, 20, "--lr", "1e6", "--checkpoint-every", "1")]);
        AssertOneLineError(result, "training diverged at step", "lower --lr");
        int diverged = int.Parse(System.Text.RegularExpressions.Regex.Match(result.Stderr, @"diverged at step (\d+)").Groups[1].Value);
        // Every line in metrics.jsonl is a finite step before it; the checkpoint is the step before it.
        var metrics = MetricsLine.ReadAll(Path.Combine(dir, "metrics.jsonl"));
        Assert.All(metrics, m => Assert.True(double.IsFinite(m.TrainLoss), m.Raw));
        Assert.Equal(diverged - 1, metrics.Count);
        if (diverged > 1) Assert.Equal(diverged - 1, AssertOneUnit(dir));
    }

    static void WriteNaN(string checkpoint)
    {
        string model = Path.Combine(checkpoint, "model.safetensors");
        var bytes = File.ReadAllBytes(model);
        long header = BitConverter.ToInt64(bytes, 0);
        BitConverter.GetBytes(float.NaN).CopyTo(bytes, 8 + header + 4 * 100);
        File.WriteAllBytes(model, bytes);
    }

    [Fact]
    public void Eval_and_sample_refuse_NaN_weights_with_one_line_and_no_stray_output()
    {
        string copy = fixture.CopyCheckpoint("nan-weights");
        WriteNaN(copy);
        var eval = Run("eval", "--device", "cpu", "--checkpoint", copy, "--data", fixture.EvalPath, "--json");
        AssertOneLineError(eval, "model.safetensors", "not finite", "use an earlier checkpoint");
        Assert.Empty(eval.StdoutBytes);
        var sample = Run("sample", "--device", "cpu", "--checkpoint", copy, "--prompt", "The ", "--length", "20");
        AssertOneLineError(sample, "not finite");
        Assert.Empty(sample.StdoutBytes);
    }

    [Fact]
    public void A_long_prompt_runs_in_chunks_so_memory_does_not_grow_with_it()
    {
        var checkpoint = fixture.TrainedCheckpoint();
        long Peak(int promptBytes)
        {
            string prompt = new(System.Text.Encoding.ASCII.GetString(fixture.Corpus, 0, promptBytes).Select(c => c is '\0' or '\n' ? ' ' : c).ToArray());
            using var run = Cli.Start(fixture.Root, ["sample", "--device", "cpu", "--checkpoint", checkpoint, "--prompt", prompt, "--length", "16", "--seed", "1"]);
            long peak = 0;
            while (!run.HasExited)
            {
                peak = Math.Max(peak, run.PeakBytes());
                Thread.Sleep(10);
            }
            var result = run.WaitForExit(Minute);
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Equal(16 + 1, result.StdoutBytes.Length);
            output.WriteLine($"prompt of {promptBytes:N0} bytes: peak {peak / 1e6:F0} MB in {result.Elapsed.TotalSeconds:F1} s");
            return peak;
        }
        long small = Peak(1_000), large = Peak(100_000);
        // Before, a 100 KB prompt took about 58 KB per byte (5.8 GB); now it costs what a 1 KB prompt does, give or take.
        Assert.True(large < small + 200_000_000, $"peak {large / 1e6:F0} MB for 100 KB against {small / 1e6:F0} MB for 1 KB");
    }

    [Fact]
    public void Sizes_that_cannot_fit_are_refused_up_front_with_the_estimate()
    {
        string dir = fixture.NewDirectory("sizes");
        var batch = Run([.. Tiny(fixture.CorpusPath, Path.Combine(dir, "batch"), 5, "--batch", "1000000")]);
        AssertOneLineError(batch, "1,000,000 × 64 tokens", "GiB of memory", "use a smaller batch or sequence length");
        Assert.True(batch.Elapsed < TimeSpan.FromSeconds(30), $"refused only after {batch.Elapsed.TotalSeconds:F0} s");
        var prime = Run([.. Tiny(fixture.CorpusPath, Path.Combine(dir, "prime"), 5, "--prime-length", "100000000", "--generate-every", "1")]);
        AssertOneLineError(prime, "--prime-length 100,000,000 is longer than the valid split");
    }

    [Fact]
    public void One_step_with_validation_every_step_writes_a_checkpoint()
    {
        string dir = Path.Combine(fixture.NewDirectory("one-step"), "run");
        var result = Run([.. TrainedModelFixture.TrainArgs(fixture.CorpusPath, dir, 1, validateEvery: 1, checkpointEvery: 1)]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(1, AssertOneUnit(dir));
        Assert.True(File.Exists(Path.Combine(dir, "loss.png")));
    }

    [Fact]
    public void Resuming_to_a_step_already_reached_trains_nothing_and_changes_nothing()
    {
        string copy = fixture.CopyCheckpoint("resume-reached");
        Dictionary<string, string> Hashes() => Directory.GetFiles(copy).ToDictionary(f => Path.GetFileName(f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));
        var before = Hashes();
        var result = Run("train", "--device", "cpu", "--resume", copy, "--steps", "5");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"nothing to train: the checkpoint in {copy} is at step {TrainedModelFixture.Steps}", result.Stdout);
        Assert.DoesNotContain("done: step", result.Stdout);
        Assert.Equal(before, Hashes());
    }

    /// <summary>
    /// The disk fills up while the second checkpoint is written (a 3 MB tmpfs in a mount namespace: the first of
    /// gateloop-tiny's 1.9 MB checkpoints fits, a second beside it does not): one line, the first stays whole.
    /// </summary>
    [Fact]
    public void A_full_disk_while_saving_leaves_the_previous_checkpoint_whole()
    {
        if (!File.Exists("/usr/bin/unshare"))
        {
            output.WriteLine("no unshare here: the mount namespace this test needs cannot be made");
            return;
        }
        string mount = fixture.NewDirectory("full-disk"), dir = Path.Combine(mount, "run");
        var train = Tiny(fixture.CorpusPath, dir, 20, "--checkpoint-every", "10");
        string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        string script = $"mount -t tmpfs -o size=3m tmpfs {Quote(mount)} || exit 99; " +
            $"{Quote(host)} {Quote(Cli.DllPath)} {string.Join(" ", train.Select(Quote))}; echo \"train exit $?\"; " +
            $"cat {Quote(Path.Combine(dir, "config.json"))} | grep '\"Step\"'; ls -a {Quote(dir)}; " +
            $"{Quote(host)} {Quote(Cli.DllPath)} eval --device cpu --checkpoint {Quote(dir)} --data {Quote(fixture.EvalPath)} --json; echo \"eval exit $?\"";
        var info = new System.Diagnostics.ProcessStartInfo("/usr/bin/unshare", ["-rm", "sh", "-c", script])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = fixture.Root,
        };
        using var process = System.Diagnostics.Process.Start(info)!;
        string stdout = process.StandardOutput.ReadToEnd(), stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        output.WriteLine(stdout + stderr);
        if (process.ExitCode == 99 || stderr.Contains("unshare: "))
        {
            output.WriteLine("user namespaces are not available here: the 3 MB disk cannot be made");
            return;
        }
        Assert.Contains("train exit 2", stdout);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var line = Assert.Single(lines, l => l.StartsWith("gateloop: ", StringComparison.Ordinal));
        Assert.Contains("cannot write the checkpoint of step 20", line);
        Assert.Contains("the checkpoint there before is intact", line);
        Assert.DoesNotContain("unexpected error", stderr);
        Assert.Contains("\"Step\": 10,", stdout);
        Assert.DoesNotContain(".next", stdout);
        Assert.Contains("eval exit 0", stdout);
    }
}
