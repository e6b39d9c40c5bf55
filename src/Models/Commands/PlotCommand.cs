using System.CommandLine;
using GateLoop.Models.Display;
using GateLoop.Runtime;

namespace GateLoop.Models.Commands;

/// <summary><c>gateloop plot a/metrics.jsonl b/metrics.jsonl --out cmp.png</c>: training curves of several runs together.</summary>
static class PlotCommand
{
    public static Command Create()
    {
        var files = new Argument<string[]>("metrics") { Description = "metrics.jsonl files (or run directories) to plot together", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out") { Description = "PNG to write", DefaultValueFactory = _ => "comparison.png" };
        var command = new Command("plot", "plot bits per character against step for one or more runs") { files, output };
        command.SetAction(parse =>
        {
            string png = parse.GetValue(output)!;
            if (Directory.Exists(png))
                throw new UserInputException($"--out {png} is a directory; pass the PNG's file name, e.g. --out {Path.Combine(png, "comparison.png")}");
            Common.CheckWritable(Path.GetDirectoryName(Path.GetFullPath(png))!, "--out");
            var runs = parse.GetValue(files)!.Select(path =>
            {
                string metrics = Directory.Exists(path) ? Path.Combine(path, Trainer.MetricsFileName) : path;
                if (!File.Exists(metrics)) throw new UserInputException($"'{metrics}' does not exist; pass a metrics.jsonl written by train, or its directory");
                // Label each run by its directory, the name a user gave it with --out.
                string label = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(metrics))) ?? metrics;
                return (label, metrics);
            }).ToList();
            LossPlot.Write(runs, png);
            Console.WriteLine(Path.GetFullPath(png));
            return 0;
        });
        return command;
    }
}
