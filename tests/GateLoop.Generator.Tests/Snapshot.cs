using System.Runtime.CompilerServices;
using System.Text;
using Xunit.Sdk;

namespace GateLoop.Generator.Tests;

/// <summary>
/// A tiny stand-in for Verify (which cannot be restored here), with Verify's file conventions so it can be swapped
/// for it: <c>Snapshots/&lt;name&gt;.verified.cs</c> next to the test source is the accepted output; a mismatch writes
/// <c>&lt;name&gt;.received.cs</c> beside it (git-ignored) and fails. Set <c>GATELOOP_ACCEPT_SNAPSHOTS=1</c> to accept:
/// received output then overwrites the verified file (Verify's AutoVerify).
/// </summary>
public static class Snapshot
{
    /// <summary>The environment variable that accepts received snapshots.</summary>
    public const string AcceptVariable = "GATELOOP_ACCEPT_SNAPSHOTS";

    static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>Compares <paramref name="actual"/> with the verified snapshot <paramref name="name"/>.</summary>
    /// <param name="path">The calling test's source file; snapshots live in a Snapshots folder beside it.</param>
    public static void Match(string actual, string name, [CallerFilePath] string path = "")
    {
        string folder = Path.Combine(SourceFolder(path), "Snapshots");
        string verified = Path.Combine(folder, name + ".verified.cs");
        string received = Path.Combine(folder, name + ".received.cs");
        actual = Normalize(actual);
        string? expected = File.Exists(verified) ? Normalize(File.ReadAllText(verified)) : null;

        if (expected == actual)
        {
            File.Delete(received);
            return;
        }
        Directory.CreateDirectory(folder);
        if (Environment.GetEnvironmentVariable(AcceptVariable) is "1" or "true")
        {
            File.WriteAllText(verified, actual, Utf8NoBom);
            File.Delete(received);
            return;
        }
        File.WriteAllText(received, actual, Utf8NoBom);
        throw new XunitException(
            (expected is null ? $"No verified snapshot '{name}' yet." : $"Snapshot '{name}' differs from the verified one{FirstDifference(expected, actual)}.") +
            $"\n  received: {received}\n  verified: {verified}\n" +
            $"Review the received file; to accept it, rename it to the verified name or rerun with {AcceptVariable}=1.");
    }

    // CallerFilePath is the compile-time path; under a path map (e.g. ContinuousIntegrationBuild's /_/) it does not
    // exist here, so find the source file by walking up from the test assembly instead.
    static string SourceFolder(string path)
    {
        string folder = Path.GetDirectoryName(path)!;
        if (Directory.Exists(folder)) return folder;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, Path.GetFileName(path)))) return d.FullName;
        throw new InvalidOperationException($"cannot find the folder of {path} (snapshots live beside it)");
    }

    static string Normalize(string text) => text.Replace("\r\n", "\n").Replace('\r', '\n').TrimStart('\uFEFF');

    static string FirstDifference(string expected, string actual)
    {
        string[] e = expected.Split('\n'), a = actual.Split('\n');
        for (int i = 0; i < Math.Max(e.Length, a.Length); i++)
        {
            string? x = i < e.Length ? e[i] : null, y = i < a.Length ? a[i] : null;
            if (x != y) return $" at line {i + 1}:\n  verified: {x ?? "<end of file>"}\n  received: {y ?? "<end of file>"}";
        }
        return "";
    }
}
