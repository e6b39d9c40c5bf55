using System.CommandLine;
using GateLoop.Models.Display;
using GateLoop.Runtime;

namespace GateLoop.Models.Commands;

/// <summary><c>gateloop download enwik8 --to DIR</c>: fetches the Hutter prize archive and checks its hash.</summary>
static class DownloadCommand
{
    public static Command Create()
    {
        // Named in the help's usage and argument lines alike (the accepted values would otherwise stand in the latter).
        var dataset = new Argument<string>("dataset") { Description = "the dataset to fetch: enwik8", HelpName = "dataset" };
        dataset.AcceptOnlyFromAmong("enwik8");
        var to = new Option<string>("--to") { Description = "directory to put enwik8.zip in", DefaultValueFactory = _ => "data" };
        var command = new Command("download", "download a dataset (enwik8) and verify its SHA-256") { dataset, to };
        command.SetAction(async (parse, cancel) =>
        {
            string directory = parse.GetValue(to)!;
            var line = ProgressLine.OnStderr("download", "bytes");
            string path = await Enwik8Download.DownloadAsync(directory, progress: line, ct: cancel);
            line.Clear();
            Console.WriteLine(path);
            return 0;
        });
        return command;
    }
}
