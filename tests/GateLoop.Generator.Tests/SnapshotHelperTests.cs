using Xunit.Sdk;

namespace GateLoop.Generator.Tests;

/// <summary>The snapshot helper's contract: file names, line-ending normalization, received files on mismatch.</summary>
public sealed class SnapshotHelperTests : IDisposable
{
    readonly string folder = Path.Combine(Path.GetTempPath(), "gateloop-snapshot-" + Guid.NewGuid().ToString("N")[..8]);

    public SnapshotHelperTests() => Directory.CreateDirectory(folder);

    // Match resolves Snapshots/ beside the calling source file; point it at a temp "source file" instead.
    string SourcePath => Path.Combine(folder, "Tests.cs");
    string Verified => Path.Combine(folder, "Snapshots", "Case.verified.cs");
    string Received => Path.Combine(folder, "Snapshots", "Case.received.cs");
    static bool Accepting => Environment.GetEnvironmentVariable(Snapshot.AcceptVariable) is "1" or "true";

    [Fact]
    public void MissingSnapshot_WritesReceivedAndFails()
    {
        if (Accepting)
        {
            Snapshot.Match("a\n", "Case", SourcePath);
            Assert.Equal("a\n", File.ReadAllText(Verified));
            return;
        }
        var error = Assert.Throws<XunitException>(() => Snapshot.Match("a\n", "Case", SourcePath));
        Assert.Contains(Snapshot.AcceptVariable + "=1", error.Message);
        Assert.Equal("a\n", File.ReadAllText(Received));
        Assert.False(File.Exists(Verified));
    }

    [Fact]
    public void Mismatch_ShowsTheFirstDifferentLine_AndMatchCleansUp()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Verified)!);
        File.WriteAllText(Verified, "same\r\nold\r\n"); // verified files may have been checked out with CRLF
        Snapshot.Match("same\nold\n", "Case", SourcePath);
        if (Accepting) return;

        var error = Assert.Throws<XunitException>(() => Snapshot.Match("same\nnew\n", "Case", SourcePath));
        Assert.Contains("line 2", error.Message);
        Assert.Contains("new", File.ReadAllText(Received));

        Snapshot.Match("same\r\nold\r\n", "Case", SourcePath);
        Assert.False(File.Exists(Received), "a later match removes the stale received file");
    }

    public void Dispose()
    {
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }
}
