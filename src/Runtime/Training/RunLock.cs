namespace GateLoop.Runtime;

/// <summary>
/// Holds a training run's output directory for this process, so that a second run on it refuses at once instead of
/// mixing its checkpoints and metrics with the first's. The lock is a byte-range lock on the directory's
/// <c>.lock</c> file, which the operating system drops when the process ends, however it ends: a dead run's lock
/// never stays. The file names its holder, for the refusal. Within one process the lock is shared: the command line
/// takes it before it prints anything, and the trainer's own taking of it then only counts.
/// </summary>
public sealed class RunLock : IDisposable
{
    /// <summary>The lock file in the output directory.</summary>
    public const string FileName = ".lock";

    // Past the holder's line: on Windows a locked range cannot be read, and the refusal reads that line.
    const long LockedByte = 1L << 40;

    // The locks this process holds, by full path of their file, with how many RunLocks share each.
    static readonly Dictionary<string, (FileStream File, int Holders)> Held = [];

    readonly string path;
    bool disposed;

    /// <summary>Takes the lock on <paramref name="directory"/> (which must exist), or shares the one this process holds.</summary>
    /// <exception cref="UserInputException">Another process holds it, or the directory cannot be written.</exception>
    public RunLock(string directory)
    {
        path = Path.GetFullPath(Path.Combine(directory, FileName));
        lock (Held)
        {
            Held[path] = Held.TryGetValue(path, out var held) ? (held.File, held.Holders + 1) : (Take(directory, path), 1);
        }
    }

    static FileStream Take(string directory, string path)
    {
        UserInputException InUse(string holder) => new($"{directory} is in use by {holder}; wait for that run to end, or pass another RunLock(directory)");
        FileStream file;
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
            throw new UserInputException($"cannot write to the output directory {directory} ({e.Message}); pass a writable RunLock(directory)", e);
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
        return file;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (Held)
        {
            if (disposed) return;
            disposed = true;
            var (file, holders) = Held[path];
            if (holders > 1) Held[path] = (file, holders - 1);
            else
            {
                Held.Remove(path);
                file.Dispose();
            }
        }
    }
}
