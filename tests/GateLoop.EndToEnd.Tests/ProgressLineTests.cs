using GateLoop.Models.Display;

namespace GateLoop.EndToEnd.Tests;

/// <summary>The progress of long commands: periodic plain lines with an ETA when redirected, a live line on a terminal.</summary>
public sealed class ProgressLineTests
{
    /// <summary>A clock that moves only when told.</summary>
    sealed class ManualClock : TimeProvider
    {
        long ticks;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => ticks;
        public void Advance(TimeSpan by) => ticks += by.Ticks;
    }

    [Fact]
    public void Redirected_it_writes_a_plain_line_with_the_ETA_every_ten_seconds_and_at_the_end()
    {
        var clock = new ManualClock();
        var log = new StringWriter { NewLine = "\n" };
        var progress = new ProgressLine("eval", "windows", log, live: false, clock);
        // 1,000 windows at 4 a second: a line at 10 s, 20 s, … and one when the last is done.
        for (int done = 1; done <= 1000; done++)
        {
            clock.Advance(TimeSpan.FromSeconds(0.25));
            progress.Report(done, 1000);
        }
        var lines = log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(25, lines.Length); // every 10 s; the last at 250 s, when the work ends
        Assert.Equal("eval: 40/1,000 windows (4%), elapsed 0m10s, ETA 4m00s", lines[0]);
        Assert.Equal("eval: 80/1,000 windows (8%), elapsed 0m20s, ETA 3m50s", lines[1]);
        Assert.Equal("eval: 1,000/1,000 windows (100%), elapsed 4m10s, ETA 0m00s", lines[^1]);
        Assert.DoesNotContain('\r', log.ToString());
    }

    [Fact]
    public void Without_a_total_it_counts_and_says_how_long_it_has_run()
    {
        var clock = new ManualClock();
        var log = new StringWriter { NewLine = "\n" };
        var progress = new ProgressLine("download", "bytes", log, live: false, clock);
        clock.Advance(TimeSpan.FromSeconds(12));
        progress.Report(123_456, null);
        Assert.Equal("download: 123,456 bytes, elapsed 0m12s\n", log.ToString());
    }

    [Fact]
    public void On_a_terminal_it_rewrites_one_line_in_place_and_blanks_it_before_other_output()
    {
        var clock = new ManualClock();
        var screen = new StringWriter();
        var progress = new ProgressLine("eval", "windows", screen, live: true, clock);
        clock.Advance(TimeSpan.FromSeconds(1));
        progress.Report(1, 10_000);
        clock.Advance(TimeSpan.FromSeconds(0.01)); // too soon to redraw
        progress.Report(2, 10_000);
        clock.Advance(TimeSpan.FromSeconds(1));
        progress.Report(9_999, 10_000);
        string first = "eval: 1/10,000 windows (0%), elapsed 0m01s, ETA 2h46m", second = "eval: 9,999/10,000 windows (100%), elapsed 0m02s, ETA 0m00s";
        Assert.Equal($"\r{first}\r{second}", screen.ToString());
        progress.Clear();
        Assert.EndsWith($"\r{new string(' ', second.Length)}\r", screen.ToString());
        Assert.DoesNotContain('\n', screen.ToString());
    }

    [Fact]
    public void A_shorter_live_line_blanks_what_the_longer_one_before_it_left()
    {
        var screen = new StringWriter();
        var line = new LiveLine(screen);
        line.Show("step 10/100  loss 2.5");
        line.Show("step 11");
        Assert.Equal("\rstep 10/100  loss 2.5\rstep 11              ", screen.ToString());
        line.Keep();
        Assert.EndsWith("step 11              " + Environment.NewLine, screen.ToString());
    }
}
