using System.CommandLine;
using System.Text.RegularExpressions;
using GateLoop.Models.Commands;
using GateLoop.Runtime;

namespace GateLoop.Models;

/// <summary>The <c>gateloop</c> command line: train, evaluate, sample and time the declared models.</summary>
static class Program
{
    // Errors of a rank other than 0 of a job say which rank they come from.
    static string Rank => Launch.FromEnvironment() is { Rank: > 0 } launch ? $"rank {launch.Rank}: " : "";

    /// <summary>The commands and their options: what the parser accepts, and what --help and the README describe.</summary>
    internal static RootCommand Commands() => new("GateLoop language models compiled to specialized kernels: train, evaluate and sample on CPU or CUDA.")
    {
        ModelsCommand.Create(),
        TrainCommand.Create(),
        SampleCommand.Create(),
        EvalCommand.Create(),
        DownloadCommand.Create(),
        PlotCommand.Create(),
        BenchCommand.Create(),
        DoctorCommand.Create(),
        ServeCommand.Create(),
    };

    static int Main(string[] args)
    {
        // mpirun gives a rank's output a pseudo-terminal that ends in a log or a pipe: without a terminal type, .NET does
        // not start it with the keypad escape sequence (ESC [?1h ESC =), which would come before a --json object.
        if (Launch.FromEnvironment().Variable.Length > 0) Environment.SetEnvironmentVariable("TERM", "dumb");
        var root = Commands();
        try
        {
            // Settings read once at start-up, read now: a mistyped one is refused before any work, in one line.
            _ = HostSimd.LaneBits;
            var parse = root.Parse(args);
            // A mistyped option is bad input like any other: one line, non-zero exit.
            if (parse.Errors.Count > 0 && !args.Any(a => a is "-h" or "--help" or "-?"))
            {
                // At the top level the parser's first error is "Required command was not provided", even for a
                // mistyped command: name the word it did not know, and the commands it would have.
                if (parse.CommandResult.Command == root)
                {
                    string problem = parse.UnmatchedTokens.FirstOrDefault() is { } token ? $"unknown command '{token}'" : "no command given";
                    Console.Error.WriteLine($"gateloop: {problem}; the commands are {string.Join(", ", root.Subcommands.Select(c => c.Name))} (see: gateloop --help)");
                    return 2;
                }
                // The parser lists accepted values one per line; one line keeps the error in one piece.
                string message = Regex.Replace(parse.Errors[0].Message, @":?\s*[\r\n]+\s*", m => m.Value.StartsWith(':') ? ": " : ", ");
                Console.Error.WriteLine($"gateloop: {message} (see: gateloop {parse.CommandResult.Command.Name} --help)");
                return 2;
            }
            // Ctrl+C is handled by the commands (train checkpoints before it exits), so no forced termination.
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
        }
        catch (TypeInitializationException e) when (e.InnerException is UserInputException)
        {
            Console.Error.WriteLine($"gateloop: {Rank}{e.InnerException.Message}");
            return 2;
        }
        catch (Exception e) when (e is UserInputException or DeviceUnavailableException or WorldException)
        {
            // Of a refusal every rank makes alike, rank 0's line is enough. The others leave a little later: a launcher
            // ends the job at the first failed rank, and rank 0's line could be lost if that were another.
            if (e is WorldException { EveryRank: true } && Rank.Length > 0)
            {
                Thread.Sleep(TimeSpan.FromSeconds(5));
                return 2;
            }
            Console.Error.WriteLine($"gateloop: {Rank}{Flags.Reword(e.Message)}");
            return 2;
        }
        catch (Exception e) when (Environment.GetEnvironmentVariable("GATELOOP_DEBUG") is null)
        {
            Console.Error.WriteLine($"gateloop: {Rank}unexpected error ({e.GetType().Name}): {e.Message}; set GATELOOP_DEBUG=1 for details");
            return 1;
        }
    }
}
