using GateLoop.Runtime;

namespace GateLoop.Models.Display;

/// <summary>
/// Renders training events: a live status line (step, loss, bpc, tokens/s, ETA) rewritten in place on a
/// terminal, plain lines every few steps when the output is redirected (logs, CI).
/// </summary>
sealed class ProgressView(int plainEvery)
{
    // A terminal without a size (the pseudo-terminal mpirun gives a rank) gets plain lines, as a log does.
    readonly LiveLine? live = Console.IsOutputRedirected || Terminal.Width() is null ? null : new LiveLine(Console.Out);

    public void Report(TrainEvent e)
    {
        switch (e)
        {
            case TrainEvent.Step s:
                string line = $"step {s.Number}/{s.Total}  loss {s.Loss:F4}  bpc {s.Loss / Math.Log(2):F4}  grad-norm {s.GradNorm:F3}  " +
                              $"{s.TokensPerSecond:N0} tokens/s  elapsed {Terminal.Format(s.Elapsed)}  ETA {Terminal.Format(s.Remaining)}";
                if (live is not null) live.Show(line);
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
        live?.Clear();
        Console.WriteLine(text);
    }

    /// <summary>Ends the live line, keeping the last status, so following output starts on a fresh line.</summary>
    public void Finish() => live?.Keep();
}
