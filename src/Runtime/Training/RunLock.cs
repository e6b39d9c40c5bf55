namespace GateLoop.Runtime;

/// <summary>
/// Holds a training run's output directory for this process, so that a second run on it refuses at once instead of
/// mixing its checkpoints and metrics with the first's. The lock is a byte-range lock on the directory's
/// <c>.lock</c> file, which the operating system drops when the process ends, however it ends: a dead run's lock
/// never stays. The file names its holder, for the refusal.
/// </summary>
public sealed class RunLock : IDisposable
{
    /// <summary>The lock file in the output directory.</summary>
    public const string FileName = ".lock";

    // Past the holder's line: on Windows a locked range cannot be read, and the refusal reads that line.
    const long LockedByte = 1L << 40;

    readonly FileStream file;

    /// <summary>Takes the lock on <paramref name="directory"/> (which must exist).</summary>
    /// <exception cref="UserInputException">Another process holds it, or the directory cannot be written.</exception>
    public RunLock(string directory)
    {
        string path = Path.Combine(directory, FileName);
        UserInputException InUse(string holder) => new($"{directory} is in use by {holder}; wait for that run to end, or pass another --out");
        try
        {
            // macOS has no byte-range locks in .NET; an exclusive open (flock) holds as well, but hides the holder's line.
            file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, OperatingSystem.IsMacOS() ? FileShare.None : FileShare.ReadWrite | FileShare.Delete);
        }
        catch (IOException) when (OperatingSystem.IsMacOS() && File.Exists(path))
        {
            throw InUse("another process");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserInputException($"cannot write to the output directory {directory} ({e.Message}); pass a writable --out", e);
        }
        if (!OperatingSystem.IsMacOS())
        {
            try
            {
                file.Lock(LockedByte, 1);
            }
            catch (IOException)
            {
                using var reader = new StreamReader(file);
                throw InUse(reader.ReadLine() is { Length: > 0 } line ? line : "another process");
            }
        }
        file.SetLength(0);
        using (var writer = new StreamWriter(file, leaveOpen: true))
            writer.WriteLine($"gateloop train (process {Environment.ProcessId} on {Environment.MachineName}, since {DateTime.Now:yyyy-MM-dd HH:mm:ss})");
        file.Flush();
    }

    /// <inheritdoc />
    public void Dispose() => file.Dispose();
}
