using System.CommandLine;
using GateLoop.Runtime;

namespace GateLoop.Models.Commands;

/// <summary><c>gateloop download enwik8 --to DIR</c>: fetches the Hutter prize archive and checks its hash.</summary>
static class DownloadCommand
{
    public static Command Create()
    {
        var dataset = new Argument<string>("dataset") { Description = "the dataset to fetch: enwik8" };
        dataset.AcceptOnlyFromAmong("enwik8");
        var to = new Option<string>("--to") { Description = "directory to put enwik8.zip in", DefaultValueFactory = _ => "data" };
        var command = new Command("download", "download a dataset (enwik8) and verify its SHA-256") { dataset, to };
        command.SetAction(async (parse, cancel) =>
        {
            string directory = parse.GetValue(to)!;
            var progress = new Progress<(long Done, long? Total)>(p =>
                Console.Error.Write(p.Total is long total ? $"\r{p.Done * 100 / Math.Max(total, 1),3}% of {total:N0} bytes" : $"\r{p.Done:N0} bytes"));
            string path = await Enwik8Download.DownloadAsync(directory, progress: progress, ct: cancel);
            Console.Error.WriteLine();
            Console.WriteLine(path);
            return 0;
        });
        return command;
    }
}
