using System.Security.Cryptography;

namespace GateLoop.Runtime;

/// <summary>Fetches the Hutter prize archive <c>enwik8.zip</c> and checks its SHA-256.</summary>
public static class Enwik8Download
{
    /// <summary>Where the archive is published.</summary>
    public const string Url = "http://mattmahoney.net/dc/enwik8.zip";

    /// <summary>SHA-256 of the published <c>enwik8.zip</c> (36,445,475 bytes), lower-case hex.</summary>
    public const string Sha256 = "547994d9980ebed1288380d652999f38a14fe291a6247c157c3d33d4932534bc";

    /// <summary>The name the archive is saved under.</summary>
    public const string FileName = "enwik8.zip";

    // The whole-request HttpClient timeout stops covering the body once headers arrive, so a stalled
    // transfer is caught by a per-read timeout instead.
    static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Downloads the archive into <paramref name="toDirectory"/> as <c>enwik8.zip</c> and returns its path. The
    /// bytes stream to a temporary file in the same directory, which is renamed only after the hash matches;
    /// an existing <c>enwik8.zip</c> with the right hash is returned without downloading.
    /// </summary>
    /// <param name="toDirectory">The directory to save into; created if missing.</param>
    /// <param name="source">Where to download from; <see cref="Url"/> by default.</param>
    /// <param name="expectedSha256">The expected SHA-256 in hex; <see cref="Sha256"/> by default.</param>
    /// <param name="progress">Receives bytes done and the total when the server says it.</param>
    /// <param name="ct">Cancels the download; the temporary file is removed.</param>
    /// <exception cref="UserInputException">The download fails or the hash does not match.</exception>
    public static async Task<string> DownloadAsync(
        string toDirectory,
        Uri? source = null,
        string? expectedSha256 = null,
        IProgress<(long Done, long? Total)>? progress = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(toDirectory);
        source ??= new Uri(Url);
        var expected = (expectedSha256 ?? Sha256).ToLowerInvariant();
        OnDisk(toDirectory, () => Directory.CreateDirectory(toDirectory));
        var destination = Path.Combine(toDirectory, FileName);
        if (File.Exists(destination) && await HashFileAsync(destination, ct).ConfigureAwait(false) == expected)
            return destination;

        var temp = Path.Combine(toDirectory, $"{FileName}.{Guid.NewGuid():N}.tmp");
        try
        {
            var actual = await FetchAsync(source, temp, progress, ct).ConfigureAwait(false);
            if (actual != expected)
                throw new UserInputException(
                    $"downloaded {source} has SHA-256 {actual}, expected {expected}; the download is damaged or the file changed: try again, or download it by hand and pass it as Corpus.Load(path)");
            return OnDisk(destination, () =>
            {
                File.Move(temp, destination, overwrite: true);
                return destination;
            });
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Streams <paramref name="source"/> into <paramref name="temp"/>, flushed to disk; returns the SHA-256 in hex.</summary>
    static async Task<string> FetchAsync(Uri source, string temp, IProgress<(long Done, long? Total)>? progress, CancellationToken ct)
    {
        using var http = new HttpClient();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await using var file = OnDisk(temp, () => new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true));
        var buffer = new byte[1 << 16];
        long done = 0;
        try
        {
            using var response = await http.GetAsync(source, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            response.EnsureSuccessStatusCode();
            var total = response.Content.Headers.ContentLength;
            progress?.Report((0, total));
            await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            while (true)
            {
                int read;
                using (var readTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    readTimeout.CancelAfter(ReadTimeout);
                    read = await body.ReadAsync(buffer, readTimeout.Token).ConfigureAwait(false);
                }
                if (read == 0)
                    break;
                hash.AppendData(buffer, 0, read);
                await OnDisk(temp, () => file.WriteAsync(buffer.AsMemory(0, read), ct).AsTask()).ConfigureAwait(false);
                done += read;
                progress?.Report((done, total));
            }
            if (total is { } expectedLength && done != expectedLength)
                throw new IOException($"the connection closed after {done:N0} of {expectedLength:N0} bytes");
        }
        catch (Exception e) when (!ct.IsCancellationRequested && e is HttpRequestException or IOException or OperationCanceledException)
        {
            var reason = e is OperationCanceledException ? "the server stopped responding (timed out)" : e.Message;
            throw new UserInputException(
                $"could not download {source} (no network?): {reason}; download it by hand and pass it as Corpus.Load(path)", e);
        }
        await OnDisk(temp, async () =>
        {
            await file.FlushAsync(ct).ConfigureAwait(false);
            file.Flush(flushToDisk: true);
        }).ConfigureAwait(false);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>Runs a file operation, reporting disk errors as such rather than as network failures.</summary>
    static T OnDisk<T>(string path, Func<T> operation)
    {
        try
        {
            return operation();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw DiskError(path, e);
        }
    }

    /// <inheritdoc cref="OnDisk{T}(string, Func{T})"/>
    static async Task OnDisk(string path, Func<Task> operation)
    {
        try
        {
            await operation().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw DiskError(path, e);
        }
    }

    static UserInputException DiskError(string path, Exception e) =>
        new($"cannot write {path}: {e.Message}; free some disk space or choose another directory", e);

    static async Task<string> HashFileAsync(string path, CancellationToken ct)
    {
        await using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct).ConfigureAwait(false));
    }
}
