using System.Diagnostics;
using System.Text;

namespace GateLoop.EndToEnd.Tests;

/// <summary>What one run of the <c>gateloop</c> binary produced.</summary>
public sealed record CliResult(string CommandLine, int ExitCode, byte[] StdoutBytes, string Stderr, TimeSpan Elapsed)
{
    /// <summary>Standard output decoded as UTF-8 (use <see cref="StdoutBytes"/> for raw bytes).</summary>
    public string Stdout => Encoding.UTF8.GetString(StdoutBytes);

    /// <summary>Everything about the run, for assertion messages.</summary>
    public override string ToString() =>
        $"$ gateloop {CommandLine}\nexit code {ExitCode} after {Elapsed.TotalSeconds:F1} s\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>Runs the real <c>gateloop</c> binary (built next to the tests) as a user would: <c>dotnet gateloop.dll …</c>.</summary>
public static class Cli
{
    /// <summary>The binary under test.</summary>
    public static string DllPath { get; } = Path.Combine(AppContext.BaseDirectory, "gateloop.dll");

    /// <summary>The <c>dotnet</c> host that runs the binary.</summary>
    public static string Host =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    /// <summary>
    /// Runs <c>gateloop <paramref name="args"/></c> in <paramref name="workingDirectory"/>, with stdin closed and stdout
    /// captured as raw bytes; kills it and throws after <paramref name="timeout"/> (default 2 minutes).
    /// </summary>
    public static CliResult Run(string workingDirectory, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        Assert.True(File.Exists(DllPath), $"{DllPath} is missing; the ProjectReference to src/Models should put it there");
        return Dotnet(workingDirectory, [DllPath, .. args], timeout);
    }

    const string Setpriv = "/usr/bin/setpriv";

    /// <summary>
    /// Runs like <see cref="Run"/>, but held to file permissions. Root ignores them through two capabilities
    /// (DAC_OVERRIDE, DAC_READ_SEARCH), so as root the binary runs under setpriv without them: still root, thus
    /// able to read the build wherever it lies, yet refused what the permission bits refuse. Null when the tests
    /// run as root and setpriv is not installed.
    /// </summary>
    public static CliResult? RunHeldToPermissions(string workingDirectory, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        if (!Environment.IsPrivilegedProcess) return Run(workingDirectory, args, timeout);
        if (!File.Exists(Setpriv)) return null;
        return Exec(Setpriv, workingDirectory, ["--bounding-set=-dac_override,-dac_read_search", "--", Host, DllPath, .. args], timeout);
    }

    const string Script = "/usr/bin/script";

    /// <summary>
    /// Runs <c>gateloop <paramref name="args"/></c> on a pseudo-terminal (util-linux's <c>script</c>), as from an
    /// interactive shell, and returns what the terminal showed: stdout and stderr together, with the terminal's
    /// \r\n line ends. The terminal reports 0 columns, as a serial console or a container without a size does.
    /// <paramref name="environment"/> holds NAME=value settings; TERM is xterm, NO_COLOR and COLUMNS unset.
    /// </summary>
    public static CliResult RunInTerminal(string workingDirectory, IEnumerable<string> args, params string[] environment)
    {
        Assert.True(File.Exists(Script), $"{Script} is missing: install util-linux's script (Debian: bsdutils) to run the terminal tests");
        static string Quote(string word) => "'" + word.Replace("'", "'\\''") + "'";
        string command = string.Join(" ", ((string[])["env", "-u", "NO_COLOR", "-u", "COLUMNS", "TERM=xterm", .. environment, Host, DllPath, .. args]).Select(Quote));
        return Exec(Script, workingDirectory, ["-qec", command, "/dev/null"]);
    }

    /// <summary>Runs <c>dotnet <paramref name="args"/></c> the same way (for pack, build and run of other projects).</summary>
    public static CliResult Dotnet(string workingDirectory, IEnumerable<string> args, TimeSpan? timeout = null) =>
        Exec(Host, workingDirectory, args, timeout);

    /// <summary>
    /// Runs the program <paramref name="fileName"/> the same way (an installed tool's shim, a launcher), with
    /// <paramref name="environment"/> added to its environment.
    /// </summary>
    public static CliResult Exec(string fileName, string workingDirectory, IEnumerable<string> args, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var list = args.ToList();
        var info = StartInfo(fileName, workingDirectory, list, environment);
        string commandLine = string.Join(" ", list.Skip(list.IndexOf(DllPath) + 1)
            .Select(a => a.Length == 0 || a.Contains(' ') ? $"\"{a}\"" : a));
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {fileName}");
        process.StandardInput.Close();
        var stdout = new MemoryStream();
        var readOut = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        var readErr = process.StandardError.ReadToEndAsync();
        var limit = timeout ?? TimeSpan.FromMinutes(2);
        if (!process.WaitForExit(limit))
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.WaitForExit();
            Task.WaitAll([readOut, readErr], TimeSpan.FromSeconds(10));
            var partial = new CliResult(commandLine, -1, stdout.ToArray(), readErr.IsCompletedSuccessfully ? readErr.Result : "", clock.Elapsed);
            throw new TimeoutException($"gateloop ran longer than {limit.TotalSeconds:F0} s and was killed\n{partial}");
        }
        Task.WaitAll([readOut, readErr], TimeSpan.FromSeconds(30));
        return new CliResult(commandLine, process.ExitCode, stdout.ToArray(), readErr.Result, clock.Elapsed);
    }

    // Every stream redirected, arguments passed as given.
    static ProcessStartInfo StartInfo(string fileName, string workingDirectory, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        // The CLI prints stack traces only with GATELOOP_DEBUG; the tests check what a user sees without it.
        info.Environment.Remove("GATELOOP_DEBUG");
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) info.Environment[name] = value;
        return info;
    }

    /// <summary>Starts <c>gateloop <paramref name="args"/></c> and leaves it running, for tests that signal or kill it.</summary>
    public static RunningCli Start(string workingDirectory, IEnumerable<string> args)
    {
        Assert.True(File.Exists(DllPath), $"{DllPath} is missing; the ProjectReference to src/Models should put it there");
        var list = args.ToList();
        var info = StartInfo(Host, workingDirectory, [DllPath, .. list]);
        return new RunningCli(Process.Start(info) ?? throw new InvalidOperationException($"could not start {Host}"), string.Join(" ", list));
    }

    /// <summary>Starts the program <paramref name="fileName"/> (a launcher) as <see cref="Exec"/> runs it, and leaves it running.</summary>
    public static RunningCli StartExec(string fileName, string workingDirectory, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var list = args.ToList();
        var info = StartInfo(fileName, workingDirectory, list, environment);
        return new RunningCli(Process.Start(info) ?? throw new InvalidOperationException($"could not start {fileName}"), string.Join(" ", list));
    }

    /// <summary>Runs and asserts exit code 0.</summary>
    public static CliResult Succeed(string workingDirectory, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        var result = Run(workingDirectory, args, timeout);
        Assert.True(result.ExitCode == 0, $"expected success\n{result}");
        return result;
    }
}

/// <summary>A running <c>gateloop</c> process: its output so far, its peak memory, signals, and its end.</summary>
public sealed class RunningCli : IDisposable
{
    readonly Process process;
    readonly MemoryStream stdout = new();
    readonly Task readOut;
    readonly Task<string> readErr;
    readonly Stopwatch clock = Stopwatch.StartNew();
    readonly string commandLine;

    internal RunningCli(Process process, string commandLine)
    {
        this.process = process;
        this.commandLine = commandLine;
        process.StandardInput.Close();
        readOut = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        readErr = process.StandardError.ReadToEndAsync();
    }

    /// <summary>The process id.</summary>
    public int Id => process.Id;

    /// <summary>Whether it has ended.</summary>
    public bool HasExited => process.HasExited;

    /// <summary>Sends a POSIX signal (SIGTERM is 15, SIGHUP 1, SIGINT 2, SIGKILL 9).</summary>
    public void Signal(int signal) => Assert.Equal(0, kill(process.Id, signal));

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int sig);

    /// <summary>The peak resident memory so far (VmHWM), or 0 once the process is gone.</summary>
    public long PeakBytes()
    {
        try
        {
            var line = File.ReadLines($"/proc/{process.Id}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>Waits for the end (killing the process after <paramref name="timeout"/>) and returns what it printed.</summary>
    public CliResult WaitForExit(TimeSpan timeout)
    {
        bool ended = process.WaitForExit(timeout);
        if (!ended) process.Kill(entireProcessTree: true);
        process.WaitForExit();
        Task.WaitAll([readOut, readErr], TimeSpan.FromSeconds(30));
        var result = new CliResult(commandLine, ended ? process.ExitCode : -1, stdout.ToArray(), readErr.Result, clock.Elapsed);
        return ended ? result : throw new TimeoutException($"gateloop ran longer than {timeout.TotalSeconds:F0} s and was killed\n{result}");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        process.Dispose();
    }
}
