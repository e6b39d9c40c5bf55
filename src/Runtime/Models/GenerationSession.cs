using System.Numerics;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// Sequences a model generates together (<see cref="TransformerModel{T}.StartGeneration"/>): the recurrent state each
/// carries from token to token, or, for a model without one (softmax attention), the tokens so far. A model runs one
/// session at a time; starting another ends this one. Disposing it frees the state.
/// </summary>
/// <typeparam name="T">The model's element type.</typeparam>
public sealed class GenerationSession<T> : IDisposable where T : unmanaged, IFloatingPoint<T>
{
    readonly TransformerModel<T> model;
    readonly Workspace? state;
    readonly List<int>[] history = [];
    int active;
    bool ended;

    internal GenerationSession(TransformerModel<T> model, int batch)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), $"batch must be positive, got {batch}");
        this.model = model;
        Sequences = active = batch;
        if (model.HasRecurrentState)
        {
            state = new Workspace(model.Device);
            model.StartState(state, batch);
        }
        // Only a model without a carried state needs the tokens so far: it runs the whole prefix again.
        else history = Enumerable.Range(0, batch).Select(_ => new List<int>()).ToArray();
    }

    /// <summary>The sequences the session started, each from a zero state.</summary>
    public int Sequences { get; }

    /// <summary>Positions of a prompt that run through the model at once; a longer one runs in chunks of this many.</summary>
    public const int PromptChunk = 1024;

    /// <summary>
    /// Feeds one token per sequence and returns the logits for the next one [batch × Vocabulary]. The scan state
    /// is carried from call to call, so each token costs the same whatever the length so far; the logits equal
    /// those of <see cref="TransformerModel{T}.Logits"/> over the whole sequence at its last position.
    /// </summary>
    public T[] Step(ReadOnlySpan<int> tokens) => Continue(tokens, 1);

    /// <summary>
    /// Feeds <paramref name="seq"/> more tokens to each sequence ([batch × seq], e.g. a prompt, processed in
    /// parallel, <see cref="PromptChunk"/> positions at a time) and returns the logits after the last of them
    /// [batch × Vocabulary].
    /// </summary>
    public T[] Continue(ReadOnlySpan<int> tokens, int seq)
    {
        ThrowIfEnded();
        int batch = active;
        if (seq <= 0 || tokens.Length != batch * seq)
            throw new ArgumentException($"expected {batch} × {seq} tokens, {seq} per sequence, got {tokens.Length}", nameof(tokens));
        T[] logits;
        if (state is not null)
        {
            // A long prompt runs in chunks through the carried state, so its memory does not grow with its length.
            int chunk = Math.Min(seq, PromptChunk);
            ModelPlan<T>? plan = null;
            for (int at = 0; at < seq; at += chunk)
            {
                int n = Math.Min(chunk, seq - at);
                var part = new int[batch * n];
                for (int b = 0; b < batch; b++) tokens.Slice(b * seq + at, n).CopyTo(part.AsSpan(b * n));
                plan = model.Run(part, null, batch, n, continueState: true);
            }
            logits = Module<T>.Read(plan!.Logits);
            seq = plan.Seq;
        }
        else
        {
            // Without a recurrent state the whole prefix runs again, as the seed's sampling does.
            for (int b = 0; b < batch; b++) history[b].AddRange(tokens.Slice(b * seq, seq));
            seq = history[0].Count;
            logits = model.Logits(history.SelectMany(h => h).ToArray(), batch, seq);
        }
        int vocabulary = model.Vocabulary;
        var last = new T[batch * vocabulary];
        for (int b = 0; b < batch; b++)
            Array.Copy(logits, ((long)b * seq + seq - 1) * vocabulary, last, (long)b * vocabulary, vocabulary);
        return last;
    }

    /// <summary>Elements of carried state one sequence holds (every layer's scan state); 0 without one.</summary>
    public long StateElements => state is null ? 0 : state.Buffers.Sum(b => b.Length) / Sequences;

    /// <summary>
    /// Makes <see cref="Step"/> and <see cref="Continue"/> feed the first <paramref name="count"/> of the sequences,
    /// each continuing from its carried state; the others' states are kept.
    /// </summary>
    public void UseSequences(int count)
    {
        ThrowIfEnded();
        if (state is null) throw new InvalidOperationException($"{model.GetType().Name} carries no state, so its sequences step together");
        if (count <= 0 || count > Sequences)
            throw new ArgumentOutOfRangeException(nameof(count), $"count must lie in [1, {Sequences}], the sequences this session started; got {count}");
        active = count;
    }

    /// <summary>Copies the carried state of <paramref name="sequence"/> into <paramref name="into"/> (<see cref="StateElements"/> values).</summary>
    public void ReadState(int sequence, Span<T> into)
    {
        foreach (var (view, at) in StateRows(sequence, into.Length)) view.CopyToCPU(into.Slice(at, (int)view.Length));
    }

    /// <summary>Replaces the carried state of <paramref name="sequence"/> with <paramref name="from"/> (from <see cref="ReadState"/>, or zeros).</summary>
    public void WriteState(int sequence, ReadOnlySpan<T> from)
    {
        foreach (var (view, at) in StateRows(sequence, from.Length)) view.CopyFromCPU(from.Slice(at, (int)view.Length));
    }

    // Each buffer of the state holds one row per sequence ([batch × row]): sequence's row of each, and where it
    // starts in the values of one sequence.
    List<(ArrayView<T> View, int At)> StateRows(int sequence, int length)
    {
        ThrowIfEnded();
        if (state is null) throw new InvalidOperationException($"{model.GetType().Name} carries no state to read or write");
        if ((uint)sequence >= (uint)Sequences)
            throw new ArgumentOutOfRangeException(nameof(sequence), $"sequence must lie in [0, {Sequences}), got {sequence}");
        if (length != StateElements)
            throw new ArgumentException($"a sequence's state is {StateElements} values, got {length}");
        var rows = new List<(ArrayView<T>, int)>();
        int at = 0;
        foreach (var buffer in state.Buffers)
        {
            long row = buffer.Length / Sequences;
            rows.Add((buffer.AsArrayView<T>(sequence * row, row), at));
            at += (int)row;
        }
        return rows;
    }

    void ThrowIfEnded()
    {
        if (ended) throw new ObjectDisposedException(nameof(GenerationSession<T>), "this generation session has ended: the model started another, or it was disposed");
    }

    /// <summary>Frees the carried state; the model's own buffers stay.</summary>
    public void Dispose()
    {
        if (ended) return;
        ended = true;
        state?.Dispose();
        model.Ended(this);
    }
}
