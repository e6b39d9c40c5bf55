using System.Text.Json;

namespace GateLoop.Models.Display;

/// <summary>Plots bits per character against step from one or more <c>metrics.jsonl</c> files into a PNG.</summary>
static class LossPlot
{
    static List<JsonElement> Rows(string path)
    {
        try
        {
            var rows = File.ReadLines(path).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            if (rows.Count == 0) throw new GateLoop.Runtime.UserInputException($"'{path}' has no metrics yet");
            if (rows.Any(r => !r.TryGetProperty("step", out _) || !r.TryGetProperty("train_loss", out _) || !r.TryGetProperty("valid_loss", out _)))
                throw new GateLoop.Runtime.UserInputException($"'{path}' is not a metrics.jsonl written by train: a line lacks step, train_loss or valid_loss");
            return rows;
        }
        catch (JsonException e)
        {
            throw new GateLoop.Runtime.UserInputException($"'{path}' is not a metrics.jsonl written by train: {e.Message}");
        }
    }

    public static void Write(IReadOnlyList<(string Label, string MetricsPath)> runs, string pngPath)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (label, path) in runs)
        {
            var rows = Rows(path);
            double[] steps = rows.Select(r => r.GetProperty("step").GetDouble()).ToArray();
            double[] train = rows.Select(r => r.GetProperty("train_loss").GetDouble() / Math.Log(2)).ToArray();
            var validRows = rows.Where(r => r.GetProperty("valid_loss").ValueKind == JsonValueKind.Number).ToList();
            var trainLine = plot.Add.ScatterLine(steps, train);
            trainLine.LegendText = $"{label} train";
            if (validRows.Count > 0)
            {
                var valid = plot.Add.Scatter(
                    validRows.Select(r => r.GetProperty("step").GetDouble()).ToArray(),
                    validRows.Select(r => r.GetProperty("valid_loss").GetDouble() / Math.Log(2)).ToArray());
                valid.LegendText = $"{label} valid";
            }
        }
        plot.Title("GateLoop training");
        plot.XLabel("step");
        plot.YLabel("bits per character");
        // Loss curves fall from the left: the upper right is where they are not.
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        string full = Path.GetFullPath(pngPath), temp = full + ".tmp.png";
        plot.SavePng(temp, 900, 540);
        File.Move(temp, full, overwrite: true);
    }
}
