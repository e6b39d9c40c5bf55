using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using GateLoop.Runtime;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// The enwik8 downloader against a loopback HTTP server that serves a small archive made here; nothing leaves the
/// machine.
/// </summary>
public sealed class DownloadTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("gateloop-download-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    /// <summary>A zip holding an <c>enwik8</c> entry of a few KB.</summary>
    static byte[] SmallArchive()
    {
        var text = Enumerable.Range(0, 6000).Select(i => (byte)(' ' + i % 90)).ToArray();
        using var memory = new MemoryStream();
        using (var zip = new ZipArchive(memory, ZipArchiveMode.Create, leaveOpen: true))
        using (var entry = zip.CreateEntry("enwik8").Open())
            entry.Write(text);
        return memory.ToArray();
    }

    static int FreeLoopbackPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Serves one body to every request on http://127.0.0.1:port/ and counts the requests.</summary>
    sealed class LoopbackServer : IDisposable
    {
        readonly HttpListener listener = new();
        readonly Task loop;

        public LoopbackServer(byte[] body)
        {
            Uri = new Uri($"http://127.0.0.1:{FreeLoopbackPort()}/enwik8.zip");
            listener.Prefixes.Add($"http://127.0.0.1:{Uri.Port}/");
            listener.Start();
            loop = Task.Run(async () =>
            {
                while (listener.IsListening)
                {
                    HttpListenerContext context;
                    try
                    {
                        context = await listener.GetContextAsync();
                    }
                    catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                    {
                        return;
                    }
                    Interlocked.Increment(ref requests);
                    context.Response.ContentLength64 = body.Length;
                    await context.Response.OutputStream.WriteAsync(body);
                    context.Response.Close();
                }
            });
        }

        int requests;

        public Uri Uri { get; }

        public int Requests => Volatile.Read(ref requests);

        public void Dispose()
        {
            listener.Stop();
            listener.Close();
            loop.Wait(TimeSpan.FromSeconds(5));
        }
    }

    [Fact]
    public async Task Downloads_checks_the_hash_and_loads_as_a_corpus()
    {
        var archive = SmallArchive();
        var hash = Convert.ToHexStringLower(SHA256.HashData(archive));
        using var server = new LoopbackServer(archive);
        var reports = new List<(long Done, long? Total)>();
        var progress = new SynchronousProgress(reports);

        var path = await Enwik8Download.DownloadAsync(directory, server.Uri, hash.ToUpperInvariant(), progress);

        Assert.Equal(Path.Combine(directory, "enwik8.zip"), path);
        Assert.Equal(archive, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(directory));
        Assert.Equal((archive.Length, (long?)archive.Length), reports[^1]);
        var corpus = Corpus.Load(path);
        Assert.Equal("enwik8.zip (entry enwik8): 5,400 / 300 / 300 bytes", corpus.Describe());

        // Already there with the right hash: no second request.
        Assert.Equal(path, await Enwik8Download.DownloadAsync(directory, server.Uri, hash));
        Assert.Equal(1, server.Requests);
    }

    [Fact]
    public async Task Wrong_hash_fails_clearly_and_leaves_no_file()
    {
        var archive = SmallArchive();
        var actual = Convert.ToHexStringLower(SHA256.HashData(archive));
        var expected = new string('0', 64);
        using var server = new LoopbackServer(archive);

        var e = await Assert.ThrowsAsync<UserInputException>(() => Enwik8Download.DownloadAsync(directory, server.Uri, expected));

        Assert.Equal(
            $"downloaded {server.Uri} has SHA-256 {actual}, expected {expected}; the download is damaged or the file changed: try again, or download it by hand and pass it as Corpus.Load(path)",
            e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(directory));
    }

    [Fact]
    public async Task Unreachable_server_fails_clearly()
    {
        var closed = new Uri($"http://127.0.0.1:{FreeLoopbackPort()}/enwik8.zip");

        var e = await Assert.ThrowsAsync<UserInputException>(() => Enwik8Download.DownloadAsync(directory, closed, Enwik8Download.Sha256));

        Assert.StartsWith($"could not download {closed} (no network?): ", e.Message);
        Assert.EndsWith("; download it by hand and pass it as Corpus.Load(path)", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(directory));
    }

    [Fact]
    public void Published_constants_name_the_hutter_prize_archive()
    {
        Assert.Equal("http://mattmahoney.net/dc/enwik8.zip", Enwik8Download.Url);
        Assert.Matches("^[0-9a-f]{64}$", Enwik8Download.Sha256);
    }

    /// <summary>Records reports on the reporting thread (<see cref="Progress{T}"/> would post them later).</summary>
    sealed class SynchronousProgress(List<(long Done, long? Total)> reports) : IProgress<(long Done, long? Total)>
    {
        public void Report((long Done, long? Total) value) => reports.Add(value);
    }
}
