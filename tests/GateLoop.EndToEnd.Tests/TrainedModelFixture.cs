using System.Text.Json;

namespace GateLoop.EndToEnd.Tests;

/// <summary>
/// One temporary directory per test class holding the corpora and one checkpoint trained by the real binary
/// (gateloop-tiny, <see cref="Steps"/> steps), shared by the tests that need a trained model.
/// </summary>
public sealed class TrainedModelFixture : IDisposable
{
    /// <summary>Training steps of the shared run; enough for gateloop-tiny to beat a unigram model clearly.</summary>
    public const int Steps = 40;

    /// <summary>Training sequence length.</summary>
    public const int SeqLen = 64;

    public TrainedModelFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), $"gateloop-e2e-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(Root);
        Corpus = TestCorpus.Make(0, TestCorpus.TrainingLength);
        CorpusPath = Path.Combine(Root, "corpus.txt");
        File.WriteAllBytes(CorpusPath, Corpus);
        // Evaluation text the model has not seen, small so that each eval takes about a second even in Debug.
        EvalBytes = TestCorpus.Make(TestCorpus.TrainingLength, TestCorpus.EvaluationLength);
        EvalPath = Path.Combine(Root, "eval.txt");
        File.WriteAllBytes(EvalPath, EvalBytes);

        Checkpoint = Path.Combine(Root, "trained");
        Training = Cli.Run(Root, TrainArgs(CorpusPath, Checkpoint, Steps, validateEvery: 20, checkpointEvery: 20), TimeSpan.FromMinutes(5));
    }

    /// <summary>The temporary directory; also the working directory of every run.</summary>
    public string Root { get; }

    /// <summary>The training corpus (<see cref="TestCorpus.TrainingLength"/> bytes) and its path.</summary>
    public byte[] Corpus { get; }
    public string CorpusPath { get; }

    /// <summary>A separate evaluation file (<see cref="TestCorpus.EvaluationLength"/> bytes) and its path.</summary>
    public byte[] EvalBytes { get; }
    public string EvalPath { get; }

    /// <summary>The output directory of the shared training run, and what that run printed.</summary>
    public string Checkpoint { get; }
    public CliResult Training { get; }

    /// <summary>Arguments of a small gateloop-tiny training run on the CPU.</summary>
    public static List<string> TrainArgs(string data, string outDir, int steps, int validateEvery, int checkpointEvery) =>
    [
        "train", "--device", "cpu", "--model", "gateloop-tiny", "--data", data, "--out", outDir,
        "--steps", $"{steps}", "--batch", "8", "--grad-accum", "1", "--seq-len", $"{SeqLen}", "--lr", "3e-3",
        "--validate-every", $"{validateEvery}", "--generate-every", "0", "--checkpoint-every", $"{checkpointEvery}",
    ];

    /// <summary>Asserts the shared run succeeded (tests that use its checkpoint call this first).</summary>
    public string TrainedCheckpoint()
    {
        Assert.True(Training.ExitCode == 0, $"the shared training run failed\n{Training}");
        return Checkpoint;
    }

    /// <summary>A fresh directory under <see cref="Root"/>.</summary>
    public string NewDirectory(string name)
    {
        var path = Path.Combine(Root, name);
        if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Copies the trained checkpoint's files into a new directory.</summary>
    public string CopyCheckpoint(string name)
    {
        var source = TrainedCheckpoint();
        var target = NewDirectory(name);
        foreach (var file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        return target;
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>One line of <c>metrics.jsonl</c>.</summary>
public sealed record MetricsLine(long Step, double TrainLoss, double? ValidLoss, double TrainBpc, double? ValidBpc, double ElapsedSeconds, string Raw)
{
    public static List<MetricsLine> ReadAll(string path) => File.ReadAllLines(path).Where(l => l.Length > 0).Select(Parse).ToList();

    static MetricsLine Parse(string line)
    {
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        Assert.Equal(["step", "train_loss", "valid_loss", "train_bpc", "valid_bpc", "tokens_per_s", "elapsed_s"], root.EnumerateObject().Select(p => p.Name));
        static double? Number(JsonElement e) => e.ValueKind == JsonValueKind.Number ? e.GetDouble() : null;
        return new MetricsLine(root.GetProperty("step").GetInt64(), root.GetProperty("train_loss").GetDouble(), Number(root.GetProperty("valid_loss")),
            root.GetProperty("train_bpc").GetDouble(), Number(root.GetProperty("valid_bpc")), root.GetProperty("elapsed_s").GetDouble(), line);
    }
}
