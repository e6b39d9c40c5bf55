using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>What <c>config.json</c> records: enough to rebuild the model and continue training exactly.</summary>
public sealed record CheckpointConfig
{
    /// <summary>Format version of this file.</summary>
    public int Format { get; init; } = 1;

    /// <summary>The declared model's command-line name.</summary>
    public required string Model { get; init; }

    /// <summary>The declaration's attribute values.</summary>
    public required Dictionary<string, string> Hyperparameters { get; init; }

    /// <summary>Completed optimizer steps.</summary>
    public long Step { get; init; }

    /// <summary>Full path of the training data file; null for the default corpus.</summary>
    public string? Data { get; init; }

    /// <summary>The training seed.</summary>
    public int Seed { get; init; }

    /// <summary>The training options, so a resumed run continues with the same ones.</summary>
    public TrainOptions? Options { get; init; }

    /// <summary>State of the batch-sampling random stream.</summary>
    public ulong[]? DataRng { get; init; }

    /// <summary>
    /// Names the save that wrote this checkpoint (its step and a digest of its weights); the safetensors files carry
    /// it too, so files of different saves are told apart. Null in checkpoints written before it, and by PyTorch.
    /// </summary>
    public string? Id { get; init; }

    /// <summary>The ranks the run trained on (1 for a single process): each took <see cref="TrainOptions.Batch"/> sequences of the global batch.</summary>
    public int WorldSize { get; init; } = 1;

    /// <summary>
    /// The options that resume this run on <paramref name="ranks"/> ranks: its global batch (<see cref="TrainOptions.Batch"/>
    /// × <see cref="WorldSize"/> sequences, drawn from one stream) shared out again, so the run goes on with the same data
    /// and the same steps, up to the order of the sums.
    /// </summary>
    /// <exception cref="WorldException">The global batch does not divide evenly over <paramref name="ranks"/>.</exception>
    public TrainOptions ResumeOn(TrainOptions options, int ranks, string directory)
    {
        long global = (long)options.Batch * WorldSize;
        // Only several ranks can fail this, and every one of them alike: rank 0 reports it.
        if (global % ranks != 0)
            throw new WorldException(
                $"checkpoint '{directory}' was trained with a global batch of {global} sequences ({WorldSize} × TrainOptions.Batch {options.Batch}), which {ranks} ranks cannot share evenly; " +
                $"resume on a number of ranks that divides {global}", everyRank: true);
        return options with { Batch = (int)(global / ranks) };
    }

    /// <summary>Attribute values as strings, for comparing a checkpoint with a compiled model.</summary>
    public static Dictionary<string, string> Describe(IReadOnlyDictionary<string, object> hyperparameters) =>
        hyperparameters.ToDictionary(p => p.Key, p => Convert.ToString(p.Value, System.Globalization.CultureInfo.InvariantCulture)!);
}

/// <summary>
/// Reads and writes training checkpoints: a directory of <c>config.json</c>, <c>model.safetensors</c> and
/// <c>optimizer.safetensors</c>, written as one unit (<see cref="CheckpointDirectory"/>) from any module and its
/// optimizer, its tensor files checked as <see cref="WeightFile"/> checks them.
/// </summary>
public static class Checkpoint
{
    const string FirstMoment = "exp_avg.", SecondMoment = "exp_avg_sq.";

    /// <summary>
    /// Writes a whole training checkpoint into <paramref name="directory"/> as one unit: staged, then moved into
    /// place (see <see cref="CheckpointDirectory"/>), so a crash at any moment leaves a complete checkpoint, and the
    /// files name the save that wrote them so that a mixed set is refused when read.
    /// </summary>
    /// <exception cref="UserInputException">The files cannot be written (a full disk, a read-only directory); the checkpoint there before is intact.</exception>
    public static void Save(string directory, Module<float> model, Adam adam, CheckpointConfig config)
    {
        string staging = Path.Combine(directory, CheckpointDirectory.StagingDirectoryName);
        var weights = model.ReadWeights();
        // Named by its content, so that two runs that are the same write the same files, and two that differ never do.
        string id = $"{config.Step}-{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(weights.AsSpan())))[..16]}";
        try
        {
            // A save cut short is finished (or its partial files dropped) before this one begins.
            CheckpointDirectory.Commit(directory);
            Directory.CreateDirectory(staging);
            WeightFile.Write(Path.Combine(staging, CheckpointDirectory.ModelFileName), model, [("", weights)], id);
            var m = Read(adam.FirstMoment, model.ParameterCount);
            var v = Read(adam.SecondMoment, model.ParameterCount);
            WeightFile.Write(Path.Combine(staging, CheckpointDirectory.OptimizerFileName), model,
                [(FirstMoment, m), (SecondMoment, v)], id, ("step", adam.Step.ToString()));
            // The staged config last: once it exists, the staged checkpoint is complete.
            CheckpointDirectory.WriteJsonAtomic(Path.Combine(staging, CheckpointDirectory.ConfigFileName), config with { Id = id });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { if (!File.Exists(Path.Combine(staging, CheckpointDirectory.ConfigFileName))) Directory.Delete(staging, recursive: true); }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException) { }
            throw new UserInputException(
                $"cannot write the checkpoint of step {config.Step} to {directory} ({e.Message}); the checkpoint there before is intact: make room or fix the directory, then resume from it", e);
        }
        CheckpointDirectory.Commit(directory);
    }

    /// <summary>Reads <c>config.json</c> of the complete checkpoint in a directory.</summary>
    /// <exception cref="UserInputException">
    /// The directory is missing or is not a checkpoint, or its config holds values no run can use (no model name,
    /// a missing hyperparameter value, a negative step, invalid training options or random state).
    /// </exception>
    public static CheckpointConfig ReadConfig(string directory)
    {
        if (!Directory.Exists(directory))
            throw new UserInputException($"checkpoint directory '{directory}' does not exist");
        var path = CheckpointDirectory.PathOf(directory, CheckpointDirectory.ConfigFileName);
        var config = CheckpointDirectory.ReadJson<CheckpointConfig>(path);
        // JSON can give what the types do not rule out (null for a required member, a negative count): refused here,
        // naming the file, rather than failing later in code that trusts the config.
        if (Problem(config) is { } problem)
            throw new UserInputException($"{path} {problem}; the checkpoint is damaged, use another one");
        return config;
    }

    /// <summary>What makes <paramref name="config"/> unusable, or null when nothing does.</summary>
    static string? Problem(CheckpointConfig config)
    {
        if (config.Format != 1)
            return $"has format {config.Format}, which this version cannot read (it reads format 1)";
        if (config.Model is not { Length: > 0 } model || model.Any(char.IsControl))
            return $"has no usable model name ('{UserInputException.Printable(config.Model ?? "")}')";
        if (config.Hyperparameters is null)
            return "has no Hyperparameters";
        if (config.Hyperparameters.FirstOrDefault(p => p.Value is null) is { Key: { } missing })
            return $"has no value for hyperparameter '{UserInputException.Printable(missing)}'";
        if (config.Step < 0)
            return $"has step {config.Step}, which is negative";
        if (config.WorldSize < 1)
            return $"has a world size of {config.WorldSize}, not a positive number of ranks";
        if (config.DataRng is { } state && !Rng.IsState(state))
            return state.Length == 4 ? "has an all-zero random generator state" : $"has a random generator state of {state.Length} words, not 4";
        try
        {
            config.Options?.Validate();
            return null;
        }
        catch (UserInputException e)
        {
            return $"has training options no run can use ({e.Message})";
        }
    }

    /// <summary>
    /// Checks that a checkpoint was made for a model with the same attribute values. Attributes the checkpoint does
    /// not record (it predates them) are not compared; the tensor shapes are checked when the weights load.
    /// </summary>
    /// <exception cref="UserInputException">Names the attributes that differ.</exception>
    public static void CheckShape(CheckpointConfig config, Module<float> model, string directory)
    {
        var expected = CheckpointConfig.Describe(model.Configuration);
        var different = expected.Keys
            .Where(k => config.Hyperparameters.TryGetValue(k, out var v) && v != expected[k])
            .Select(k => $"{k} {UserInputException.Printable(config.Hyperparameters[k])} (model: {expected[k]})")
            .ToList();
        if (different.Count > 0)
            throw new UserInputException(
                $"checkpoint '{directory}' was made for another shape of model '{config.Model}': {string.Join(", ", different)}");
    }

    /// <summary>
    /// Loads the weights, and the optimizer state when <paramref name="adam"/> is given, from the complete checkpoint
    /// in a directory, after checking that each file is of the save that wrote its <c>config.json</c>.
    /// </summary>
    /// <exception cref="UserInputException">A file is missing, of another save, of another shape, or holds non-finite values.</exception>
    public static void Load(string directory, Module<float> model, Adam? adam)
    {
        var config = ReadConfig(directory);
        SafeTensorFile Open(string name)
        {
            string path = CheckpointDirectory.PathOf(directory, name);
            var file = SafeTensors.Read(path);
            // A file without a name is not ours (a PyTorch model saved into the directory on purpose): nothing to compare.
            string? id = file.Metadata.GetValueOrDefault(WeightFile.IdKey);
            if (config.Id is not null && id is not null && id != config.Id)
                throw new UserInputException(
                    $"'{directory}' holds a mixed checkpoint: {name} is of save {UserInputException.Printable(id)}, config.json of save {config.Id} (step {config.Step}); " +
                    "its files were not written together: restore a complete copy, or start from another checkpoint");
            return file;
        }
        model.WriteWeights(WeightFile.Gather(model, Open(CheckpointDirectory.ModelFileName), "", CheckpointDirectory.PathOf(directory, CheckpointDirectory.ModelFileName)));
        if (adam is null) return;
        string path = CheckpointDirectory.PathOf(directory, CheckpointDirectory.OptimizerFileName);
        var optimizer = Open(CheckpointDirectory.OptimizerFileName);
        adam.FirstMoment.SubView(0, model.ParameterCount).CopyFromCPU(WeightFile.Gather(model, optimizer, FirstMoment, path));
        adam.SecondMoment.SubView(0, model.ParameterCount).CopyFromCPU(WeightFile.Gather(model, optimizer, SecondMoment, path));
        adam.Step = optimizer.Metadata.TryGetValue("step", out var step) && long.TryParse(step, out var s) && s >= 0 ? s
            : throw new UserInputException($"'{path}' has no optimizer step (a whole number, 0 or more) in its metadata; the checkpoint is damaged, use another one");
    }

    static float[] Read(ILGPU.ArrayView<float> view, long length)
    {
        var host = new float[length];
        view.SubView(0, length).CopyToCPU(host);
        return host;
    }
}
