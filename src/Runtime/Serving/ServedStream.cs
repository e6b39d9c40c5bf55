using System.Threading.Channels;

namespace GateLoop.Runtime;

/// <summary>
/// One request's stream as the HTTP layer sees it: the text as it is generated, how it ended, and a way to give up
/// on it. The scheduler writes, one reader reads.
/// </summary>
public sealed class ServedStream
{
    readonly Channel<string> text = Channel.CreateUnbounded<string>(new() { SingleReader = true, SingleWriter = true });
    volatile bool cancelled;

    internal ServedStream(GenerationRequest request, long number, Action wake)
    {
        Request = request;
        Number = number;
        Rng = new Rng(unchecked((ulong)request.Seed));
        Text = new StreamText(request.Stop);
        this.wake = wake;
    }

    readonly Action wake;

    /// <summary>What the client asked for.</summary>
    public GenerationRequest Request { get; }

    /// <summary>The server's count of accepted requests at this one: a unique id within a run.</summary>
    public long Number { get; }

    /// <summary>Chunks of generated text; completes when the stream ends, with the scheduler's error if it failed.</summary>
    public ChannelReader<string> Output => text.Reader;

    /// <summary>Why the stream ended (<c>stop</c>, <c>length</c>); set before <see cref="Output"/> completes.</summary>
    public string? FinishReason { get; private set; }

    /// <summary>Bytes generated, stop sequence included (the usage's completion tokens).</summary>
    public int Generated => Text.Count;

    /// <summary>Gives up on the stream (the client went away): its slot is freed before the next step.</summary>
    public void Cancel()
    {
        cancelled = true;
        wake();
    }

    internal bool Cancelled => cancelled;

    // The scheduler's side: the stream's own random generator (seeded by the request alone, so that its bytes do not
    // depend on which streams share its steps), its text, its state while it is not in the batch, its prompt's progress.
    internal Rng Rng { get; }
    internal StreamText Text { get; }
    internal float[]? State { get; set; }
    internal int Prefilled { get; set; }
    internal int Last { get; set; }

    internal void Write(string chunk)
    {
        if (chunk.Length > 0) text.Writer.TryWrite(chunk);
    }

    // Ended, by a finish or a failure: the scheduler drops it.
    internal bool Done { get; private set; }

    internal void End(string reason)
    {
        (FinishReason, Done) = (reason, true);
        text.Writer.TryComplete();
    }

    internal void Fail(Exception error)
    {
        Done = true;
        text.Writer.TryComplete(error);
    }
}
