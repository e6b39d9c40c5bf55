using System.CommandLine;
using System.Runtime.InteropServices;
using GateLoop.Runtime;

namespace GateLoop.Models.Commands;

/// <summary>Options shared by several commands.</summary>
static class Common
{
    public static Option<string> Device() => new("--device")
    {
        Description = "cpu (host backend), cuda, cuda-sim (the PTX simulator: kernel checks and counts, very slow), ilgpu-cpu (kernel validation only, very slow) or auto",
        DefaultValueFactory = _ => "auto",
    };

    public static Option<bool> Tf32() => new("--tf32")
    {
        Description = "let fp32 GEMMs on cuda use TF32 tensor cores (faster; products rounded to a 10-bit mantissa). No effect on cpu",
    };

    public static Option<string> Precision(string description)
    {
        var option = new Option<string>("--precision") { Description = description, DefaultValueFactory = _ => "fp32" };
        option.AcceptOnlyFromAmong([.. Enum.GetNames<GemmPrecision>().Select(name => name.ToLowerInvariant())]);
        return option;
    }

    /// <summary>The precision a <see cref="Precision"/> value names.</summary>
    public static GemmPrecision PrecisionOf(string name) => Enum.Parse<GemmPrecision>(name, ignoreCase: true);

    public static Option<bool> NoDeviceCheck() => new("--no-device-check")
    {
        Description = "skip the check that a GPU computes this model as the host backend does (run once before the first step)",
    };

    /// <summary>
    /// On a device other than the host backend, compares <paramref name="model"/> with one of its class made on
    /// the host (<see cref="DeviceCheck.Model"/> or <see cref="DeviceCheck.Layer"/>) before <paramref name="command"/>
    /// uses it, so a miscompiling GPU stack stops with one line instead of training garbage.
    /// </summary>
    /// <exception cref="DeviceUnavailableException">A buffer or gradient differs past its tolerance.</exception>
    public static void CheckDevice<TModule>(TModule model, string name, Func<Device, TModule> create,
        Func<string, TModule, TModule, int, IReadOnlyList<CheckResult>> compare, string command, TextWriter log)
        where TModule : Module<float>
    {
        if (model.Device.IsHost) return;
        using var host = Runtime.Device.Create("cpu");
        using var reference = create(host);
        var rows = compare(name, model, reference, 1);
        if (rows.FirstOrDefault(r => !r.Passed) is { } failed)
            throw new DeviceUnavailableException(
                $"{model.Device.Name} computes {name} differently from the host backend ({failed.Name}: relative error {failed.Error:G3}, " +
                $"tolerance {failed.Tolerance:G1}); see: gateloop doctor --model {name}, or pass --no-device-check to {command} anyway");
        var worst = rows.MaxBy(r => r.OfTolerance)!;
        log.WriteLine($"check  the device agrees with the host backend on {rows.Count} buffers, gradients and outputs of {name} " +
            $"(closest to its tolerance: {worst.Name}, {worst.Error:G2} of {worst.Tolerance:G1})");
    }

    public static Option<string> Weights()
    {
        var option = new Option<string>("--weights")
        {
            Description = "how the weight matrices are held for inference: fp32 (as trained), bf16 (half the bytes) or int8 (a quarter, " +
                "one scale per output row); quantized on load, the checkpoint stays fp32. Generation on cpu reads the smaller copies",
            DefaultValueFactory = _ => "fp32",
        };
        option.AcceptOnlyFromAmong([.. Enum.GetNames<WeightFormat>().Select(name => name.ToLowerInvariant())]);
        return option;
    }

    /// <summary>The format a <see cref="Weights"/> value names.</summary>
    public static WeightFormat WeightFormatOf(string name) => Enum.Parse<WeightFormat>(name, ignoreCase: true);

    public static Option<string> Checkpoint() => new("--checkpoint") { Description = "checkpoint directory written by train", Required = true };

    public static Option<int> Seed() => new("--seed") { Description = "random seed", DefaultValueFactory = _ => 0 };

    /// <summary>
    /// Creates <paramref name="directory"/> if needed and writes (and deletes) a file in it, so that a command whose
    /// results are written after its work fails before that work instead. The file is the real test: permission
    /// bits, ACLs and read-only mounts all refuse it.
    /// </summary>
    /// <exception cref="UserInputException">The directory cannot be created or written to.</exception>
    public static void CheckWritable(string directory, string option)
    {
        try
        {
            Directory.CreateDirectory(directory);
            using var _ = File.Create(Path.Combine(directory, Path.GetRandomFileName()), 1, FileOptions.DeleteOnClose);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The probe file's random name would only confuse; the directory is what the user chose.
            string reason = e is UnauthorizedAccessException ? "permission denied" : e.Message.TrimEnd('.');
            throw new UserInputException($"cannot write to {directory} ({reason}); choose a place you can write to with {option}", e);
        }
    }

    /// <summary>True when the user typed <paramref name="option"/> (not just its default).</summary>
    public static bool Given(ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    public static Option<string?> Entry() => new("--entry")
    {
        Description = "the file to read inside a --data .zip (default: the one named enwik8, else the first)",
    };

    /// <summary>
    /// The data a command reads: <paramref name="path"/> and <paramref name="entry"/> as given, or without a path,
    /// the checkpoint's data file and the zip entry it was trained on.
    /// </summary>
    public static (string? Path, string? Entry) DataOf(string? path, string? entry, CheckpointConfig config) =>
        path is null ? (config.Data, entry ?? config.Options?.DataEntry) : (path, entry);

    /// <summary>Loads the corpus at <paramref name="path"/> (<paramref name="entry"/> in a zip), or the default corpus when it is null.</summary>
    public static Corpus LoadCorpus(string? path, string? entry) =>
        path is not null ? Corpus.Load(path, entry)
        : entry is null ? Corpus.LoadDefault()
        : throw new UserInputException($"--entry {entry} picks a file inside the --data archive, and no --data was given; pass --data FILE.zip too");

    /// <summary>
    /// Opens a checkpoint for inference: its config, the model it names (shape checked) and its weights, held as
    /// <paramref name="weights"/> (a <see cref="Weights"/> value) says.
    /// </summary>
    public static (CheckpointConfig Config, TransformerModel<float> Model) OpenCheckpoint(string directory, Device device, string weights)
    {
        var config = Runtime.Checkpoint.ReadConfig(directory);
        var entry = Catalog.Find(config.Model);
        var model = entry.Create(device);
        try
        {
            Runtime.Checkpoint.CheckShape(config, model, directory);
            Runtime.Checkpoint.Load(directory, model, adam: null);
            model.Inference.UseWeights(WeightFormatOf(weights));
            return (config, model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Stops long work gracefully on Ctrl+C, SIGTERM and SIGHUP; see <see cref="StopSignals"/>.</summary>
    public static StopSignals StopOnSignals() => new();
}

/// <summary>
/// Turns Ctrl+C (SIGINT), SIGTERM (docker stop, systemd, a scheduler) and SIGHUP (a closed terminal) into a
/// cancellation, so that train checkpoints before it exits instead of losing everything since the last one. Each
/// signal cancels gracefully; the process keeps running until the command returns.
/// </summary>
sealed class StopSignals : IDisposable
{
    readonly CancellationTokenSource source = new();
    readonly PosixSignalRegistration[] registrations;
    PosixSignal? signal;

    public StopSignals() =>
        registrations = [.. new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP }.Select(s => PosixSignalRegistration.Create(s, context =>
        {
            context.Cancel = true;
            signal ??= context.Signal;
            source.Cancel();
        }))];

    public CancellationToken Token => source.Token;

    public bool Stopped => source.IsCancellationRequested;

    /// <summary>What a shell reports for a process that signal ended: 128 + the signal's number.</summary>
    public int ExitCode => 128 + (signal == PosixSignal.SIGTERM ? 15 : signal == PosixSignal.SIGHUP ? 1 : 2);

    /// <summary>The signal's name, for the closing line.</summary>
    public string Name => signal == PosixSignal.SIGTERM ? "SIGTERM" : signal == PosixSignal.SIGHUP ? "SIGHUP" : "Ctrl+C";

    public void Dispose()
    {
        foreach (var r in registrations) r.Dispose();
        source.Dispose();
    }
}
