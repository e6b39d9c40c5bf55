namespace GateLoop.Models.Display;

/// <summary>What the command line may assume of the terminal it writes to.</summary>
static class Terminal
{
    /// <summary>
    /// The terminal's width in columns, or null when it does not say: a pseudo-terminal of a serial console or a
    /// container reports 0, and a line clipped to a guess would lose what matters. <c>COLUMNS</c> answers then.
    /// </summary>
    public static int? Width()
    {
        try
        {
            if (Console.WindowWidth > 0) return Console.WindowWidth;
        }
        catch (IOException)
        {
        }
        return int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), out int columns) && columns > 0 ? columns : null;
    }

    /// <summary>Whether text styles (ANSI escapes) may be written: not for <c>TERM=dumb</c> nor under <c>NO_COLOR</c> (no-color.org).</summary>
    public static bool Styles =>
        Environment.GetEnvironmentVariable("TERM") != "dumb" && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));

    /// <summary>ANSI: faint text, and back to normal.</summary>
    public const string Dim = "\e[2m", Normal = "\e[0m";

    /// <summary>A duration as 4m07s, or 1h05m past an hour.</summary>
    public static string Format(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : $"{t.Minutes}m{t.Seconds:D2}s";
}

/// <summary>
/// One status line rewritten in place on a terminal: each new text replaces the last, clipped to the terminal's width
/// when it reports one, and blanked to the old text's length (no width needed) so nothing of it is left over.
/// </summary>
sealed class LiveLine(TextWriter writer)
{
    int shown; // characters of the line on screen, 0 when none is

    public void Show(string text)
    {
        if (Terminal.Width() is int width && text.Length > width - 1) text = text[..Math.Max(0, width - 1)];
        writer.Write("\r" + text.PadRight(shown));
        writer.Flush();
        shown = text.Length;
    }

    /// <summary>Leaves the line as it stands and moves below it.</summary>
    public void Keep()
    {
        if (shown == 0) return;
        writer.WriteLine();
        shown = 0;
    }

    /// <summary>Blanks the line, so that other output starts at its beginning.</summary>
    public void Clear()
    {
        if (shown == 0) return;
        writer.Write("\r" + new string(' ', shown) + "\r");
        writer.Flush();
        shown = 0;
    }
}
