namespace GateLoop.Runtime;

/// <summary>
/// Continuous batching over a model with a recurrent state: every stream in the batch advances one byte per
/// <see cref="GenerationSession{T}.Step"/>, one row each, so the weights are read once per step for all of them. The
/// prompts of new streams run through their states together, about <see cref="PrefillPositions"/> bytes between two
/// steps of the others, then each stream joins the batch; a finished or cancelled stream leaves before the next step
/// (the last row's state moves into its place). One thread owns the model. More than <c>maxStreams</c> requests wait
/// in a queue of <c>maxQueue</c>; past that they are refused (429), and while draining, every new one is (503).
/// </summary>
/// <remarks>
/// A stream's bytes depend on its request alone (and the weights, their format and the device): its random generator
/// is its own, and on the host every product runs row by row (<see cref="InferenceWeights{T}.RowByRow"/>), so a position's
/// logits depend neither on the rows beside it nor on how its prompt was cut (the scan carries its state exactly).
/// </remarks>
public sealed class BatchScheduler : IDisposable
{
    /// <summary>Prompt bytes the joining streams run between two steps of the batch, all together: long prompts do not stall the others.</summary>
    public const int PrefillPositions = 256;

    readonly TransformerModel<float> model;
    readonly GenerationSession<float> session;
    readonly int maxStreams, maxQueue;
    readonly Action<string> log;
    readonly object gate = new();
    readonly Queue<ServedStream> waiting = new();
    readonly List<ServedStream> joining = [], batch = [];
    readonly Thread thread;
    readonly float[] zeroState, savedRow;
    int slots;
    long accepted;
    DateTime? drainDeadline;
    bool disposed;

    /// <summary>Starts the scheduler's thread over <paramref name="model"/>, which it owns from now on.</summary>
    /// <exception cref="UserInputException">The model has no recurrent state, so streams of different lengths cannot share a step.</exception>
    public BatchScheduler(TransformerModel<float> model, string name, int maxStreams, int maxQueue, Action<string> log)
    {
        if (!model.HasRecurrentState)
            throw new UserInputException($"{name} has no recurrent state (its attention re-reads the whole text for each byte), so its streams " +
                "cannot share one batched step; serve a gate-looped model (see: gateloop models)");
        ArgumentOutOfRangeException.ThrowIfLessThan(maxStreams, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(maxQueue);
        (this.model, this.maxStreams, this.maxQueue, this.log) = (model, maxStreams, maxQueue, log);
        model.Inference.RowByRow = true;
        session = model.StartGeneration(maxStreams);
        zeroState = new float[session.StateElements];
        savedRow = new float[session.StateElements];
        StepBytesPerStream = model.PlanBytes(maxStreams, 1) / maxStreams;
        thread = new Thread(Run) { IsBackground = true, Name = "gateloop serve batch" };
        thread.Start();
    }

    /// <summary>Bytes of recurrent state one stream holds, whatever its length.</summary>
    public long StateBytesPerStream => zeroState.LongLength * sizeof(float);

    /// <summary>Bytes of a step's activations per row of the batch.</summary>
    public long StepBytesPerStream { get; }

    /// <summary>Streams generating or running their prompt, and requests waiting for a slot.</summary>
    public (int Active, int Waiting) Load
    {
        get { lock (gate) return (slots, waiting.Count); }
    }

    /// <summary>Queues <paramref name="request"/>; its stream starts as soon as a slot is free.</summary>
    /// <exception cref="RequestException">429 when the streams and the queue are full, 503 while draining, 400 for a prompt byte outside the vocabulary.</exception>
    public ServedStream Submit(GenerationRequest request)
    {
        // Catalog models read every byte; a smaller vocabulary (a test model's) refuses the bytes it lacks.
        int outside = Array.FindIndex(request.Prompt, b => b >= model.Vocabulary);
        if (outside >= 0)
            throw new RequestException(400, $"the prompt holds the byte {request.Prompt[outside]}, outside this model's {model.Vocabulary} tokens",
                "prompt", "invalid_value");
        lock (gate)
        {
            if (drainDeadline is not null || disposed)
                throw new RequestException(503, "the server is shutting down and takes no new requests; retry on another instance", null, "shutting_down");
            if (slots + waiting.Count >= maxStreams + maxQueue)
                throw new RequestException(429, $"the server is busy: {maxStreams} streams are running and {waiting.Count} requests wait; retry shortly",
                    null, "rate_limit_exceeded");
            var stream = new ServedStream(request, ++accepted, Wake);
            waiting.Enqueue(stream);
            Monitor.Pulse(gate);
            return stream;
        }
    }

    /// <summary>
    /// Stops taking requests: those still waiting are refused, running streams go on for <paramref name="grace"/>, then
    /// end with the reason <c>length</c>. <see cref="Drained"/> completes when none is left.
    /// </summary>
    public void Drain(TimeSpan grace)
    {
        lock (gate)
        {
            drainDeadline ??= DateTime.UtcNow + grace;
            while (waiting.TryDequeue(out var stream))
                stream.Fail(new RequestException(503, "the server shut down before this request started; retry on another instance", null, "shutting_down"));
            Monitor.Pulse(gate);
        }
    }

    /// <summary>Completes when the scheduler's thread has ended (after <see cref="Drain"/>, once no stream is left).</summary>
    public Task Drained => drained.Task;

    readonly TaskCompletionSource drained = new(TaskCreationOptions.RunContinuationsAsynchronously);

    void Wake()
    {
        lock (gate) Monitor.Pulse(gate);
    }

    void Run()
    {
        try
        {
            while (Next()) { }
        }
        catch (Exception e)
        {
            // A fault of the scheduler itself: every stream learns of it, the server refuses from now on.
            log($"serve  the batch stopped: {e.GetType().Name}: {e.Message}");
            lock (gate)
            {
                disposed = true;
                foreach (var s in batch.Concat(joining).Concat(waiting)) s.Fail(e);
            }
        }
        drained.TrySetResult();
    }

    // One round: admit, drop what left, run a prompt chunk, step the batch. False once drained or disposed.
    bool Next()
    {
        lock (gate)
        {
            while (true)
            {
                while (slots < maxStreams && waiting.TryDequeue(out var stream))
                {
                    // A client that left while it waited takes no slot.
                    if (stream.Cancelled) continue;
                    slots++;
                    joining.Add(stream);
                }
                if (disposed) return false;
                if (batch.Count > 0 || joining.Count > 0) break;
                if (drainDeadline is not null) return false;
                Monitor.Wait(gate);
            }
        }
        if (drainDeadline is { } deadline && DateTime.UtcNow >= deadline)
            foreach (var s in batch.Concat(joining)) Finish(s, "length", s.Text.Finish());
        Leave();
        if (joining.Count > 0) Guarded([.. joining], Prefill);
        if (batch.Count > 0) Guarded(batch, Step);
        Leave();
        return true;
    }

    // A failure of the model (out of memory on a device, NaN logits) ends the streams it touched; the server goes on.
    void Guarded(List<ServedStream> streams, Action work)
    {
        try
        {
            work();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            log($"serve  {streams.Count} stream(s) failed: {e.GetType().Name}: {e.Message}");
            foreach (var s in streams) s.Fail(new RequestException(500, $"the model failed: {e.Message}", null, "model_error"));
        }
    }

    // Removes finished and cancelled streams; a batch row is refilled by the last row, so the batch stays dense.
    void Leave()
    {
        int left = 0;
        for (int i = batch.Count - 1; i >= 0; i--)
            if (batch[i].Done || batch[i].Cancelled)
            {
                int last = batch.Count - 1;
                if (i != last)
                {
                    session.ReadState(last, savedRow);
                    session.WriteState(i, savedRow);
                    batch[i] = batch[last];
                }
                batch.RemoveAt(last);
                left++;
            }
        left += joining.RemoveAll(s => s.Done || s.Cancelled);
        if (left == 0) return;
        lock (gate) slots -= left;
    }

    // A piece of every joining stream's prompt, all in one pass: they take rows 0…q−1 of the carried state (whose
    // streams are set aside meanwhile), the same number of bytes each, about PrefillPositions in all. Row by row, a
    // position's result does not depend on how its prompt is cut nor on what runs beside it.
    void Prefill()
    {
        var streams = joining.ToList();
        int q = streams.Count, elements = zeroState.Length;
        int length = Math.Max(1, Math.Min(PrefillPositions / q, streams.Min(s => s.Request.Prompt.Length - s.Prefilled)));
        var tokens = new int[q * length];
        for (int r = 0; r < q; r++)
            for (int i = 0; i < length; i++) tokens[r * length + i] = streams[r].Request.Prompt[streams[r].Prefilled + i];
        var aside = new float[Math.Min(q, batch.Count)][];
        for (int r = 0; r < aside.Length; r++) session.ReadState(r, aside[r] = new float[elements]);
        for (int r = 0; r < q; r++) session.WriteState(r, streams[r].State ?? zeroState);
        session.UseSequences(q);
        float[] logits;
        try
        {
            logits = session.Continue(tokens, length);
        }
        finally
        {
            for (int r = 0; r < q; r++) session.ReadState(r, streams[r].State ??= new float[elements]);
            for (int r = 0; r < aside.Length; r++) session.WriteState(r, aside[r]);
        }
        int vocabulary = model.Vocabulary;
        for (int r = 0; r < q; r++)
        {
            var s = streams[r];
            s.Prefilled += length;
            if (s.Prefilled < s.Request.Prompt.Length) continue;
            joining.Remove(s);
            Draw(s, logits.AsSpan(r * vocabulary, vocabulary));
            if (s.Done) continue;
            session.WriteState(batch.Count, s.State!);
            s.State = null;
            batch.Add(s);
        }
    }

    // Every stream of the batch advances one byte.
    void Step()
    {
        var tokens = new int[batch.Count];
        for (int i = 0; i < batch.Count; i++) tokens[i] = batch[i].Last;
        session.UseSequences(batch.Count);
        var logits = session.Step(tokens);
        int vocabulary = model.Vocabulary;
        for (int i = 0; i < batch.Count; i++) Draw(batch[i], logits.AsSpan(i * vocabulary, vocabulary));
    }

    // Draws the stream's next byte from its row of logits with its own generator, and sends what text it completes.
    void Draw(ServedStream s, ReadOnlySpan<float> logits)
    {
        var r = s.Request;
        int token;
        try
        {
            token = Sampling.Sample(logits, r.Temperature, r.TopKThreshold, s.Rng);
        }
        catch (UserInputException e)
        {
            log($"serve  request {s.Number} ended: {e.Message}");
            s.Fail(new RequestException(500, e.Message, null, "model_error"));
            return;
        }
        s.Last = token;
        string chunk = s.Text.Add((byte)token);
        if (s.Text.Stopped) Finish(s, "stop", chunk);
        else if (s.Text.Count >= r.MaxTokens) Finish(s, "length", chunk + s.Text.Finish());
        else s.Write(chunk);
    }

    static void Finish(ServedStream s, string reason, string chunk)
    {
        if (s.Done) return;
        s.Write(chunk);
        s.End(reason);
    }

    /// <summary>Ends the thread: running streams fail, waiting requests are refused.</summary>
    public void Dispose()
    {
        lock (gate)
        {
            disposed = true;
            Monitor.Pulse(gate);
        }
        thread.Join();
        session.Dispose();
        foreach (var s in batch.Concat(joining).Concat(waiting))
            s.Fail(new RequestException(503, "the server stopped", null, "shutting_down"));
    }
}
