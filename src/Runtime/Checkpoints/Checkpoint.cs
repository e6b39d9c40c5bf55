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


    /// <summary>Attribute values as strings, for comparing a checkpoint with a compiled model.</summary>
    public static Dictionary<string, string> Describe(IReadOnlyDictionary<string, object> hyperparameters) =>
        hyperparameters.ToDictionary(p => p.Key, p => Convert.ToString(p.Value, System.Globalization.CultureInfo.InvariantCulture)!);
}

/// <summary>
/// Reads and writes checkpoint directories (<c>config.json</c>, <c>model.safetensors</c>, <c>optimizer.safetensors</c>)
/// and single weight files, checking names, shapes and values so a mismatch is reported precisely.
/// </summary>
public static class Checkpoint
{
    const string FirstMoment = "exp_avg.", SecondMoment = "exp_avg_sq.";

    /// <summary>Writes the model's weights under their PyTorch names (float32).</summary>
    public static void SaveWeights(TransformerModel<float> model, string path) =>
        SafeTensors.Write(path, Slices(model, model.ReadWeights(), ""), new Dictionary<string, string> { ["format"] = "pt" });

    /// <summary>
    /// Loads weights written by <see cref="SaveWeights"/> or by PyTorch (<c>safetensors.torch.save_file(model.state_dict())</c>)
    /// for a model of the same shape.
    /// </summary>
    /// <exception cref="UserInputException">A tensor is missing, extra, or of another shape.</exception>
    public static void LoadWeights(TransformerModel<float> model, string path) =>
        model.WriteWeights(Gather(model, SafeTensors.Read(path), "", path));

    /// <summary>Writes a whole training checkpoint into <paramref name="directory"/>; each file appears atomically.</summary>
    public static void Save(string directory, TransformerModel<float> model, Adam adam, CheckpointConfig config)
    {
        Directory.CreateDirectory(directory);
        SaveWeights(model, Path.Combine(directory, CheckpointDirectory.ModelFileName));
        var m = Read(adam.FirstMoment, model.ParameterCount);
        var v = Read(adam.SecondMoment, model.ParameterCount);
        SafeTensors.Write(Path.Combine(directory, CheckpointDirectory.OptimizerFileName),
            Slices(model, m, FirstMoment).Concat(Slices(model, v, SecondMoment)),
            new Dictionary<string, string> { ["step"] = adam.Step.ToString() });
        // config.json last: a directory whose config is present holds a complete checkpoint.
        CheckpointDirectory.WriteJsonAtomic(Path.Combine(directory, CheckpointDirectory.ConfigFileName), config);
    }

    /// <summary>Reads <c>config.json</c> of a checkpoint directory.</summary>
    /// <exception cref="UserInputException">
    /// The directory is missing or is not a checkpoint, or its config holds values no run can use (no model name,
    /// a missing hyperparameter value, a negative step, invalid training options or random state).
    /// </exception>
    public static CheckpointConfig ReadConfig(string directory)
    {
        if (!Directory.Exists(directory))
            throw new UserInputException($"checkpoint directory '{directory}' does not exist");
        var path = Path.Combine(directory, CheckpointDirectory.ConfigFileName);
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
    public static void CheckShape(CheckpointConfig config, TransformerModel<float> model, string directory)
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

    /// <summary>Loads the weights, and the optimizer state when <paramref name="adam"/> is given, from a checkpoint directory.</summary>
    public static void Load(string directory, TransformerModel<float> model, Adam? adam)
    {
        LoadWeights(model, Path.Combine(directory, CheckpointDirectory.ModelFileName));
        if (adam is null) return;
        string path = Path.Combine(directory, CheckpointDirectory.OptimizerFileName);
        var file = SafeTensors.Read(path);
        adam.FirstMoment.SubView(0, model.ParameterCount).CopyFromCPU(Gather(model, file, FirstMoment, path));
        adam.SecondMoment.SubView(0, model.ParameterCount).CopyFromCPU(Gather(model, file, SecondMoment, path));
        adam.Step = file.Metadata.TryGetValue("step", out var step) && long.TryParse(step, out var s) && s >= 0 ? s
            : throw new UserInputException($"'{path}' has no optimizer step (a whole number, 0 or more) in its metadata; the checkpoint is damaged, use another one");
    }

    static float[] Read(ILGPU.ArrayView<float> view, long length)
    {
        var host = new float[length];
        view.SubView(0, length).CopyToCPU(host);
        return host;
    }

    static IEnumerable<(string, int[], ReadOnlyMemory<float>)> Slices(TransformerModel<float> model, float[] flat, string prefix) =>
        model.Parameters.Select(p => (prefix + p.Name, p.Shape, (ReadOnlyMemory<float>)flat.AsMemory((int)p.Offset, (int)p.Length)));

    static float[] Gather(TransformerModel<float> model, SafeTensorFile file, string prefix, string path)
    {
        var flat = new float[model.ParameterCount];
        var expected = model.Parameters.ToDictionary(p => prefix + p.Name);
        var missing = expected.Keys.Where(k => !file.Tensors.ContainsKey(k)).ToList();
        var extra = file.Tensors.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && !expected.ContainsKey(k)).ToList();
        if (missing.Count > 0 || extra.Count > 0)
            throw new UserInputException($"'{path}' does not fit model '{string.Join("", model.GetType().Name)}': " +
                (missing.Count > 0 ? $"missing {Preview(missing)}" : "") + (missing.Count > 0 && extra.Count > 0 ? "; " : "") +
                (extra.Count > 0 ? $"unexpected {Preview(extra)}" : ""));
        foreach (var (name, p) in expected)
        {
            var tensor = file.Tensors[name];
            if (!tensor.Shape.SequenceEqual(p.Shape))
                throw new UserInputException(
                    $"'{path}': tensor {name} has shape [{string.Join(", ", tensor.Shape)}], the model needs {p.ShapeText}");
            tensor.Data.CopyTo(flat, p.Offset);
        }
        return flat;
    }

    static string Preview(List<string> names) =>
        string.Join(", ", names.Take(5).Select(UserInputException.Printable)) + (names.Count > 5 ? $" and {names.Count - 5} more" : "");
}
