using System.Numerics;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// What every generated GateLoop model shares: the flat parameter and gradient buffers, initialization,
/// token upload, the activation plan per (batch, sequence length) and the loss read-back. The generated
/// subclass supplies the kernels and the order in which they run.
/// </summary>
/// <typeparam name="T">The element type the model was compiled for (float, or double for verification).</typeparam>
public abstract class TransformerModel<T> : Module<T> where T : unmanaged, IFloatingPoint<T>
{
    T[] lossRows = [];
    int[] inputRows = [], targetRows = [];
    MemoryBuffer1D<T, Stride1D.Dense>? lossTotal;
    readonly T[] lossRead = new T[1];
    bool stepping;
    List<int>[] history = [];
    int generationBatch;
    Workspace? stateSpace;
    int stateBatch;

    /// <summary>Creates the model's buffers on <paramref name="device"/>; weights are zero until initialized.</summary>
    protected TransformerModel(Device device, IReadOnlyList<ParameterInfo> parameters) : base(device, parameters) { }

    /// <summary>Vocabulary size.</summary>
    public abstract int Vocabulary { get; }

    /// <summary>Batch size of the current plan.</summary>
    protected int Batch { get; private set; }

    /// <summary>Sequence length of the current plan.</summary>
    protected int Seq { get; private set; }

    /// <summary>Batch × sequence length: the number of token rows.</summary>
    protected int Rows => Batch * Seq;

    /// <summary>Input tokens [Rows].</summary>
    protected ArrayView<int> Inputs { get; private set; }

    /// <summary>Target tokens [Rows] (inputs shifted by one).</summary>
    protected ArrayView<int> Targets { get; private set; }

    /// <summary>Logits [Rows × Vocabulary].</summary>
    protected ArrayView<T> LogitsView { get; private set; }

    /// <summary>Gradient of the scaled loss with respect to the logits [Rows × Vocabulary].</summary>
    protected ArrayView<T> LogitGrads { get; private set; }

    /// <summary>Per-row cross-entropy [Rows].</summary>
    protected ArrayView<T> LossRows { get; private set; }

    /// <summary>
    /// Runs the model on <paramref name="tokens"/> ([batch × (seq+1)]: each row's first seq tokens are inputs,
    /// the last seq are targets) and returns the mean cross-entropy in nats. The gradient of
    /// <c>gradScale · loss</c> is prepared for <see cref="Backward"/>.
    /// </summary>
    public double Forward(ReadOnlySpan<int> tokens, int batch, int seq, double gradScale = 1.0)
    {
        RunForward(tokens, batch, seq, gradScale);
        LossRows.CopyToCPU(lossRows);
        double sum = 0;
        foreach (var l in lossRows) sum += double.CreateChecked(l);
        return sum / (batch * seq);
    }

    /// <summary>
    /// <see cref="Forward"/> without the read-back: adds <paramref name="lossWeight"/> × the batch's mean
    /// cross-entropy to a total kept on the device, so a training step of several micro-batches waits for the
    /// device once, when <see cref="ReadLoss"/> takes the total.
    /// </summary>
    public void ForwardAccumulate(ReadOnlySpan<int> tokens, int batch, int seq, double gradScale, double lossWeight)
    {
        RunForward(tokens, batch, seq, gradScale);
        lossTotal ??= Device.Allocate<T>(1);
        Device.ColumnSum(batch * seq, 1, LossRows, lossTotal.View, T.CreateChecked(lossWeight / (batch * seq)));
    }

    /// <summary>The loss total of <see cref="ForwardAccumulate"/> calls since the last read; resets it to zero.</summary>
    public double ReadLoss()
    {
        if (lossTotal is null) return 0;
        lossTotal.View.CopyToCPU(lossRead);
        lossTotal.MemSetToZero();
        return double.CreateChecked(lossRead[0]);
    }

    // Splits rows of seq + 1 tokens into inputs and targets, runs the model and leaves the loss rows and their gradient.
    void RunForward(ReadOnlySpan<int> tokens, int batch, int seq, double gradScale)
    {
        if (tokens.Length != batch * (seq + 1))
            throw new ArgumentException(
                $"expected batch × (seq + 1) = {batch} × {seq + 1} = {batch * (seq + 1)} tokens, got {tokens.Length}", nameof(tokens));
        // Reused from call to call: uploads copy them before returning.
        if (inputRows.Length != batch * seq) (inputRows, targetRows) = (new int[batch * seq], new int[batch * seq]);
        for (int b = 0; b < batch; b++)
        {
            tokens.Slice(b * (seq + 1), seq).CopyTo(inputRows.AsSpan(b * seq));
            tokens.Slice(b * (seq + 1) + 1, seq).CopyTo(targetRows.AsSpan(b * seq));
        }
        Upload(inputRows, targetRows, batch, seq);
        stepping = false;
        ForwardCore(continueState: false);
        ComputeLoss(T.CreateChecked(gradScale / (batch * seq)));
    }

    /// <summary>Logits [batch × seq × Vocabulary] for <paramref name="inputs"/> ([batch × seq] tokens).</summary>
    public T[] Logits(ReadOnlySpan<int> inputs, int batch, int seq)
    {
        if (inputs.Length != batch * seq)
            throw new ArgumentException($"expected batch × seq = {batch * seq} tokens, got {inputs.Length}", nameof(inputs));
        Upload(inputs.ToArray(), null, batch, seq);
        stepping = false;
        ForwardCore(continueState: false);
        return Read(LogitsView);
    }

    /// <summary>
    /// True when the model carries a recurrent state, so <see cref="Step"/> costs the same per token; models without
    /// one (softmax attention) re-run the whole prefix on each step.
    /// </summary>
    protected virtual bool CarriesState => true;

    /// <summary>Starts <paramref name="batch"/> sequences for generation, each from a zero scan state.</summary>
    public void ResetState(int batch)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), $"batch must be positive, got {batch}");
        generationBatch = batch;
        // Only a model without a carried state needs the tokens so far: it runs the whole prefix again.
        history = CarriesState ? [] : Enumerable.Range(0, batch).Select(_ => new List<int>()).ToArray();
        if (CarriesState)
        {
            if (stateSpace is null || stateBatch != batch)
            {
                stateSpace?.Dispose();
                stateSpace = new Workspace(Device);
                stateBatch = batch;
                PlanState(stateSpace, batch);
            }
            ResetCarry();
        }
        stepping = true;
    }

    /// <summary>
    /// Feeds one token per sequence and returns the logits for the next one [batch × Vocabulary]. The scan state
    /// is carried from call to call, so each token costs the same whatever the length so far; the logits equal
    /// those of <see cref="Logits"/> over the whole sequence at its last position.
    /// </summary>
    public T[] Step(ReadOnlySpan<int> tokens) => Continue(tokens, 1);

    /// <summary>Positions of a prompt that run through the model at once; a longer one runs in chunks of this many.</summary>
    public const int PromptChunk = 1024;

    /// <summary>
    /// Feeds <paramref name="seq"/> more tokens to each sequence ([batch × seq], e.g. a prompt, processed in
    /// parallel, <see cref="PromptChunk"/> positions at a time) and returns the logits after the last of them
    /// [batch × Vocabulary].
    /// </summary>
    public T[] Continue(ReadOnlySpan<int> tokens, int seq)
    {
        int batch = generationBatch;
        if (!stepping)
            throw new InvalidOperationException("call ResetState before Step or Continue");
        if (seq <= 0 || tokens.Length != batch * seq)
            throw new InvalidOperationException($"expected {batch} × {seq} tokens, {seq} per sequence, got {tokens.Length}");
        T[] logits;
        if (CarriesState)
        {
            // A long prompt runs in chunks through the carried state, so its memory does not grow with its length.
            int chunk = Math.Min(seq, PromptChunk);
            for (int at = 0; at < seq; at += chunk)
            {
                int n = Math.Min(chunk, seq - at);
                var part = new int[batch * n];
                for (int b = 0; b < batch; b++) tokens.Slice(b * seq + at, n).CopyTo(part.AsSpan(b * n));
                Upload(part, null, batch, n);
                ForwardCore(continueState: true);
            }
            logits = Read(LogitsView);
            seq = Seq;
        }
        else
        {
            // Without a recurrent state the whole prefix runs again, as the seed's sampling does.
            for (int b = 0; b < batch; b++) history[b].AddRange(tokens.Slice(b * seq, seq));
            int length = history[0].Count;
            logits = Logits(history.SelectMany(h => h).ToArray(), batch, length);
            stepping = true;
            seq = length;
        }
        var last = new T[batch * Vocabulary];
        for (int b = 0; b < batch; b++)
            Array.Copy(logits, ((long)b * seq + seq - 1) * Vocabulary, last, (long)b * Vocabulary, Vocabulary);
        return last;
    }

    /// <summary>
    /// Whether <see cref="Step"/> carries a recurrent state, so that sequences of different lengths can step together
    /// and each sequence's state can be moved (<see cref="ReadState"/>, <see cref="WriteState"/>).
    /// </summary>
    public bool HasRecurrentState => CarriesState;

    /// <summary>Elements of carried state one sequence holds (every layer's scan state).</summary>
    public long StateElements => stateSpace is null ? 0 : stateSpace.Buffers.Sum(b => b.Length) / stateBatch;

    /// <summary>
    /// Makes <see cref="Step"/> and <see cref="Continue"/> feed the first <paramref name="batch"/> of the sequences
    /// <see cref="ResetState"/> started, each continuing from its carried state; the others' states are kept.
    /// </summary>
    public void UseSequences(int batch)
    {
        if (!stepping || !CarriesState || batch <= 0 || batch > stateBatch)
            throw new InvalidOperationException($"UseSequences needs a carried state started by ResetState for at least {batch} sequences");
        generationBatch = batch;
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

    // Each buffer PlanState takes holds one row per sequence ([batch × row]): sequence's row of each, and where it
    // starts in the values of one sequence.
    List<(ArrayView<T> View, int At)> StateRows(int sequence, int length)
    {
        if (stateSpace is null || (uint)sequence >= (uint)stateBatch || length != StateElements)
            throw new ArgumentOutOfRangeException(nameof(sequence), $"sequence {sequence} of {stateBatch}, {length} values of {StateElements}: call ResetState first");
        var rows = new List<(ArrayView<T>, int)>();
        int at = 0;
        foreach (var buffer in stateSpace.Buffers)
        {
            long row = buffer.Length / stateBatch;
            rows.Add((buffer.AsArrayView<T>(sequence * row, row), at));
            at += (int)row;
        }
        return rows;
    }

    /// <summary>Adds the gradient of the last <see cref="Forward"/>'s scaled loss into <see cref="Module{T}.Gradients"/>.</summary>
    public void Backward()
    {
        if (plan is null) throw new InvalidOperationException("call Forward before Backward");
        BackwardCore();
        Device.Synchronize();
    }

    /// <summary>
    /// Called during <see cref="Backward"/> each time a part of the gradients is final for this backward: every gradient at
    /// an offset of at least the argument (the head's first, then each layer's from the last, the embedding's with 0 last),
    /// so that a data-parallel run can reduce them while the rest of the backward computes. Kernels queued on a GPU may
    /// still be running when it is called.
    /// </summary>
    public Action<long>? GradientsReady { get; set; }

    /// <summary>The generated backward's report that the gradients from <paramref name="offset"/> on are final (<see cref="GradientsReady"/>).</summary>
    protected void ReportGradientsReady(long offset) => GradientsReady?.Invoke(offset);

    /// <summary>Bytes of activation memory planned for the current (batch, sequence length).</summary>
    public long ActivationBytes => plan?.Workspace.Bytes ?? 0;

    /// <summary>The current plan's buffers (inputs, logits, every activation), for the device check.</summary>
    internal Workspace? PlannedBuffers => plan?.Workspace;

    void Upload(int[] inputs, int[]? targets, int batch, int seq)
    {
        if (batch <= 0 || seq <= 0)
            throw new ArgumentOutOfRangeException(nameof(batch), $"batch ({batch}) and sequence length ({seq}) must be positive");
        CheckTokens(inputs);
        if (targets is not null) CheckTokens(targets);
        if (plan is null || batch != Batch || seq != Seq) Use(batch, seq);
        Inputs.CopyFromCPU(inputs);
        if (targets is not null) Targets.CopyFromCPU(targets);
    }

    void CheckTokens(int[] tokens)
    {
        foreach (var t in tokens)
            if ((uint)t >= (uint)Vocabulary)
                throw new ArgumentOutOfRangeException(nameof(tokens), $"token {t} is outside the vocabulary [0, {Vocabulary})");
    }

    /// <summary>
    /// Allocates the activations for <see cref="Batch"/> × <see cref="Seq"/> from <paramref name="workspace"/> and
    /// returns them; <see cref="UseActivations"/> later makes them current again.
    /// </summary>
    protected abstract object PlanActivations(Workspace workspace);

    /// <summary>Makes activations returned by <see cref="PlanActivations"/> the current ones.</summary>
    protected abstract void UseActivations(object activations);

    /// <summary>The elements <see cref="PlanActivations"/> takes for (<paramref name="batch"/>, <paramref name="seq"/>).</summary>
    protected abstract long ActivationElements(int batch, int seq);

    /// <summary>The launch with the most indices a plan for (<paramref name="batch"/>, <paramref name="seq"/>) makes, counted in 64 bits.</summary>
    protected abstract (long Indices, string Kernel) LargestLaunch(int batch, int seq);

    /// <summary>
    /// Bytes of device memory a plan for <paramref name="batch"/> sequences of <paramref name="seq"/> tokens takes:
    /// the activations, the tokens, the logits and their gradient.
    /// </summary>
    public long PlanBytes(int batch, int seq)
    {
        long rows = (long)batch * seq;
        return 2 * rows * sizeof(int) + (ActivationElements(batch, seq) + rows * (2L * Vocabulary + 1)) * Unsafe.SizeOf<T>();
    }

    // Everything planned for one (batch, seq): the base class's views and the subclass's activations.
    sealed record Plan(Workspace Workspace, ArrayView<int> Inputs, ArrayView<int> Targets, ArrayView<T> Logits,
        ArrayView<T> LogitGrads, ArrayView<T> LossRows, T[] HostLoss, object Activations);

    // Training alternates with sampling (a prompt shape, then one token at a time), so the few most recent
    // plans are kept instead of being reallocated on every switch.
    const int KeptPlans = 3;
    readonly List<(int Batch, int Seq, Plan Plan)> plans = [];
    Plan? plan;

    void Use(int batch, int seq)
    {
        Batch = batch;
        Seq = seq;
        int found = plans.FindIndex(p => p.Batch == batch && p.Seq == seq);
        if (found >= 0)
        {
            plan = plans[found].Plan;
            plans.RemoveAt(found);
        }
        else
        {
            if (plans.Count == KeptPlans)
            {
                plans[0].Plan.Workspace.Dispose();
                plans.RemoveAt(0);
            }
            // Weights, gradients and Adam's two moments, and the plans kept, stay beside the new one. A plan that fits
            // can still have a launch past what an int indexes (attention's batch·heads·seq² scores).
            Device.EnsureFits(PlanBytes(batch, seq), 4 * ParameterCount * Unsafe.SizeOf<T>() + plans.Sum(p => p.Plan.Workspace.Bytes),
                $"a plan of {batch:N0} × {seq:N0} tokens for {GetType().Name}");
            Device.EnsureLaunchable(LargestLaunch(batch, seq), $"a plan of batch {batch:N0} × seq {seq:N0} for {GetType().Name}");
            var workspace = new Workspace(Device);
            var views = (Inputs: workspace.Take<int>(Rows, "inputs"), Targets: workspace.Take<int>(Rows, "targets"),
                Logits: workspace.Take<T>((long)Rows * Vocabulary, "logits"), Grads: workspace.Take<T>((long)Rows * Vocabulary, "logit gradients"),
                Loss: workspace.Take<T>(Rows, "loss rows"));
            plan = new Plan(workspace, views.Inputs, views.Targets, views.Logits, views.Grads, views.Loss, new T[Rows],
                PlanActivations(workspace));
        }
        plans.Add((batch, seq, plan));
        (Inputs, Targets, LogitsView, LogitGrads, LossRows, lossRows) =
            (plan.Inputs, plan.Targets, plan.Logits, plan.LogitGrads, plan.LossRows, plan.HostLoss);
        UseActivations(plan.Activations);
    }

    /// <summary>
    /// Computes <see cref="LogitsView"/> from <see cref="Inputs"/>, keeping what backward needs. The scan starts
    /// from the carried state when <paramref name="continueState"/> is set, else from zero.
    /// </summary>
    protected abstract void ForwardCore(bool continueState);

    /// <summary>Allocates the carried scan state for <paramref name="batch"/> sequences (models that carry one).</summary>
    protected virtual void PlanState(Workspace workspace, int batch) { }

    /// <summary>Zeroes the carried scan state of every layer (models that carry one).</summary>
    protected virtual void ResetCarry() { }

    /// <summary>Fills <see cref="LossRows"/> and <see cref="LogitGrads"/> (scaled by <paramref name="gradScale"/>).</summary>
    protected abstract void ComputeLoss(T gradScale);

    /// <summary>Back-propagates <see cref="LogitGrads"/> into <see cref="Module{T}.Gradients"/>.</summary>
    protected abstract void BackwardCore();

    /// <inheritdoc />
    protected override void DisposeActivations()
    {
        foreach (var (_, _, kept) in plans) kept.Workspace.Dispose();
        stateSpace?.Dispose();
        lossTotal?.Dispose();
    }
}
