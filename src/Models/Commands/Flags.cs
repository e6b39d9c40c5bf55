using System.Text.RegularExpressions;

namespace GateLoop.Models.Commands;

/// <summary>
/// The runtime's messages name what an API caller passed (<c>TrainOptions.SeqLen</c>, <c>Corpus.Load(path)</c>); a
/// command-line user passed flags, so every runtime text the command line prints names the flag that set it instead.
/// </summary>
static class Flags
{
    // The runtime's names of parameters, and the flag of each (the options' properties follow one rule, below).
    static readonly (string Api, string Flag)[] Parameters =
    [
        ("Trainer(outDirectory)", "--out"), ("RunLock(directory)", "--out"), ("Trainer.Run(resumeFrom)", "--resume"),
        ("Trainer.Run(initFrom)", "--init"), ("Trainer(modelName)", "--model"), ("Corpus.Load(path)", "--data"),
        ("Corpus.Load(entry)", "--entry"), ("Evaluation.Run(seq)", "--seq-len"), ("BatchSampler(seqLen)", "--seq-len"),
        ("Benchmark.Layer(seq)", "--seq-len"), ("Device.Create(\"cpu\")", "--device cpu"), ("Device.AllowTf32", "--tf32"),
    ];

    /// <summary><paramref name="text"/> with each runtime name of an option replaced by its flag.</summary>
    public static string Reword(string text)
    {
        foreach (var (api, flag) in Parameters) text = text.Replace(api, flag, StringComparison.Ordinal);
        return Regex.Replace(text, @"\b(?:TrainOptions|BenchOptions|ServeOptions)\.([A-Z]\w*)", m => Option(m.Groups[1].Value));
    }

    /// <summary>The flag that sets a TrainOptions, BenchOptions or ServeOptions property: its name in kebab case, but for three.</summary>
    public static string Option(string property) => property switch
    {
        "LearningRate" => "--lr",
        "DataEntry" => "--entry",
        "BucketMegabytes" => "--bucket-mb",
        _ => "--" + Regex.Replace(property, "(?<=.)([A-Z])", "-$1").ToLowerInvariant(),
    };
}
