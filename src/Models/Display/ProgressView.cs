using GateLoop.Runtime;

namespace GateLoop.Models.Display;

/// <summary>
/// Renders training events: a live status line (step, loss, bpc, tokens/s, ETA) rewritten in place on a
/// terminal, plain lines every few steps when the output is redirected (logs, CI).
/// </summary>
sealed class ProgressView(int plainEvery)
{
    // A terminal without a size (the pseudo-terminal mpirun gives a rank) would cut the line short: plain lines there.
    readonly bool live = !Console.IsOutputRedirected && Width() > 0;
    bool statusShown;

    public void Report(TrainEvent e)
    {
        switch (e)
        {
            case TrainEvent.Step s:
                string line = $"step {s.Number}/{s.Total}  loss {s.Loss:F4}  bpc {s.Loss / Math.Log(2):F4}  grad-norm {s.GradNorm:F3}  " +
                              $"{s.TokensPerSecond:N0} tokens/s  elapsed {Format(s.Elapsed)}  ETA {Format(s.Remaining)}";
                if (live)
                {
                    int width = SafeWidth() - 1;
                    Console.Write("\r" + (line.Length > width ? line[..width] : line.PadRight(width)));
                    statusShown = true;
                }
                else if (s.Number % plainEvery == 0 || s.Number == s.Total || s.Number == 1) Console.WriteLine(line);
                break;
            case TrainEvent.Validation v:
                Line($"step {v.Number}: valid loss {v.Loss:F4}, bpc {v.Loss / Math.Log(2):F4}");
                break;
            case TrainEvent.Sample sample:
                Line($"step {sample.Number}: sample\n--- prime ---\n{sample.Prime}\n--- generated ---\n{sample.Text}\n---");
                break;
            case TrainEvent.Saved saved:
                Line($"step {saved.Number}: checkpoint written to {saved.Directory}");
                break;
        }
    }

    // Events other than steps go on their own lines above the live status line.
    void Line(string text)
    {
        if (statusShown) Console.Write("\r" + new string(' ', Math.Max(0, SafeWidth() - 1)) + "\r");
        statusShown = false;
        Console.WriteLine(text);
    }

    static int SafeWidth() => Width() is var width and >= 0 ? Math.Max(40, width) : 120;

    static int Width()
    {
        try { return Console.WindowWidth; }
        catch (IOException) { return -1; }
    }

    static string Format(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : $"{t.Minutes}m{t.Seconds:D2}s";

    /// <summary>Ends the live line so following output starts on a fresh line.</summary>
    public void Finish()
    {
        if (statusShown) Console.WriteLine();
        statusShown = false;
    }
}
