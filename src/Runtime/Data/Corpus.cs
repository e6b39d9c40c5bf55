using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.IO.Hashing;

namespace GateLoop.Runtime;

/// <summary>
/// The bytes of a training corpus, split into train, validation and test parts. enwik8 is split 90M/5M/5M as in
/// the literature; any other file in proportion 90% / 5% / 5%.
/// </summary>
public sealed class Corpus
{
    const int Enwik8Length = 100_000_000;
    const int Enwik8TrainEnd = 90_000_000;
    const int Enwik8ValidEnd = 95_000_000;

    Corpus(byte[] bytes, string source, bool enwik8Layout, string? filePath = null, string? entry = null)
    {
        FilePath = filePath;
        Entry = entry;
        var (trainEnd, validEnd, end) = SplitPoints(bytes.Length, enwik8Layout);
        Train = bytes.AsMemory(0, trainEnd);
        Valid = bytes.AsMemory(trainEnd, validEnd - trainEnd);
        Test = bytes.AsMemory(validEnd, end - validEnd);
        Source = source;
    }

    /// <summary>The training bytes.</summary>
    public ReadOnlyMemory<byte> Train { get; }

    /// <summary>The validation bytes.</summary>
    public ReadOnlyMemory<byte> Valid { get; }

    /// <summary>The test bytes.</summary>
    public ReadOnlyMemory<byte> Test { get; }

    /// <summary>Where the bytes came from, e.g. <c>enwik8.zip (entry enwik8)</c>.</summary>
    public string Source { get; }

    /// <summary>The full path of the file the corpus was loaded from; null for the default corpus and in-memory data.</summary>
    public string? FilePath { get; }

    /// <summary>The file read inside a <c>.zip</c> archive (its full name there); null for other sources.</summary>
    public string? Entry { get; }

    /// <summary>
    /// Loads a corpus file: raw bytes, a <c>.gz</c> file, or a <c>.zip</c> archive (the entry
    /// <paramref name="entry"/>, else the one named <c>enwik8</c> if there is one, else its first file). A file
    /// whose name starts with <c>enwik8</c> and that holds at least 10⁸ bytes is cut to its first 10⁸ bytes and
    /// split 90M/5M/5M.
    /// </summary>
    /// <param name="path">The file to read.</param>
    /// <param name="entry">The file to read inside a <c>.zip</c> archive, by its full name there; null for the default.</param>
    /// <exception cref="UserInputException">
    /// The file is missing, a directory, empty, not a readable archive or damaged; the archive has no file
    /// <paramref name="entry"/>, or <paramref name="entry"/> is given for a file that is not a <c>.zip</c>.
    /// </exception>
    public static Corpus Load(string path, string? entry = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var name = Path.GetFileName(path);
        if (Directory.Exists(path))
            throw new UserInputException($"data file {path} is a directory; pass one of the files in it with Corpus.Load(path)");
        if (!File.Exists(path))
            throw new UserInputException(
                $"data file {path} not found; pass an existing file with Corpus.Load(path), or run `gateloop download enwik8`");
        if (new FileInfo(path).Length == 0)
            throw new UserInputException($"data file {path} is empty; pass a non-empty file with Corpus.Load(path)");
        var isZip = name.EndsWith(".zip", StringComparison.OrdinalIgnoreCase);
        if (entry is not null && !isZip)
            throw new UserInputException($"Corpus.Load(entry) {entry} picks a file inside a .zip archive, and data file {path} is not one; leave Corpus.Load(entry) out");
        byte[] bytes;
        var source = name;
        try
        {
            if (isZip)
            {
                (bytes, entry, var files) = ReadZip(path, entry);
                source = files == 1 ? $"{name} (entry {entry})" : $"{name} (entry {entry} of its {files} files; Corpus.Load(entry) picks another)";
            }
            else if (name.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
                bytes = ReadGzip(path);
            else
                bytes = File.ReadAllBytes(path);
        }
        catch (InvalidDataException e)
        {
            throw new UserInputException(
                $"cannot read data file {path} as a {Path.GetExtension(name).TrimStart('.')} archive ({e.Message}); the file is damaged or not an archive: download it again, or pass the unpacked file with Corpus.Load(path)",
                e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserInputException($"cannot read data file {path}: {e.Message}", e);
        }
        if (bytes.Length == 0)
            throw new UserInputException($"data file {path} unpacks to no bytes; pass an archive that holds the corpus with Corpus.Load(path)");
        var enwik8 = bytes.Length >= Enwik8Length
            && (name.StartsWith("enwik8", StringComparison.OrdinalIgnoreCase)
                || Path.GetFileName(entry ?? "").StartsWith("enwik8", StringComparison.OrdinalIgnoreCase));
        return new Corpus(bytes, source, enwik8, Path.GetFullPath(path), entry);
    }

    /// <summary>
    /// The default corpus: the IntelliSense XML files of the <c>Microsoft.NETCore.App</c> reference pack of the
    /// running .NET installation (about 30 MB of XML and English), concatenated in file-name order.
    /// </summary>
    /// <exception cref="UserInputException">No reference pack is installed next to the running runtime.</exception>
    public static Corpus LoadDefault()
    {
        var (directory, files) = FindReferencePackXml();
        var total = files.Sum(f => f.Length);
        if (total > Array.MaxLength)
            throw new UserInputException(
                $"the reference-pack XML in {directory} is too large ({total:N0} bytes) to use as the default corpus; pass a file with Corpus.Load(path)");
        var bytes = new byte[total];
        var at = 0;
        foreach (var file in files)
        {
            using var stream = file.OpenRead();
            stream.ReadExactly(bytes, at, (int)file.Length);
            at += (int)file.Length;
        }
        return new Corpus(bytes, $"{files.Length} reference-pack XML files in {directory}", enwik8Layout: false);
    }

    /// <summary>A corpus over bytes already in memory, split in proportion (never the enwik8 layout).</summary>
    /// <param name="bytes">The corpus bytes; kept, not copied.</param>
    /// <param name="source">A description for <see cref="Describe"/>.</param>
    /// <exception cref="UserInputException"><paramref name="bytes"/> is empty.</exception>
    public static Corpus FromBytes(byte[] bytes, string source)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentNullException.ThrowIfNull(source);
        if (bytes.Length == 0)
            throw new UserInputException($"data from {source} holds no bytes; pass a non-empty file with Corpus.Load(path)");
        return new Corpus(bytes, source, enwik8Layout: false);
    }

    /// <summary>
    /// One line naming the source and the split sizes, e.g.
    /// <c>enwik8.zip (entry enwik8): 90,000,000 / 5,000,000 / 5,000,000 bytes</c>.
    /// </summary>
    public string Describe() => string.Format(
        CultureInfo.InvariantCulture, "{0}: {1:N0} / {2:N0} / {3:N0} bytes", Source, Train.Length, Valid.Length, Test.Length);

    /// <summary>
    /// Where train ends, where validation ends, and where the used bytes end: 90M/95M/100M for the enwik8 layout,
    /// else 90% / 95% / all of <paramref name="length"/> (rounded down).
    /// </summary>
    internal static (int TrainEnd, int ValidEnd, int End) SplitPoints(int length, bool enwik8Layout) =>
        enwik8Layout
            ? (Enwik8TrainEnd, Enwik8ValidEnd, Enwik8Length)
            : ((int)(length * 90L / 100), (int)(length * 95L / 100), length);

    static (byte[] Bytes, string Entry, int Files) ReadZip(string path, string? wanted)
    {
        using var archive = ZipFile.OpenRead(path);
        var files = archive.Entries.Where(e => !e.FullName.EndsWith('/')).ToList();
        if (files.Count == 0)
            throw new UserInputException($"zip archive {path} holds no files; pass a zip with the corpus inside, or the corpus itself, with Corpus.Load(path)");
        var entry = wanted is null
            ? files.Find(e => e.FullName == "enwik8") ?? files[0]
            : files.Find(e => e.FullName == wanted) ?? throw new UserInputException(
                $"zip archive {path} has no file {wanted}; pass one of its {files.Count} files with Corpus.Load(entry): " +
                string.Join(", ", files.Take(20).Select(e => e.FullName)) + (files.Count > 20 ? ", …" : ""));
        if (entry.Length > Array.MaxLength)
            throw new UserInputException(
                $"entry {entry.FullName} of {path} is too large ({entry.Length:N0} bytes); pass a file under 2 GB with Corpus.Load(path)");
        var bytes = new byte[entry.Length];
        using var stream = entry.Open();
        stream.ReadExactly(bytes);
        // ZipArchive does not compare the entry's CRC-32 with what it unpacked, so damaged bytes would load silently.
        if (Crc32.HashToUInt32(bytes) != entry.Crc32)
            throw new UserInputException(
                $"entry {entry.FullName} of {path} is damaged (its CRC-32 does not match what it unpacks to); download the archive again, or pass the unpacked file with Corpus.Load(path)");
        return (bytes, entry.FullName, files.Count);
    }

    static byte[] ReadGzip(string path)
    {
        using var file = File.OpenRead(path);
        using var memory = new MemoryStream();
        using (var gzip = new GZipStream(file, CompressionMode.Decompress, leaveOpen: true))
            gzip.CopyTo(memory);
        // GZipStream ignores the trailer, so a truncated file would load as its readable prefix. The trailer
        // (RFC 1952) is the CRC-32 and the length mod 2^32 of the unpacked bytes; with several members
        // concatenated it covers only the last one, so such a file fails here too.
        var bytes = memory.ToArray();
        Span<byte> trailer = stackalloc byte[8];
        bool intact = file.Length >= trailer.Length;
        if (intact)
        {
            file.Seek(-trailer.Length, SeekOrigin.End);
            file.ReadExactly(trailer);
            intact = BinaryPrimitives.ReadUInt32LittleEndian(trailer) == Crc32.HashToUInt32(bytes)
                && BinaryPrimitives.ReadUInt32LittleEndian(trailer[4..]) == (uint)bytes.Length;
        }
        if (!intact)
            throw new UserInputException(
                $"data file {path} is truncated or damaged (its gzip trailer does not match the {bytes.Length:N0} bytes it unpacks to); download it again, or if it is several gzip files concatenated, unpack it and pass the raw file with Corpus.Load(path)");
        return bytes;
    }

    static (string Directory, FileInfo[] Files) FindReferencePackXml()
    {
        const string hint = "pass a corpus with Corpus.Load(path) (or run `gateloop download enwik8`)";
        var root = DotnetRoot()
            ?? throw new UserInputException($"cannot locate a .NET SDK installation to find the default corpus; {hint}");
        var packs = Path.Combine(root, "packs", "Microsoft.NETCore.App.Ref");
        var version = HighestVersion(packs, prefix: "");
        var frameworks = version is null ? null : Path.Combine(packs, version, "ref");
        var framework = frameworks is null ? null : HighestVersion(frameworks, prefix: "net");
        if (framework is null)
            throw new UserInputException(
                $"no Microsoft.NETCore.App reference pack under {packs} (the default corpus is its XML documentation; it comes with the .NET SDK); {hint}");
        var directory = Path.Combine(frameworks!, framework);
        var files = new DirectoryInfo(directory).GetFiles("*.xml").OrderBy(f => f.Name, StringComparer.Ordinal).ToArray();
        if (files.Length == 0 || files.All(f => f.Length == 0))
            throw new UserInputException($"the reference pack folder {directory} holds no XML documentation; {hint}");
        return (directory, files);
    }

    // The SDK that runs this process: the shared framework lives in <root>/shared/Microsoft.NETCore.App/<version>/.
    // A self-contained single-file build has no such path; it falls back to DOTNET_ROOT and the dotnet on PATH.
    static string? DotnetRoot()
    {
        var runtime = AppContext.GetData("FX_DEPS_FILE") as string ?? "";
        if (runtime.Contains("Microsoft.NETCore.App", StringComparison.Ordinal))
            return Path.GetFullPath(Path.Combine(Path.GetDirectoryName(runtime)!, "..", "..", ".."));
        if (Environment.GetEnvironmentVariable("DOTNET_ROOT") is { Length: > 0 } env && Directory.Exists(env))
            return env;
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, "dotnet")).FirstOrDefault(File.Exists);
        return onPath is null ? null : Path.GetDirectoryName(new FileInfo(onPath).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? onPath);
    }

    /// <summary>The subdirectory of <paramref name="parent"/> named <paramref name="prefix"/> + the highest version, or null.</summary>
    static string? HighestVersion(string parent, string prefix)
    {
        if (!Directory.Exists(parent))
            return null;
        return new DirectoryInfo(parent).GetDirectories()
            .Select(d => (d.Name, Key: VersionKey(d.Name, prefix)))
            .Where(x => x.Key.Version is not null)
            .OrderBy(x => x.Key.Version)
            .ThenBy(x => x.Key.IsRelease)
            .ThenBy(x => x.Name, StringComparer.Ordinal)
            .Select(x => x.Name)
            .LastOrDefault();
    }

    /// <summary>
    /// Parses names like <c>10.0.12</c>, <c>10.0.0-rc.1.25451.107</c> or <c>net10.0</c>; a release sorts after its
    /// previews.
    /// </summary>
    static (Version? Version, bool IsRelease) VersionKey(string name, string prefix)
    {
        if (!name.StartsWith(prefix, StringComparison.Ordinal))
            return (null, false);
        var text = name[prefix.Length..];
        var dash = text.IndexOf('-');
        var numeric = dash < 0 ? text : text[..dash];
        return Version.TryParse(numeric, out var version) ? (version, dash < 0) : (null, false);
    }
}
