using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace GateLoop.EndToEnd.Tests;

/// <summary>
/// The <c>gateloop</c> command line end to end: the real binary on a small corpus, gateloop-tiny on the CPU.
/// One checkpoint is trained once per class (<see cref="TrainedModelFixture"/>) and shared.
/// </summary>
public sealed class GateLoopCliTests(TrainedModelFixture fixture, ITestOutputHelper output) : IClassFixture<TrainedModelFixture>
{
    static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    CliResult Run(params string[] args) => Log(Cli.Run(fixture.Root, args));
    CliResult Succeed(params string[] args) => Log(Cli.Succeed(fixture.Root, args));
    CliResult Succeed(IEnumerable<string> args, string? workingDirectory = null) =>
        Log(Cli.Succeed(workingDirectory ?? fixture.Root, args, TimeSpan.FromMinutes(5)));

    CliResult Log(CliResult result)
    {
        output.WriteLine($"[{result.Elapsed.TotalSeconds,5:F1} s] exit {result.ExitCode}: gateloop {result.CommandLine}");
        return result;
    }

    // ---------------------------------------------------------------- train

    [Fact]
    public void Training_learns_and_writes_a_complete_run_directory()
    {
        var dir = fixture.TrainedCheckpoint();
        output.WriteLine($"shared training run: {fixture.Training.Elapsed.TotalSeconds:F1} s");
        Assert.Contains($"done: step {TrainedModelFixture.Steps}", fixture.Training.Stdout);

        foreach (var file in new[] { "model.safetensors", "optimizer.safetensors", "config.json", "metrics.jsonl", "loss.png" })
            Assert.True(File.Exists(Path.Combine(dir, file)), $"{file} missing from {dir}: {string.Join(", ", Directory.GetFiles(dir).Select(Path.GetFileName))}");
        Assert.Equal(PngSignature, File.ReadAllBytes(Path.Combine(dir, "loss.png")).Take(8).ToArray());

        using (var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "config.json"))))
        {
            Assert.Equal("gateloop-tiny", config.RootElement.GetProperty("Model").GetString());
            Assert.Equal(TrainedModelFixture.Steps, config.RootElement.GetProperty("Step").GetInt64());
        }

        var metrics = MetricsLine.ReadAll(Path.Combine(dir, "metrics.jsonl"));
        Assert.Equal(Enumerable.Range(1, TrainedModelFixture.Steps).Select(i => (long)i), metrics.Select(m => m.Step));
        Assert.All(metrics, m => Assert.True(double.IsFinite(m.TrainLoss) && m.TrainLoss > 0, m.Raw));
        // Train and valid bpc apart, each its loss over ln 2; valid ones null between validations, like valid_loss.
        foreach (var m in metrics)
        {
            Assert.Equal(m.TrainLoss / Math.Log(2), m.TrainBpc, 12);
            Assert.Equal(m.ValidLoss is null, m.ValidBpc is null);
            if (m.ValidLoss is double valid) Assert.Equal(valid / Math.Log(2), m.ValidBpc!.Value, 12);
        }
        Assert.Equal([20L, 40L], metrics.Where(m => m.ValidLoss is not null).Select(m => m.Step));

        double validLoss = metrics.Last(m => m.ValidLoss is not null).ValidLoss!.Value;
        double validBpc = validLoss / Math.Log(2);
        double unigram = TestCorpus.UnigramEntropyBits(TestCorpus.Split(fixture.Corpus).Valid);
        output.WriteLine($"final valid loss {validLoss:F4} nats = {validBpc:F3} bpc; unigram entropy of the valid split {unigram:F3} bits");
        Assert.True(validBpc < 0.85 * unigram,
            $"after {TrainedModelFixture.Steps} steps the valid bpc {validBpc:F3} is not below 0.85 × the unigram entropy {unigram:F3}\n{fixture.Training}");
        Assert.True(metrics[^1].TrainLoss < metrics[0].TrainLoss * 0.75, $"train loss {metrics[0].TrainLoss:F3} → {metrics[^1].TrainLoss:F3}");
    }

    [Fact]
    public void Resuming_continues_exactly_as_an_uninterrupted_run()
    {
        const int steps = 8;
        var root = fixture.NewDirectory("resume");
        string a = Path.Combine(root, "A"), b = Path.Combine(root, "B");
        // Validation every 4 steps: the half-way stop is a validation step of the straight run too (see the skipped
        // test below for a stop between validations).
        Succeed(TrainedModelFixture.TrainArgs(fixture.CorpusPath, a, steps, validateEvery: 4, checkpointEvery: 25));
        Succeed(TrainedModelFixture.TrainArgs(fixture.CorpusPath, b, steps / 2, validateEvery: 4, checkpointEvery: 25));
        Assert.Equal(steps / 2, MetricsLine.ReadAll(Path.Combine(b, "metrics.jsonl")).Count);
        var resumed = Succeed(["train", "--device", "cpu", "--resume", b, "--steps", $"{steps}"]);
        Assert.Contains("resuming", resumed.Stdout);
        Assert.Contains($"done: step {steps}", resumed.Stdout);

        var straight = MetricsLine.ReadAll(Path.Combine(a, "metrics.jsonl"));
        var continued = MetricsLine.ReadAll(Path.Combine(b, "metrics.jsonl"));
        Assert.Equal(steps, straight.Count);
        Assert.Equal(straight.Count, continued.Count);
        for (int i = 0; i < straight.Count; i++)
        {
            var (x, y) = (straight[i], continued[i]);
            Assert.True(x.Step == y.Step && x.TrainLoss == y.TrainLoss && x.ValidLoss == y.ValidLoss,
                $"line {i + 1} differs:\n straight: {x.Raw}\n resumed:  {y.Raw}");
        }
        // elapsed_s counts the whole run's training time: it goes on from where the first part stopped.
        Assert.True(continued.Zip(continued.Skip(1)).All(p => p.First.ElapsedSeconds < p.Second.ElapsedSeconds),
            $"elapsed_s does not grow across the resume: {string.Join(", ", continued.Select(m => m.ElapsedSeconds))}");
        Assert.True(File.ReadAllBytes(Path.Combine(a, "model.safetensors")).SequenceEqual(File.ReadAllBytes(Path.Combine(b, "model.safetensors"))),
            "model.safetensors of the straight and the resumed run differ");
        Assert.True(File.ReadAllBytes(Path.Combine(a, "optimizer.safetensors")).SequenceEqual(File.ReadAllBytes(Path.Combine(b, "optimizer.safetensors"))),
            "optimizer.safetensors of the straight and the resumed run differ");
    }

    /// <summary>A run stopped between validations (its last step still validates) resumes onto the same batches.</summary>
    [Fact]
    public void Resuming_after_a_stop_between_validations_continues_exactly()
    {
        const int steps = 8;
        var root = fixture.NewDirectory("resume-between-validations");
        string a = Path.Combine(root, "A"), b = Path.Combine(root, "B");
        Succeed(TrainedModelFixture.TrainArgs(fixture.CorpusPath, a, steps, validateEvery: 25, checkpointEvery: 25));
        Succeed(TrainedModelFixture.TrainArgs(fixture.CorpusPath, b, steps / 2, validateEvery: 25, checkpointEvery: 25));
        Succeed(["train", "--device", "cpu", "--resume", b, "--steps", $"{steps}"]);
        var straight = MetricsLine.ReadAll(Path.Combine(a, "metrics.jsonl"));
        var continued = MetricsLine.ReadAll(Path.Combine(b, "metrics.jsonl"));
        Assert.Equal(straight.Select(m => (m.Step, m.TrainLoss)), continued.Select(m => (m.Step, m.TrainLoss)));
        Assert.True(File.ReadAllBytes(Path.Combine(a, "model.safetensors")).SequenceEqual(File.ReadAllBytes(Path.Combine(b, "model.safetensors"))));
    }

    /// <summary>config.json records the data file's full path, so a resume from any directory trains on the same data.</summary>
    [Fact]
    public void Resuming_from_another_working_directory_uses_the_same_data()
    {
        var root = fixture.NewDirectory("resume-elsewhere");
        string b = Path.Combine(root, "B"), elsewhere = fixture.NewDirectory("resume-elsewhere/cwd");
        Succeed(TrainedModelFixture.TrainArgs(fixture.CorpusPath, b, 2, validateEvery: 25, checkpointEvery: 25));
        var resumed = Succeed(["train", "--device", "cpu", "--resume", b, "--steps", "3"], elsewhere);
        var dataLine = resumed.Stdout.Split('\n').First(l => l.StartsWith("data"));
        Assert.Contains("180,873 / 10,048 / 10,049 bytes", dataLine);
    }

    /// <summary>A zip of several files: train says which it reads, --entry picks another, and the checkpoint remembers it.</summary>
    [Fact]
    public void A_zip_of_several_files_names_its_entry_and_resume_and_eval_keep_it()
    {
        var root = fixture.NewDirectory("zip-entries");
        var zip = Path.Combine(root, "two.zip");
        File.WriteAllBytes(zip, Zip(CompressionLevel.Fastest, ("first.txt", fixture.Corpus), ("second.txt", fixture.EvalBytes)));
        static string DataLine(CliResult run) => run.Stdout.Split('\n').First(l => l.StartsWith("data")).TrimEnd('\r');
        string first = Path.Combine(root, "first"), second = Path.Combine(root, "second");
        long firstTokens = WindowTokens(10_048, TrainedModelFixture.SeqLen), secondTokens = WindowTokens(2_048, TrainedModelFixture.SeqLen);

        var byDefault = Succeed(TrainedModelFixture.TrainArgs(zip, first, 2, validateEvery: 25, checkpointEvery: 25));
        Assert.Equal("data   two.zip (entry first.txt of its 2 files; --entry picks another): 180,873 / 10,048 / 10,049 bytes", DataLine(byDefault));
        var chosen = Succeed([.. TrainedModelFixture.TrainArgs(zip, second, 2, validateEvery: 25, checkpointEvery: 25), "--entry", "second.txt"]);
        Assert.Equal("data   two.zip (entry second.txt of its 2 files; --entry picks another): 36,873 / 2,048 / 2,049 bytes", DataLine(chosen));

        // Without --data, resume and eval read the checkpoint's zip and entry again.
        Assert.Equal(DataLine(chosen), DataLine(Succeed(["train", "--device", "cpu", "--resume", second, "--steps", "3"])));
        Assert.Equal(secondTokens, EvalTokens(second));
        Assert.Equal(firstTokens, EvalTokens(first));

        // A checkpoint written before entries were recorded loads, and reads the default entry as it did.
        var config = Path.Combine(first, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(config))!;
        Assert.True(json["Options"]!.AsObject().Remove("DataEntry"));
        File.WriteAllText(config, json.ToJsonString());
        Assert.Equal(firstTokens, EvalTokens(first));

        long EvalTokens(string checkpoint)
        {
            using var doc = JsonDocument.Parse(Succeed("eval", "--device", "cpu", "--checkpoint", checkpoint, "--json").Stdout);
            return doc.RootElement.GetProperty("tokens").GetInt64();
        }
    }

    static byte[] Zip(CompressionLevel level, params (string Name, byte[] Bytes)[] files)
    {
        var packed = new MemoryStream();
        using (var zip = new ZipArchive(packed, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, bytes) in files)
            {
                using var entry = zip.CreateEntry(name, level).Open();
                entry.Write(bytes);
            }
        return packed.ToArray();
    }

    /// <summary>
    /// --precision bf16 trains the shared run's model, data and steps to a loss close to the fp32 run's but not the same
    /// (every GEMM rounded its inputs); the checkpoint records it and holds fp32 master weights, a resume without the
    /// option goes on in bf16 exactly as the run straight through, and eval takes the option too.
    /// </summary>
    [Fact]
    public void Training_with_bf16_products_learns_as_fp32_does_and_resumes_in_bf16()
    {
        var fp32 = MetricsLine.ReadAll(Path.Combine(fixture.TrainedCheckpoint(), "metrics.jsonl"));
        var root = fixture.NewDirectory("bf16");
        string straight = Path.Combine(root, "straight"), resumed = Path.Combine(root, "resumed");
        const int steps = TrainedModelFixture.Steps;
        var run = Succeed([.. TrainedModelFixture.TrainArgs(fixture.CorpusPath, straight, steps, validateEvery: 20, checkpointEvery: 20), "--precision", "bf16"]);
        Assert.Contains("bf16 inputs with fp32 sums", run.Stdout);
        var bf16 = MetricsLine.ReadAll(Path.Combine(straight, "metrics.jsonl"));
        Assert.Equal(fp32.Select(m => m.Step), bf16.Select(m => m.Step));
        // The same first batch and weights: rounding moves the loss by little.
        Assert.True(Math.Abs(fp32[0].TrainLoss - bf16[0].TrainLoss) < 0.01, $"first loss: fp32 {fp32[0].TrainLoss:F4}, bf16 {bf16[0].TrainLoss:F4}");
        Assert.Contains(fp32.Zip(bf16), p => p.First.TrainLoss != p.Second.TrainLoss);
        double fp32Bpc = fp32[^1].ValidBpc!.Value, bf16Bpc = bf16[^1].ValidBpc!.Value;
        output.WriteLine($"valid bpc after {steps} steps: fp32 {fp32Bpc:F4}, bf16 {bf16Bpc:F4}");
        Assert.True(Math.Abs(bf16Bpc - fp32Bpc) <= 0.05, $"valid bpc after {steps} steps: bf16 {bf16Bpc:F4}, fp32 {fp32Bpc:F4}");

        using (var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(straight, "config.json"))))
            Assert.Equal("Bf16", config.RootElement.GetProperty("Options").GetProperty("Precision").GetString());
        // fp32 masters (the reader asserts F32): Adam's updates leave weights that bf16 cannot hold.
        var (weights, _) = SafeTensorsFile.Read(Path.Combine(straight, "model.safetensors"));
        Assert.Contains(weights.SelectMany(t => t.Data), w => (BitConverter.SingleToUInt32Bits(w) & 0xFFFF) != 0);

        Succeed([.. TrainedModelFixture.TrainArgs(fixture.CorpusPath, resumed, steps / 2, validateEvery: 20, checkpointEvery: 20), "--precision", "bf16"]);
        Succeed(["train", "--device", "cpu", "--resume", resumed, "--steps", $"{steps}"]);
        var continued = MetricsLine.ReadAll(Path.Combine(resumed, "metrics.jsonl"));
        Assert.Equal(bf16.Select(m => (m.Step, m.TrainLoss, m.ValidLoss)), continued.Select(m => (m.Step, m.TrainLoss, m.ValidLoss)));
        Assert.True(File.ReadAllBytes(Path.Combine(straight, "model.safetensors")).SequenceEqual(File.ReadAllBytes(Path.Combine(resumed, "model.safetensors"))),
            "model.safetensors of the straight and the resumed bf16 run differ");

        var fp32Products = EvalJson(straight);
        var bf16Products = EvalJson(straight, "--precision", "bf16");
        Assert.NotEqual(fp32Products.Loss, bf16Products.Loss);
        Assert.True(Math.Abs(bf16Products.Bpc - fp32Products.Bpc) <= 0.05, $"eval of the bf16 run: {bf16Products.Bpc:F4} with bf16 products, {fp32Products.Bpc:F4} with fp32");
        var refused = Run([.. TrainedModelFixture.TrainArgs(fixture.CorpusPath, Path.Combine(root, "both"), 1, validateEvery: 1, checkpointEvery: 1), "--precision", "bf16", "--tf32"]);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("pass only one", refused.Stderr);
    }

    [Fact]
    public void Init_starts_a_new_run_from_the_weights_of_a_checkpoint()
    {
        var trained = fixture.TrainedCheckpoint();
        string fresh = Path.Combine(fixture.NewDirectory("init"), "fresh"), started = Path.Combine(fixture.NewDirectory("init"), "started");
        Succeed(TrainedModelFixture.TrainArgs(fixture.CorpusPath, fresh, 2, validateEvery: 2, checkpointEvery: 2));
        var run = Succeed([.. TrainedModelFixture.TrainArgs(fixture.CorpusPath, started, 2, validateEvery: 2, checkpointEvery: 2), "--init", trained]);
        Assert.Contains($"init   the weights of {trained}", run.Stdout);
        // A new run (steps from 1, fresh optimizer) whose first loss is the trained model's, far below a random start's.
        var first = MetricsLine.ReadAll(Path.Combine(started, "metrics.jsonl"));
        Assert.Equal([1L, 2L], first.Select(m => m.Step));
        double freshLoss = MetricsLine.ReadAll(Path.Combine(fresh, "metrics.jsonl"))[0].TrainLoss;
        Assert.True(first[0].TrainLoss < freshLoss - 1, $"first loss {first[0].TrainLoss:F3} from the trained weights, {freshLoss:F3} from random ones");
    }

    // ---------------------------------------------------------------- eval

    static long WindowTokens(int length, int seq) => (length - 1L) / seq * seq;

    (double Loss, double Bpc, long Tokens) EvalJson(string checkpoint, params string[] extra)
    {
        var result = Succeed(["eval", "--device", "cpu", "--checkpoint", checkpoint, "--data", fixture.EvalPath, "--json", .. extra]);
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one JSON line\n{result}");
        using var doc = JsonDocument.Parse(lines[0]);
        var root = doc.RootElement;
        Assert.Equal(["loss", "bpc", "tokens"], root.EnumerateObject().Select(p => p.Name));
        return (root.GetProperty("loss").GetDouble(), root.GetProperty("bpc").GetDouble(), root.GetProperty("tokens").GetInt64());
    }

    [Fact]
    public void Eval_reports_loss_bpc_and_tokens_over_the_chosen_split()
    {
        var checkpoint = fixture.TrainedCheckpoint();
        var (_, valid, test) = TestCorpus.Split(fixture.EvalBytes);
        int seq = TrainedModelFixture.SeqLen;
        long validTokens = WindowTokens(valid.Length, seq), testTokens = WindowTokens(test.Length, seq), shortTokens = WindowTokens(valid.Length, 32);
        Assert.Equal(3, new[] { validTokens, testTokens, shortTokens }.Distinct().Count()); // the file is sized so they differ

        var (loss, bpc, tokens) = EvalJson(checkpoint);
        Assert.True(double.IsFinite(loss) && loss > 0, $"loss {loss}");
        Assert.Equal(loss / Math.Log(2), bpc);
        Assert.Equal(validTokens, tokens);

        var onTest = EvalJson(checkpoint, "--split", "test");
        Assert.Equal(testTokens, onTest.Tokens);
        Assert.Equal(onTest.Loss / Math.Log(2), onTest.Bpc);
        Assert.NotEqual(loss, onTest.Loss);

        var shorter = EvalJson(checkpoint, "--seq-len", "32");
        Assert.Equal(shortTokens, shorter.Tokens);
        Assert.NotEqual(loss, shorter.Loss);

        // The same evaluation twice gives the same numbers.
        Assert.Equal((loss, bpc, tokens), EvalJson(checkpoint));

        var human = Succeed("eval", "--device", "cpu", "--checkpoint", checkpoint, "--data", fixture.EvalPath);
        var match = Regex.Match(human.Stdout, @"^valid: loss (?<loss>[0-9.]+) nats, (?<bpc>[0-9.]+) bits per character over (?<tokens>[0-9,]+) tokens \(fp32 weights\)\r?\n$");
        Assert.True(match.Success, $"unexpected human-readable line\n{human}");
        Assert.Equal(loss.ToString("F4", CultureInfo.InvariantCulture), match.Groups["loss"].Value);
        Assert.Equal(bpc.ToString("F4", CultureInfo.InvariantCulture), match.Groups["bpc"].Value);
        Assert.Equal(validTokens, long.Parse(match.Groups["tokens"].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture));
        // stderr holds progress only (see Eval_shows_its_progress_…), so stdout is the result alone.
        Assert.All(human.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), line => Assert.StartsWith("eval: ", line));
    }

    /// <summary>bf16 and int8 weights move the bpc of a trained checkpoint by no more than the targets for the seed's.</summary>
    [Fact]
    public void Eval_and_sample_with_reduced_weights_stay_close_to_fp32()
    {
        var checkpoint = fixture.TrainedCheckpoint();
        var fp32 = EvalJson(checkpoint);
        foreach (var (format, tolerance) in new[] { ("bf16", 0.01), ("int8", 0.03) })
        {
            var reduced = EvalJson(checkpoint, "--weights", format);
            Assert.Equal(fp32.Tokens, reduced.Tokens);
            Assert.NotEqual(fp32.Loss, reduced.Loss);
            Assert.True(Math.Abs(reduced.Bpc - fp32.Bpc) <= tolerance, $"{format}: bpc {reduced.Bpc:F4}, fp32 {fp32.Bpc:F4}");
        }
        byte[] Sample() => Succeed("sample", "--device", "cpu", "--checkpoint", checkpoint, "--prompt", "The ", "--length", "40",
            "--seed", "3", "--weights", "int8").StdoutBytes;
        var first = Sample();
        Assert.Equal(41, first.Length);
        Assert.Equal(first, Sample());
    }

    // ---------------------------------------------------------------- sample

    [Fact]
    public void Sample_writes_the_requested_bytes_and_is_reproducible_by_seed()
    {
        var checkpoint = fixture.TrainedCheckpoint();
        byte[] Sample(int seed)
        {
            var result = Succeed("sample", "--device", "cpu", "--checkpoint", checkpoint, "--prompt", "The ", "--length", "50", "--seed", $"{seed}");
            Assert.True(result.StdoutBytes.Length == 51 && result.StdoutBytes[^1] == (byte)'\n',
                $"expected 50 bytes and a newline, got {result.StdoutBytes.Length} bytes\n{result}");
            return result.StdoutBytes[..50];
        }

        var first = Sample(1);
        output.WriteLine($"sample: {Encoding.UTF8.GetString(first)}");
        Assert.Equal(first, Sample(1));
        Assert.NotEqual(first, Sample(2));
    }

    /// <summary>
    /// N streams of one prompt drawn at once: each written in full under its label, stream i the bytes that
    /// <c>--batch 1 --seed S+i−1</c> draws (rows multiplied one by one: no stream's logits depend on the others), the streams different
    /// from each other; with --output, one file per stream; a summary line on stderr.
    /// </summary>
    [Fact]
    public void Sample_with_a_batch_draws_each_stream_as_its_own_seed_would()
    {
        var checkpoint = fixture.TrainedCheckpoint();
        string[] args = ["sample", "--device", "cpu", "--checkpoint", checkpoint, "--prompt", "The ", "--length", "24", "--seed", "5"];
        var batched = Succeed([.. args, "--batch", "3"]);
        output.WriteLine(batched.Stdout);
        Assert.Contains("3 streams × 24 bytes in", batched.Stderr);
        byte[] text = batched.StdoutBytes;
        var streams = new List<byte[]>();
        int at = 0;
        for (int i = 1; i <= 3; i++)
        {
            byte[] label = Encoding.UTF8.GetBytes($"{(i > 1 ? "\n" : "")}── stream {i} of 3 (seed {4 + i}) ──\n");
            Assert.True(text.AsSpan(at).StartsWith(label), $"stream {i}'s label missing at byte {at}\n{batched}");
            at += label.Length;
            streams.Add(text[at..(at + 24)]);
            at += 24;
            Assert.Equal((byte)'\n', text[at++]);
        }
        Assert.Equal(text.Length, at);
        // Alone: its label, then its bytes.
        for (int i = 0; i < 3; i++)
            Assert.Equal(streams[i], Succeed([.. args[..^1], $"{5 + i}", "--batch", "1"]).StdoutBytes[^25..^1]);
        Assert.Equal(3, streams.Select(Encoding.Latin1.GetString).Distinct().Count());

        var directory = Path.Combine(fixture.NewDirectory("sample-batch"), "streams");
        Succeed([.. args, "--batch", "3", "--output", directory]);
        for (int i = 0; i < 3; i++) Assert.Equal(streams[i], File.ReadAllBytes(Path.Combine(directory, $"{i + 1}.txt")));
    }

    /// <summary>
    /// Where the prompt ends: on a terminal it is shown dimmed before the continuation (plain under NO_COLOR, left out
    /// with --echo never); redirected, stdout holds only generated bytes unless --echo always puts the prompt first.
    /// </summary>
    [Fact]
    public void Sample_marks_the_prompt_on_a_terminal_and_writes_only_generated_bytes_to_a_file()
    {
        string[] args = ["sample", "--device", "cpu", "--checkpoint", fixture.TrainedCheckpoint(), "--prompt", "The ", "--length", "30", "--seed", "1"];
        byte[] generated = Succeed(args).StdoutBytes;
        Assert.Equal(31, generated.Length);
        Assert.Equal([.. "The "u8, .. generated], Succeed([.. args, "--echo", "always"]).StdoutBytes);

        // The terminal turns \n into \r\n: compare the continuation up to its first line end.
        byte[] start = generated.TakeWhile(b => b is not ((byte)'\n' or (byte)'\r')).ToArray();
        byte[] Shown(params string[] environmentThenExtra)
        {
            var environment = environmentThenExtra.Where(e => e.Contains('=')).ToArray();
            var result = Cli.RunInTerminal(fixture.Root, [.. args, .. environmentThenExtra.Except(environment)], environment);
            Assert.True(result.ExitCode == 0, result.ToString());
            return result.StdoutBytes;
        }
        Assert.True(Contains(Shown(), [.. "\e[2mThe \e[0m"u8, .. start]), "the prompt is not shown dimmed before the continuation");
        var plain = Shown("NO_COLOR=1");
        Assert.True(Contains(plain, [.. "The "u8, .. start]) && !Contains(plain, "\e[2m"u8.ToArray()), "under NO_COLOR the prompt is not shown plain");
        var left = Shown("--echo", "never");
        Assert.True(Contains(left, start) && !Contains(left, [.. "The "u8, .. start]), "--echo never still shows the prompt");

        static bool Contains(byte[] bytes, byte[] part) => bytes.AsSpan().IndexOf(part) >= 0;
    }

    /// <summary>Eval reports its progress on stderr, with an ETA: as plain lines when redirected, a live line on a terminal.</summary>
    [Fact]
    public void Eval_shows_its_progress_with_an_ETA_redirected_and_on_a_terminal_of_unknown_width()
    {
        string[] args = ["eval", "--device", "cpu", "--checkpoint", fixture.TrainedCheckpoint(), "--data", fixture.EvalPath];
        var redirected = Succeed(args);
        var progress = redirected.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(progress);
        Assert.All(progress, line => Assert.Matches(@"^eval: [0-9,]+/[0-9,]+ windows of 65 bytes \(\d+%\), elapsed \d+m\d\ds, ETA \d+m\d\ds$", line));
        Assert.Contains("(100%)", progress[^1]);
        Assert.DoesNotContain('\r', redirected.Stderr);

        var terminal = Cli.RunInTerminal(fixture.Root, args);
        Assert.True(terminal.ExitCode == 0, terminal.ToString());
        // The terminal reports 0 columns: the live line is shown whole, not cut to a guess of the width.
        Assert.Matches(@"\reval: [0-9,]+/[0-9,]+ windows of 65 bytes \(100%\), elapsed \d+m\d\ds, ETA 0m00s", terminal.Stdout);
        Assert.Matches(@"valid: loss [0-9.]+ nats", terminal.Stdout);
    }

    /// <summary>The live training line on a terminal that reports 0 columns is shown whole, ETA included.</summary>
    [Fact]
    public void Training_on_a_terminal_of_unknown_width_shows_the_whole_status_line()
    {
        string dir = Path.Combine(fixture.NewDirectory("terminal"), "run");
        var result = Cli.RunInTerminal(fixture.Root, TrainedModelFixture.TrainArgs(fixture.CorpusPath, dir, 2, validateEvery: 25, checkpointEvery: 25));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Matches(@"step 2/2  loss [0-9.]+  bpc [0-9.]+  grad-norm [0-9.]+  [0-9,]+ tokens/s  elapsed \d+m\d\ds  ETA 0m00s", result.Stdout);
    }

    /// <summary>metrics.jsonl written before train_bpc and valid_bpc (one bpc field) still plots.</summary>
    [Fact]
    public void Plot_reads_metrics_written_before_train_and_valid_bpc_were_separate()
    {
        string dir = fixture.NewDirectory("old-metrics");
        File.WriteAllLines(Path.Combine(dir, "metrics.jsonl"),
        [
            """{"step":1,"train_loss":5.5,"valid_loss":null,"bpc":7.93,"tokens_per_s":1000,"elapsed_s":0.5}""",
            """{"step":2,"train_loss":5.0,"valid_loss":5.2,"bpc":7.50,"tokens_per_s":1000,"elapsed_s":1.0}""",
        ]);
        string png = Path.Combine(dir, "old.png");
        Succeed("plot", dir, "--out", png);
        Assert.Equal(PngSignature, File.ReadAllBytes(png).Take(8).ToArray());
    }

    // ---------------------------------------------------------------- bad input

    static bool HasCuda => File.Exists("/dev/nvidiactl") || Directory.Exists("/proc/driver/nvidia");

    [Theory]
    [InlineData("missing data file")]
    [InlineData("empty data file")]
    [InlineData("data file that is a directory")]
    [InlineData("data shorter than one window")]
    [InlineData("truncated .gz")]
    [InlineData("zip entry with a bad CRC")]
    [InlineData("--entry that the zip lacks")]
    [InlineData("--entry of a file that is not a zip")]
    [InlineData("unknown model")]
    [InlineData("checkpoint of another shape")]
    [InlineData("truncated model.safetensors")]
    [InlineData("no CUDA device")]
    [InlineData("--steps 0")]
    [InlineData("--batch 0")]
    [InlineData("--seq-len -1")]
    [InlineData("eval --seq-len 0")]
    [InlineData("sample --length -1")]
    [InlineData("sample --batch 0")]
    [InlineData("sample --output without --batch")]
    [InlineData("bench --generate-batch 0")]
    [InlineData("--clip nan")]
    [InlineData("--weight-decay nan")]
    [InlineData("--lr nan")]
    [InlineData("--lr Infinity")]
    [InlineData("sample --top-k-thres nan")]
    [InlineData("sample --temperature nan")]
    [InlineData("sample --temperature Infinity")]
    [InlineData("eval --weights int4")]
    [InlineData("resume a directory that is not a checkpoint")]
    [InlineData("eval a missing checkpoint directory")]
    [InlineData("a value that does not parse")]
    [InlineData("an unknown option")]
    [InlineData("an unknown command")]
    [InlineData("read-only --out")]
    [InlineData("plot --out a directory")]
    [InlineData("no command")]
    [InlineData("--init with --resume")]
    [InlineData("--init of another model")]
    [InlineData("doctor on the host backend")]
    [InlineData("bench --sample-blocks off the simulator")]
    [InlineData("doctor of an unknown model")]
    public void Bad_input_fails_with_one_clear_line(string name)
    {
        var dir = fixture.NewDirectory("bad-" + Regex.Replace(name, "[^a-z0-9]+", "-"));
        string outDir = Path.Combine(dir, "out");
        List<string> Train(string data, params string[] extra) =>
            [.. TrainedModelFixture.TrainArgs(data, outDir, 2, validateEvery: 25, checkpointEvery: 25), .. extra];
        string File(string fileName, byte[] bytes)
        {
            var path = Path.Combine(dir, fileName);
            System.IO.File.WriteAllBytes(path, bytes);
            return path;
        }

        (List<string> Args, string[] Expected) testCase = name switch
        {
            "missing data file" => (Train(Path.Combine(dir, "absent.txt")), ["absent.txt", "not found"]),
            "empty data file" => (Train(File("empty.txt", [])), ["empty.txt", "is empty"]),
            "data file that is a directory" => (Train(Directory.CreateDirectory(Path.Combine(dir, "corpora")).FullName), ["corpora is a directory", "pass one of the files in it"]),
            // 300 bytes: 270 train, 15 valid, 15 test; a window of --seq-len 64 needs 65.
            "data shorter than one window" => (Train(File("short.txt", fixture.Corpus[..300])), ["shorter than one window", "valid split has 15 bytes"]),
            "truncated .gz" => (Train(File("truncated.gz", Gzip(fixture.Corpus)[..^1000])), ["truncated.gz is truncated or damaged", "download it again"]),
            "zip entry with a bad CRC" => (Train(File("bad-crc.zip", DamagedZip())), ["entry corpus.txt of", "bad-crc.zip is damaged", "CRC-32"]),
            "--entry that the zip lacks" => (Train(File("two.zip", Zip(CompressionLevel.Fastest, ("a.txt", fixture.Corpus), ("b.txt", fixture.Corpus))), "--entry", "c.txt"),
                ["two.zip has no file c.txt", "pass one of its 2 files with --entry: a.txt, b.txt"]),
            "--entry of a file that is not a zip" => (Train(fixture.CorpusPath, "--entry", "corpus.txt"), ["--entry corpus.txt picks a file inside a .zip", "leave --entry out"]),
            "unknown model" => (Train(fixture.CorpusPath, "--model", "gateloop-huge"), ["unknown model 'gateloop-huge'", "gateloop-tiny"]),
            "checkpoint of another shape" => (EvalOf(OtherShape()), ["another shape", "Dim 64 (model: 128)"]),
            "truncated model.safetensors" => (EvalOf(Truncated()), ["corrupt or truncated", "model.safetensors"]),
            "no CUDA device" => (["eval", "--device", "cuda", "--checkpoint", fixture.TrainedCheckpoint(), "--data", fixture.EvalPath], ["no CUDA device"]),
            "--steps 0" => (Train(fixture.CorpusPath, "--steps", "0"), ["--steps must be positive, got 0"]),
            "--batch 0" => (Train(fixture.CorpusPath, "--batch", "0"), ["--batch must be positive, got 0"]),
            "--seq-len -1" => (Train(fixture.CorpusPath, "--seq-len", "-1"), ["--seq-len must be positive, got -1"]),
            "eval --seq-len 0" => ([.. EvalOf(fixture.TrainedCheckpoint()), "--seq-len", "0"], ["--seq-len must be positive, got 0"]),
            "sample --length -1" => (Sample("--length", "-1"), ["--length", "-1"]),
            "sample --batch 0" => (Sample("--batch", "0"), ["--batch must be positive, got 0"]),
            "sample --output without --batch" => (Sample("--output", Path.Combine(dir, "streams")), ["--output writes the streams of --batch", "give --batch N"]),
            "bench --generate-batch 0" => (["bench", "--device", "cpu", "--model", "gateloop-tiny", "--generate-batch", "0"], ["--generate-batch must be positive, got 0"]),
            // nan and Infinity parse as doubles; they must not reach the optimizer, the sampler or config.json.
            "--clip nan" => (Train(fixture.CorpusPath, "--clip", "nan"), ["--clip must be a finite number, got NaN"]),
            "--weight-decay nan" => (Train(fixture.CorpusPath, "--weight-decay", "nan"), ["--weight-decay must be a finite number, got NaN"]),
            "--lr nan" => (Train(fixture.CorpusPath, "--lr", "nan"), ["--lr must be a finite number, got NaN"]),
            "--lr Infinity" => (Train(fixture.CorpusPath, "--lr", "Infinity"), ["--lr must be a finite number, got Infinity"]),
            "sample --top-k-thres nan" => (Sample("--top-k-thres", "nan"), ["--top-k-thres must be a finite number, got NaN"]),
            "sample --temperature nan" => (Sample("--temperature", "nan"), ["--temperature must be a finite number, got NaN"]),
            "sample --temperature Infinity" => (Sample("--temperature", "Infinity"), ["--temperature must be a finite number, got Infinity"]),
            "eval --weights int4" => ([.. EvalOf(fixture.TrainedCheckpoint()), "--weights", "int4"], ["'int4' not recognized", "one of: 'fp32', 'bf16', 'int8'", "gateloop eval --help"]),
            "resume a directory that is not a checkpoint" => (["train", "--device", "cpu", "--resume", fixture.NewDirectory("bad-not-a-checkpoint")], ["not a checkpoint directory"]),
            "eval a missing checkpoint directory" => (EvalOf(Path.Combine(dir, "no-such-checkpoint")), ["no-such-checkpoint", "does not exist"]),
            "a value that does not parse" => (Train(fixture.CorpusPath, "--seq-len", "abc"), ["'abc'", "--seq-len", "gateloop train --help"]),
            "an unknown option" => (Train(fixture.CorpusPath, "--sequence-length", "8"), ["--sequence-length", "gateloop train --help"]),
            "an unknown command" => (["frobnicate"], ["unknown command 'frobnicate'", "the commands are models, train, sample, eval", "gateloop --help"]),
            "no command" => ([], ["no command given", "the commands are models, train", "gateloop --help"]),
            "read-only --out" => (Train(fixture.CorpusPath, "--out", ReadOnlyDirectory()), ["cannot write to", "read-only (permission denied)", "with --out"]),
            "plot --out a directory" => (["plot", fixture.TrainedCheckpoint(), "--out", dir], ["is a directory", "--out " + Path.Combine(dir, "comparison.png")]),
            "--init with --resume" => (Train(fixture.CorpusPath, "--init", fixture.TrainedCheckpoint(), "--resume", fixture.TrainedCheckpoint()), ["--init", "--resume", "pass only one"]),
            "--init of another model" => (Train(fixture.CorpusPath, "--init", fixture.TrainedCheckpoint(), "--model", "gateloop-small"), ["is of model 'gateloop-tiny', not 'gateloop-small'"]),
            "doctor on the host backend" => (["doctor", "--device", "cpu"], ["cpu is that backend", "--device cuda, cuda-sim or ilgpu-cpu"]),
            "bench --sample-blocks off the simulator" => (["bench", "--device", "cpu", "--model", "gateloop-tiny", "--sample-blocks", "4"], ["--sample-blocks applies to --device cuda-sim", "leave it out"]),
            "doctor of an unknown model" => (["doctor", "--device", "ilgpu-cpu", "--model", "gateloop-huge"], ["unknown model or layer 'gateloop-huge'", "long-context-mixer"]),
            _ => throw new ArgumentException(name),
        };
        // Arguments that repeat an option: the last one wins in the CLI, but keep the command line clean.
        var args = Dedupe(testCase.Args);

        if (name == "no CUDA device" && HasCuda)
        {
            output.WriteLine("an NVIDIA driver is present here; the no-CUDA message cannot be provoked");
            return;
        }
        var result = name == "read-only --out" ? Cli.RunHeldToPermissions(fixture.Root, args) : Cli.Run(fixture.Root, args);
        if (result is null)
        {
            output.WriteLine("the tests run as root and /usr/bin/setpriv is missing: root ignores permissions, so a read-only --out cannot be provoked");
            return;
        }
        Log(result);
        Assert.True(result.ExitCode != 0, $"expected failure\n{result}");
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
        Assert.True(lines.Count == 1, $"expected exactly one line on stderr\n{result}");
        Assert.StartsWith("gateloop: ", lines[0]);
        foreach (var expected in testCase.Expected)
            Assert.True(lines[0].Contains(expected, StringComparison.Ordinal), $"stderr does not mention \"{expected}\"\n{result}");
        Assert.DoesNotMatch(@"\w+Exception\b", result.Stderr);
        Assert.DoesNotMatch(@"(?m)^\s+at ", result.Stderr + result.Stdout);
        Assert.DoesNotContain("unexpected error", result.Stderr);

        List<string> Sample(params string[] extra) => ["sample", "--device", "cpu", "--checkpoint", fixture.TrainedCheckpoint(), "--length", "8", .. extra];
        List<string> EvalOf(string checkpoint) => ["eval", "--device", "cpu", "--checkpoint", checkpoint, "--data", fixture.EvalPath];
        string ReadOnlyDirectory() => OperatingSystem.IsWindows()
            ? throw new PlatformNotSupportedException("the read-only --out case uses Unix permission bits")
            : Directory.CreateDirectory(Path.Combine(dir, "read-only"), UnixFileMode.UserRead | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute).FullName;
        static byte[] Gzip(byte[] bytes)
        {
            var packed = new MemoryStream();
            using (var gzip = new GZipStream(packed, CompressionLevel.Optimal, leaveOpen: true)) gzip.Write(bytes);
            return packed.ToArray();
        }
        // The corpus stored uncompressed with one byte flipped: it unpacks without complaint, only its CRC-32 tells.
        byte[] DamagedZip()
        {
            var bytes = Zip(CompressionLevel.NoCompression, ("corpus.txt", fixture.Corpus));
            bytes[bytes.AsSpan().IndexOf(fixture.Corpus.AsSpan(0, 100)) + 1000] ^= 1;
            return bytes;
        }
        string OtherShape()
        {
            var copy = fixture.CopyCheckpoint("bad-other-shape");
            var config = Path.Combine(copy, "config.json");
            var text = System.IO.File.ReadAllText(config);
            Assert.Contains("\"Model\": \"gateloop-tiny\"", text);
            System.IO.File.WriteAllText(config, text.Replace("\"Model\": \"gateloop-tiny\"", "\"Model\": \"gateloop-small\""));
            return copy;
        }
        string Truncated()
        {
            var copy = fixture.CopyCheckpoint("bad-truncated");
            var model = Path.Combine(copy, "model.safetensors");
            var bytes = System.IO.File.ReadAllBytes(model);
            System.IO.File.WriteAllBytes(model, bytes[..(bytes.Length / 2)]);
            return copy;
        }
    }

    /// <summary>Keeps the last value of each repeated <c>--option value</c> pair.</summary>
    static List<string> Dedupe(List<string> args)
    {
        var result = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i].StartsWith("--") && i + 1 < args.Count && !args[i + 1].StartsWith("--"))
            {
                int later = args.FindIndex(i + 2, a => a == args[i]);
                if (later >= 0) { i++; continue; }
                result.Add(args[i]);
                result.Add(args[++i]);
            }
            else result.Add(args[i]);
        }
        return result;
    }

    // ---------------------------------------------------------------- models, help

    /// <summary>Parameters of a max-heads post-norm GateLoop transformer (feed-forward mult 4, 256 tokens).</summary>
    static long PostNormMaxHeadsParameters(long dim, long depth) => depth * (15 * dim * dim + 11 * dim) + 2 * 256 * dim;

    [Fact]
    public void Models_lists_every_declared_model_and_layer_with_its_parameter_count()
    {
        var result = Succeed("models");
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // Other models may be declared too; these three must be there, the default first.
        Assert.StartsWith("gateloop-small ", lines[0]);
        Assert.Single(lines, l => l.Contains("(default)"));
        foreach (var (model, count) in new[] { ("gateloop-small", PostNormMaxHeadsParameters(128, 4)),
                     ("enwik8", PostNormMaxHeadsParameters(512, 6)), ("gateloop-tiny", PostNormMaxHeadsParameters(64, 2)) })
        {
            var line = Assert.Single(lines, l => l.StartsWith(model + " "));
            Assert.Contains($" {count.ToString("N0", CultureInfo.InvariantCulture)} parameters", line);
            Assert.Equal(model == "gateloop-small", line.Contains("(default)"));
        }
        // The SimpleGateLoop layer: RMSNorm γ and the bias-free q, k, v / a projection (3 · Dim²), Dim 512.
        var layer = Assert.Single(lines, l => l.StartsWith("long-context-mixer "));
        Assert.Contains($" {(3 * 512 * 512 + 512).ToString("N0", CultureInfo.InvariantCulture)} parameters  layer: ", layer);

        // The tiny model's count agrees with the tensors its checkpoint holds.
        var (tensors, _) = SafeTensorsFile.Read(Path.Combine(fixture.TrainedCheckpoint(), "model.safetensors"));
        Assert.Equal(PostNormMaxHeadsParameters(64, 2), tensors.Sum(t => (long)t.Data.Length));
    }

    [Theory]
    [InlineData("models", new string[0])]
    [InlineData("train", new[] { "--model", "--data", "--entry", "--steps", "--batch", "--grad-accum", "--seq-len", "--lr", "--validate-every", "--checkpoint-every", "--out", "--resume", "--init", "--overwrite", "--device", "--tf32", "--precision", "--seed", "--no-device-check" })]
    [InlineData("sample", new[] { "--checkpoint", "--prompt", "--length", "--temperature", "--top-k-thres", "--device", "--seed", "--weights", "--echo", "--batch", "--output" })]
    [InlineData("eval", new[] { "--checkpoint", "--data", "--entry", "--split", "--seq-len", "--json", "--device", "--weights", "--precision" })]
    [InlineData("download", new[] { "enwik8", "--to" })]
    [InlineData("bench", new[] { "--model", "--batch", "--grad-accum", "--seq-len", "--steps", "--generate", "--generate-batch", "--json", "--device", "--weights", "--tf32", "--precision", "--no-device-check" })]
    [InlineData("plot", new[] { "metrics", "--out" })]
    [InlineData("doctor", new[] { "--device", "--model", "--json" })]
    public void Help_describes_each_command(string command, string[] options)
    {
        var result = Succeed(command, "--help");
        Assert.Contains("Usage:", result.Stdout);
        Assert.Contains($"gateloop {command}", result.Stdout);
        foreach (var option in options) Assert.Contains(option, result.Stdout);
        Assert.Equal("", result.Stderr);
        // The usage line names the arguments as the Arguments section does.
        var usage = Regex.Match(result.Stdout, @"Usage:\s*\n\s*(?<line>[^\n]*)").Groups["line"].Value;
        var section = Regex.Match(result.Stdout, @"Arguments:\s*\n(?<rows>(\s+<[^\n]*\n)+)").Groups["rows"].Value;
        Assert.Equal(Regex.Matches(usage, @"<(\w+)>").Select(m => m.Groups[1].Value),
            Regex.Matches(section, @"(?m)^\s+<(\w+)>").Select(m => m.Groups[1].Value));
    }

    [Fact]
    public void Help_lists_the_commands()
    {
        var result = Succeed("--help");
        foreach (var command in new[] { "models", "train", "sample", "eval", "download", "bench", "plot", "doctor" })
            Assert.Matches($@"(?m)^\s+{command}\b", result.Stdout);
    }

    /// <summary>bench --json reports what the performance work is judged by, with sane values.</summary>
    [Fact]
    public void Bench_reports_training_and_generation_rates_as_json()
    {
        var result = Succeed("bench", "--device", "cpu", "--model", "gateloop-tiny", "--batch", "2", "--grad-accum", "1",
            "--seq-len", "32", "--steps", "1", "--generate", "8", "--json", "--tf32");
        using var doc = JsonDocument.Parse(result.Stdout.Trim());
        var root = doc.RootElement;
        Assert.True(root.GetProperty("train_tokens_per_s").GetDouble() > 0);
        // TF32 is a cuBLAS math mode: the host backend multiplies in full fp32 and says so.
        Assert.Equal("host-simd", root.GetProperty("gemm").GetString());
        Assert.False(root.GetProperty("tf32").GetBoolean());
        Assert.Equal("fp32", root.GetProperty("precision").GetString());
        // The SIMD tier the host kernels ran: the child inherits this process's environment, tier switches included.
        Assert.Equal(GateLoop.Runtime.HostTier.Name, root.GetProperty("isa").GetString());
        Assert.True(root.GetProperty("generate_tokens_per_s").GetDouble() > 0);
        Assert.True(root.GetProperty("peak_memory_bytes").GetInt64() > 10_000_000);
        // The parts of it a step holds: weights and gradients, Adam's two moments (4 bytes each per parameter), activations.
        long parameters = root.GetProperty("config").GetProperty("parameters").GetInt64();
        Assert.Equal(8 * parameters, root.GetProperty("parameter_bytes").GetInt64());
        Assert.Equal(8 * parameters, root.GetProperty("optimizer_bytes").GetInt64());
        Assert.True(root.GetProperty("activation_bytes").GetInt64() > 0);
        Assert.True(root.GetProperty("managed_heap_bytes").GetInt64() > 0);
        Assert.StartsWith("cpu", root.GetProperty("device").GetString());
        Assert.Equal("gateloop-tiny", root.GetProperty("config").GetProperty("model").GetString());
        // A fresh model predicts bytes about uniformly: the first loss is near ln 256.
        Assert.InRange(root.GetProperty("loss").GetDouble(), Math.Log(256) - 0.5, Math.Log(256) + 0.5);
        var phases = root.GetProperty("phase_ms");
        foreach (var phase in new[] { "gemm", "scan", "elementwise", "optimizer" })
            Assert.True(phases.GetProperty(phase).GetDouble() > 0, phase);
    }

    /// <summary>
    /// GATELOOP_LANE_BITS sets the width of the host's lane formulas, a width this CPU lacks running in software (so
    /// one machine tests them all), as bench's JSON reports; a value that is no width is refused in one line.
    /// </summary>
    [Fact]
    public void The_lane_width_setting_is_reported_and_a_wrong_one_refused()
    {
        string[] bench = [Cli.DllPath, "bench", "--device", "cpu", "--model", "gateloop-tiny", "--batch", "1", "--grad-accum", "1",
            "--seq-len", "16", "--steps", "1", "--generate", "0", "--json"];
        foreach (var bits in new[] { 128, 512 })
        {
            var result = Log(Cli.Exec(Cli.Host, fixture.Root, bench, environment: new Dictionary<string, string> { ["GATELOOP_LANE_BITS"] = $"{bits}" }));
            Assert.True(result.ExitCode == 0, result.ToString());
            using var doc = JsonDocument.Parse(result.Stdout.Trim());
            Assert.Equal(bits, doc.RootElement.GetProperty("lane_bits").GetInt32());
            Assert.InRange(doc.RootElement.GetProperty("loss").GetDouble(), Math.Log(256) - 0.5, Math.Log(256) + 0.5);
        }
        var wrong = Log(Cli.Exec(Cli.Host, fixture.Root, bench, environment: new Dictionary<string, string> { ["GATELOOP_LANE_BITS"] = "384" }));
        Assert.Equal(2, wrong.ExitCode);
        Assert.Equal("gateloop: GATELOOP_LANE_BITS must be 128, 256 or 512, or unset for the widest this machine accelerates; got '384'", wrong.Stderr.Trim());
    }

    /// <summary>Generation timed with int8 weights reads about a quarter of fp32's bytes per token.</summary>
    [Fact]
    public void Bench_reports_the_weight_bytes_generation_reads()
    {
        long Bytes(string format, out JsonElement root)
        {
            var result = Succeed("bench", "--device", "cpu", "--model", "gateloop-tiny", "--batch", "1", "--grad-accum", "1",
                "--seq-len", "16", "--steps", "1", "--generate", "8", "--json", "--weights", format);
            root = JsonDocument.Parse(result.Stdout.Trim()).RootElement.Clone();
            Assert.Equal(format, root.GetProperty("weights").GetString());
            Assert.True(root.GetProperty("generate_tokens_per_s").GetDouble() > 0);
            return root.GetProperty("weight_bytes_per_token").GetInt64();
        }
        long fp32 = Bytes("fp32", out var full), int8 = Bytes("int8", out _);
        long parameters = full.GetProperty("config").GetProperty("parameters").GetInt64();
        Assert.InRange(fp32, 3 * parameters, 4 * parameters); // all but the embedding table, less one row
        Assert.InRange(int8, fp32 / 4, fp32 / 3);
    }

    /// <summary>
    /// On cuda-sim, bench reports what an H200 would take: every kernel estimated with its phase and bound, GEMMs as
    /// cuBLAS calls by shape, per training step and per generated token, summing to the totals.
    /// </summary>
    [Fact]
    public void Bench_on_cuda_sim_estimates_the_gpus_time_per_kernel()
    {
        var result = Succeed("bench", "--device", "cuda-sim", "--model", "gateloop-tiny", "--batch", "2", "--grad-accum", "1",
            "--seq-len", "128", "--steps", "1", "--generate", "2", "--sample-blocks", "2", "--no-device-check", "--kernels", "--json");
        var root = JsonDocument.Parse(result.Stdout.Trim()).RootElement;
        foreach (var key in new[] { "estimated_step", "estimated_token" })
        {
            var estimate = root.GetProperty(key);
            Assert.StartsWith("NVIDIA H200", estimate.GetProperty("gpu").GetString());
            var kernels = estimate.GetProperty("kernels").EnumerateObject().ToList();
            Assert.Equal(estimate.GetProperty("ms").GetDouble(), kernels.Sum(k => k.Value.GetProperty("ms").GetDouble()), 6);
            Assert.Equal(estimate.GetProperty("launches").GetDouble(), kernels.Sum(k => k.Value.GetProperty("launches").GetDouble()), 6);
            if (key == "estimated_step")
            {
                var gemm = kernels.Single(k => k.Name == "Gemm").Value;
                Assert.Equal("gemm", gemm.GetProperty("phase").GetString());
                Assert.True(gemm.GetProperty("gemm_shapes").GetArrayLength() > 0);
            }
            else
            {
                // A GPU's token is the decoding branch: each product a kernel with its ops around it, no GEMM call.
                Assert.DoesNotContain(kernels, k => k.Name == "Gemm");
                Assert.Contains(kernels, k => k.Name.StartsWith("Products", StringComparison.Ordinal));
            }
            // The scan: its own launch, chunked, or with the transition and the gate fused in (every generated token).
            Assert.Contains(kernels, k => k.Name is "ScanForward" or "ChunkScanForward" or "TransitionScanSwishGateForward");
            Assert.All(kernels, k => Assert.Contains(k.Value.GetProperty("bound").GetString(), new[] { "launch", "dram", "issue", "latency", "flops" }));
        }
        // --kernels: the host's milliseconds per kernel of the profiled step and of generation, beside the estimates.
        Assert.True(root.GetProperty("kernel_ms").GetProperty("Gemm").GetDouble() > 0);
        Assert.True(root.GetProperty("generate_kernel_ms").EnumerateObject().Any());
        // Sampled: the counts of the simulated blocks, the values from the host, so training still starts near ln 256.
        Assert.InRange(root.GetProperty("loss").GetDouble(), Math.Log(256) - 0.5, Math.Log(256) + 0.5);
        Assert.True(root.GetProperty("simulated_step").GetProperty("total").GetProperty("warp_instructions").GetProperty("fp32").GetDouble() > 0);
    }

    /// <summary>--kernels lists generation's kernels too: with int8 weights its products read the int8 copies.</summary>
    [Fact]
    public void Bench_lists_the_kernels_of_a_training_step_and_of_generation()
    {
        var result = Succeed("bench", "--device", "cpu", "--model", "gateloop-tiny", "--batch", "1", "--grad-accum", "1",
            "--seq-len", "16", "--steps", "1", "--generate", "8", "--kernels", "--weights", "int8");
        Assert.Contains($"isa: {GateLoop.Runtime.HostTier.Name}", result.Stdout);
        var generation = result.Stdout[result.Stdout.IndexOf("generation, per kernel", StringComparison.Ordinal)..];
        Assert.Matches(@"ReducedGemv\s+[0-9.]+ ms", generation);
        Assert.Contains("TransitionScanSwishGateForward", generation);
        Assert.Contains("AdamStep", result.Stdout[..result.Stdout.IndexOf("generation, per kernel", StringComparison.Ordinal)]);
        // Each phase is a share of the whole profiled step, what no phase covers included: together they make it.
        Assert.Matches(@"one profiled step, \d+ ms", result.Stdout);
        var shares = Regex.Matches(result.Stdout, @"(?m)^  [a-z ]+? +[0-9.]+ ms +(?<share>[0-9.]+) ?% of the step$")
            .Select(m => double.Parse(m.Groups["share"].Value, CultureInfo.InvariantCulture)).ToList();
        Assert.Contains("outside phases", result.Stdout);
        Assert.InRange(shares.Sum(), 99.5, 100.5);
        Assert.Matches(@"warm-up step: loss [0-9.]+ nats \(an untrained model's is near ln 256 = 5\.545177, a uniform guess\)", result.Stdout);
    }

    [Fact]
    public void Bench_times_a_SimpleGateLoop_layer_on_one_long_sequence()
    {
        var result = Succeed("bench", "--device", "cpu", "--model", "long-context-mixer", "--seq-len", "2048", "--json");
        using var doc = JsonDocument.Parse(result.Stdout.Trim());
        var root = doc.RootElement;
        Assert.True(root.GetProperty("long_forward_s").GetDouble() > 0);
        Assert.True(root.GetProperty("long_backward_s").GetDouble() > 0);
        Assert.Equal(2048, root.GetProperty("config").GetProperty("seq_len").GetInt32());
        // Activations are linear in the sequence: a few hundred floats per position at Dim 512.
        Assert.InRange(root.GetProperty("activation_bytes").GetInt64(), 2048L * 512 * 4, 2048L * 512 * 4 * 16);
    }

    // ---------------------------------------------------------------- PyTorch-written weights

    [Fact]
    public void Eval_loads_weights_written_the_way_PyTorch_writes_safetensors()
    {
        var trained = fixture.TrainedCheckpoint();
        var (tensors, _) = SafeTensorsFile.Read(Path.Combine(trained, "model.safetensors"));
        var names = tensors.Select(t => t.Name).ToList();
        Assert.Contains("token_emb.weight", names);
        Assert.Contains("layers.1.0.fn.to_qkv.weight", names);
        Assert.NotEqual(names, names.Order(StringComparer.Ordinal)); // so sorted order really is another layout

        string Checkpoint(string name, IEnumerable<Tensor> weights)
        {
            var dir = fixture.NewDirectory(name);
            System.IO.File.Copy(Path.Combine(trained, "config.json"), Path.Combine(dir, "config.json"));
            var path = Path.Combine(dir, "model.safetensors");
            SafeTensorsFile.WriteLikePyTorch(path, weights, new Dictionary<string, string> { ["format"] = "pt" });
            Assert.StartsWith("{\"__metadata__\":{\"format\":\"pt\"},\"layers.0.0.fn.to_a.0.bias\":{\"dtype\":\"F32\",\"shape\":[128],\"data_offsets\":[0,512]}", SafeTensorsFile.HeaderText(path));
            return dir;
        }

        var original = EvalJson(trained);
        // The same values in PyTorch's layout give exactly the same loss: every tensor was found by its name.
        Assert.Equal(original, EvalJson(Checkpoint("pt-same", tensors)));
        // Other values give another loss.
        var halved = EvalJson(Checkpoint("pt-halved", tensors.Select(t => t with { Data = t.Data.Select(v => v * 0.5f).ToArray() })));
        output.WriteLine($"loss: trained {original.Loss:F4}, weights × 0.5 {halved.Loss:F4}");
        Assert.True(double.IsFinite(halved.Loss));
        Assert.NotEqual(original.Loss, halved.Loss);
        Assert.Equal(original.Tokens, halved.Tokens);

        // A file that lacks one tensor fails and names it.
        const string dropped = "layers.1.0.fn.to_a.0.bias";
        var incomplete = Checkpoint("pt-incomplete", tensors.Where(t => t.Name != dropped));
        var result = Run("eval", "--device", "cpu", "--checkpoint", incomplete, "--data", fixture.EvalPath, "--json");
        Assert.True(result.ExitCode != 0, $"expected failure\n{result}");
        Assert.StartsWith("gateloop: ", result.Stderr);
        Assert.Contains("missing", result.Stderr);
        Assert.Contains(dropped, result.Stderr);
        Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
