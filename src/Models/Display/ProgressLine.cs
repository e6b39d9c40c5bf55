namespace GateLoop.Models.Display;

/// <summary>
/// Progress of work whose size is known (or not), on stderr so that stdout stays the result: on a terminal a live
/// line (count, percent, elapsed, ETA); redirected, the same as a plain line every <see cref="PlainEvery"/>, so that a
/// log shows the work is alive and when it will end.
/// </summary>
sealed class ProgressLine : IProgress<(long Done, long? Total)>
{
    /// <summary>Time between plain lines when the output is not a terminal.</summary>
    public static readonly TimeSpan PlainEvery = TimeSpan.FromSeconds(10);

    readonly string what, unit;
    readonly TextWriter writer;
    readonly LiveLine? live;
    readonly TimeProvider clock;
    readonly long start;
    TimeSpan last; // when the last line was shown

    public ProgressLine(string what, string unit, TextWriter writer, bool live, TimeProvider clock)
    {
        (this.what, this.unit, this.writer, this.clock) = (what, unit, writer, clock);
        this.live = live ? new LiveLine(writer) : null;
        start = clock.GetTimestamp();
    }

    /// <summary>Progress of <paramref name="what"/> on the process's stderr.</summary>
    public static ProgressLine OnStderr(string what, string unit) => new(what, unit, Console.Error, !Console.IsErrorRedirected, TimeProvider.System);

    /// <summary>The text for <paramref name="done"/> of <paramref name="total"/> (null: unknown) after <paramref name="elapsed"/>.</summary>
    public string Text(long done, long? total, TimeSpan elapsed)
    {
        string text = $"{what}: {done:N0}{(total is long all ? $"/{all:N0}" : "")} {unit}";
        if (total is long n && n > 0)
        {
            text += $" ({100.0 * done / n:F0}%), elapsed {Terminal.Format(elapsed)}";
            if (done > 0) text += $", ETA {Terminal.Format(elapsed * ((double)(n - done) / done))}";
        }
        else text += $", elapsed {Terminal.Format(elapsed)}";
        return text;
    }

    /// <summary>Time between rewrites of the live line: often enough to look alive, seldom enough to cost nothing.</summary>
    static readonly TimeSpan LiveEvery = TimeSpan.FromSeconds(0.1);

    public void Report(long done, long? total)
    {
        var elapsed = clock.GetElapsedTime(start);
        if (elapsed - last < (live is null ? PlainEvery : LiveEvery) && done != total) return;
        last = elapsed;
        if (live is not null) live.Show(Text(done, total, elapsed));
        else writer.WriteLine(Text(done, total, elapsed));
    }

    /// <summary>Reports as it is told, on the reporting thread (unlike <see cref="Progress{T}"/>, which posts it for later).</summary>
    void IProgress<(long Done, long? Total)>.Report((long Done, long? Total) value) => Report(value.Done, value.Total);

    /// <summary>Removes the live line before other output on the same terminal (the next report shows it again).</summary>
    public void Clear() => live?.Clear();
}
