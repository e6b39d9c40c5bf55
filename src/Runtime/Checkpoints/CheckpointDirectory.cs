using System.Text.Json;

namespace GateLoop.Runtime;

/// <summary>
/// Files of a checkpoint directory: <c>config.json</c> (model name, attribute values, training step),
/// <c>model.safetensors</c> (the weights under PyTorch names) and <c>optimizer.safetensors</c>. A save writes all
/// three into <see cref="StagingDirectoryName"/> first, its <c>config.json</c> last, then moves them up, config last:
/// while a staged <c>config.json</c> exists the checkpoint is the staged files with the moved ones, afterwards the
/// directory's own. So whenever a save is cut short, one complete checkpoint is there, the previous or the new.
/// </summary>
public static class CheckpointDirectory
{
    /// <summary>The JSON file that marks a directory as a checkpoint.</summary>
    public const string ConfigFileName = "config.json";

    /// <summary>The weights, float32 under the PyTorch <c>state_dict</c> names.</summary>
    public const string ModelFileName = "model.safetensors";

    /// <summary>The optimizer state.</summary>
    public const string OptimizerFileName = "optimizer.safetensors";

    /// <summary>The subdirectory a checkpoint is written to before it replaces the directory's own.</summary>
    public const string StagingDirectoryName = ".next";

    static readonly JsonSerializerOptions Options = new() { WriteIndented = true };

    static readonly string[] UnitFiles = [ModelFileName, OptimizerFileName, ConfigFileName];

    /// <summary>Where the complete checkpoint in <paramref name="directory"/> keeps <paramref name="fileName"/> (see the class summary).</summary>
    public static string PathOf(string directory, string fileName)
    {
        string staged = Path.Combine(directory, StagingDirectoryName, fileName);
        return File.Exists(Path.Combine(directory, StagingDirectoryName, ConfigFileName)) && File.Exists(staged)
            ? staged
            : Path.Combine(directory, fileName);
    }

    /// <summary>Whether <paramref name="directory"/> holds a checkpoint: a <c>config.json</c> of its own or staged.</summary>
    public static bool Exists(string directory) => File.Exists(PathOf(directory, ConfigFileName));

    /// <summary>
    /// Removes the checkpoint in <paramref name="directory"/> (its files and any staged ones), config first, so that a
    /// removal cut short leaves no config naming files that are gone; other files are left alone.
    /// </summary>
    public static void Delete(string directory)
    {
        string staging = Path.Combine(directory, StagingDirectoryName);
        if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        foreach (var name in new[] { ConfigFileName, OptimizerFileName, ModelFileName }) File.Delete(Path.Combine(directory, name));
    }

    /// <summary>
    /// Moves a completely staged checkpoint into <paramref name="directory"/>, config last (the end of every save,
    /// and the start of the next one after a save was cut short there), and removes a staging directory left
    /// incomplete. Moving again what was already moved is harmless, so this may itself be cut short.
    /// </summary>
    public static void Commit(string directory)
    {
        string staging = Path.Combine(directory, StagingDirectoryName);
        if (File.Exists(Path.Combine(staging, ConfigFileName)))
            foreach (var name in UnitFiles)
                if (File.Exists(Path.Combine(staging, name)))
                    File.Move(Path.Combine(staging, name), Path.Combine(directory, name), overwrite: true);
        if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
    }

    /// <summary>
    /// Writes <paramref name="value"/> as indented JSON. The file appears atomically (written to <c>path.tmp</c>,
    /// flushed to disk, then renamed), so a crash leaves either the old file or the new one.
    /// </summary>
    /// <param name="path">The file to write; its directory is created if missing.</param>
    /// <param name="value">The object to serialize, by its runtime type.</param>
    public static void WriteJsonAtomic(string path, object value)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(value);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, value.GetType(), Options);
        var fullPath = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(fullPath)!);
        var temp = fullPath + ".tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, fullPath, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>Reads a JSON file of a checkpoint directory.</summary>
    /// <typeparam name="T">The type to deserialize.</typeparam>
    /// <param name="path">The file, e.g. <c>checkpoints/step-1000/config.json</c>.</param>
    /// <exception cref="UserInputException">The file is missing, unreadable, not valid JSON for <typeparamref name="T"/>, or <c>null</c>.</exception>
    public static T ReadJson<T>(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            var directory = Path.GetDirectoryName(Path.GetFullPath(path));
            throw Path.GetFileName(path) == ConfigFileName
                ? new UserInputException($"{directory} is not a checkpoint directory (no {ConfigFileName}); pass a directory written by `gateloop train`")
                : new UserInputException($"{path} not found; the checkpoint in {directory} is incomplete, use another one");
        }
        try
        {
            using var stream = File.OpenRead(path);
            return JsonSerializer.Deserialize<T>(stream, Options)
                ?? throw new UserInputException($"{path} holds null instead of a {typeof(T).Name}; the checkpoint is damaged, use another one");
        }
        catch (JsonException e)
        {
            throw new UserInputException($"{path} is not valid {typeof(T).Name} JSON ({UserInputException.Printable(e.Message)}); the checkpoint is damaged, use another one", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserInputException($"cannot read {path}: {e.Message}", e);
        }
    }
}
