using System.CommandLine;
using GateLoop.Runtime;

namespace GateLoop.Models.Commands;

/// <summary>Options shared by several commands.</summary>
static class Common
{
    public static Option<string> Device() => new("--device")
    {
        Description = "cpu (host backend), cuda, ilgpu-cpu (kernel validation only, very slow) or auto",
        DefaultValueFactory = _ => "auto",
    };

    public static Option<bool> Tf32() => new("--tf32")
    {
        Description = "let fp32 GEMMs on cuda use TF32 tensor cores (faster; products rounded to a 10-bit mantissa). No effect on cpu",
    };

    public static Option<string> Checkpoint() => new("--checkpoint") { Description = "checkpoint directory written by train", Required = true };

    public static Option<int> Seed() => new("--seed") { Description = "random seed", DefaultValueFactory = _ => 0 };

    /// <summary>True when the user typed <paramref name="option"/> (not just its default).</summary>
    public static bool Given(ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    /// <summary>Loads the corpus at <paramref name="path"/>, or the default corpus when it is null.</summary>
    public static Corpus LoadCorpus(string? path) => path is null ? Corpus.LoadDefault() : Corpus.Load(path);

    /// <summary>Opens a checkpoint: its config, the model it names (shape checked) and its weights.</summary>
    public static (CheckpointConfig Config, TransformerModel<float> Model) OpenCheckpoint(string directory, Device device)
    {
        var config = Runtime.Checkpoint.ReadConfig(directory);
        var entry = Catalog.Find(config.Model);
        var model = entry.Create(device);
        try
        {
            Runtime.Checkpoint.CheckShape(config, model, directory);
            Runtime.Checkpoint.Load(directory, model, adam: null);
            return (config, model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>A cancellation source fired by Ctrl+C (the first press cancels gracefully; the process keeps running).</summary>
    public static CancellationTokenSource CancelOnCtrlC()
    {
        var source = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            source.Cancel();
        };
        return source;
    }
}
