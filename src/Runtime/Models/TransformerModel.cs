using System.Numerics;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// What every generated GateLoop model shares: the loss of a batch and its gradient, logits, token checks, and the
/// plans (<see cref="ModelPlan{T}"/>, kept per (batch, sequence length)) the generated forward and backward run on;
/// generation runs in a <see cref="GenerationSession{T}"/>. The generated subclass supplies the kernels and the order
/// in which they run.
/// </summary>
/// <typeparam name="T">The element type the model was compiled for (float, or double for verification).</typeparam>
public abstract class TransformerModel<T> : Module<T> where T : unmanaged, IFloatingPoint<T>
{
    readonly PlanCache<T> plans;
    int[] inputRows = [], targetRows = [];
    MemoryBuffer1D<T, Stride1D.Dense>? lossTotal;
    readonly T[] lossRead = new T[1];
    // The plan of the last Forward while it is the last run (what Backward back-propagates), and the live session.
    ModelPlan<T>? forwarded;
    GenerationSession<T>? session;

    /// <summary>Creates the model's buffers on <paramref name="device"/>; weights are zero until initialized.</summary>
    protected TransformerModel(Device device, IReadOnlyList<ParameterInfo> parameters) : base(device, parameters) =>
        // Weights, gradients and Adam's two moments stay beside every plan.
        plans = new PlanCache<T>(device, (batch, seq, bf16) => new ModelPlan<T>(device, batch, seq, bf16, Vocabulary, PlanActivations),
            PlanBytes, LargestLaunch, 4 * ParameterCount * Unsafe.SizeOf<T>(), GetType().Name);

    /// <summary>Vocabulary size.</summary>
    public abstract int Vocabulary { get; }

    /// <summary>
    /// Runs the model on <paramref name="tokens"/> ([batch × (seq+1)]: each row's first seq tokens are inputs,
    /// the last seq are targets) and returns the mean cross-entropy in nats. The gradient of
    /// <c>gradScale · loss</c> is prepared for <see cref="Backward"/>.
    /// </summary>
    public double Forward(ReadOnlySpan<int> tokens, int batch, int seq, double gradScale = 1.0)
    {
        var plan = RunForward(tokens, batch, seq, gradScale);
        plan.LossRows.CopyToCPU(plan.HostLoss);
        double sum = 0;
        foreach (var l in plan.HostLoss) sum += double.CreateChecked(l);
        return sum / (batch * seq);
    }

    /// <summary>
    /// <see cref="Forward"/> without the read-back: adds <paramref name="lossWeight"/> × the batch's mean
    /// cross-entropy to a total kept on the device, so a training step of several micro-batches waits for the
    /// device once, when <see cref="ReadLoss"/> takes the total.
    /// </summary>
    public void ForwardAccumulate(ReadOnlySpan<int> tokens, int batch, int seq, double gradScale, double lossWeight)
    {
        var plan = RunForward(tokens, batch, seq, gradScale);
        lossTotal ??= Device.Allocate<T>(1);
        Device.ColumnSum(batch * seq, 1, plan.LossRows, lossTotal.View, T.CreateChecked(lossWeight / (batch * seq)));
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
    ModelPlan<T> RunForward(ReadOnlySpan<int> tokens, int batch, int seq, double gradScale)
    {
        CheckShape(batch, seq);
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
        var plan = Run(inputRows, targetRows, batch, seq, continueState: false);
        ComputeLoss(plan, T.CreateChecked(gradScale / (batch * seq)));
        forwarded = plan;
        return plan;
    }

    /// <summary>Logits [batch × seq × Vocabulary] for <paramref name="inputs"/> ([batch × seq] tokens).</summary>
    public T[] Logits(ReadOnlySpan<int> inputs, int batch, int seq)
    {
        CheckShape(batch, seq);
        if (inputs.Length != batch * seq)
            throw new ArgumentException($"expected batch × seq = {batch * seq} tokens, got {inputs.Length}", nameof(inputs));
        return Read(Run(inputs.ToArray(), null, batch, seq, continueState: false).Logits);
    }

    /// <summary>
    /// Uploads the tokens into the plan for (<paramref name="batch"/>, <paramref name="seq"/>) and runs the forward on
    /// it, from the carried state of the live session when <paramref name="continueState"/> is set.
    /// </summary>
    internal ModelPlan<T> Run(int[] inputs, int[]? targets, int batch, int seq, bool continueState)
    {
        CheckTokens(inputs);
        if (targets is not null) CheckTokens(targets);
        var plan = plans.Use(batch, seq, KeepsBf16);
        plan.Inputs.CopyFromCPU(inputs);
        if (targets is not null) plan.Targets.CopyFromCPU(targets);
        forwarded = null;
        Inferring = targets is null;
        ForwardCore(plan, continueState);
        return plan;
    }

    /// <summary>
    /// True while the forward runs for logits or generation, not for a loss: no backward reads what it saves, so the
    /// generated forward may take launches that keep only what the next layer reads.
    /// </summary>
    protected bool Inferring { get; private set; }

    static void CheckShape(int batch, int seq)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), $"batch must be positive, got {batch}");
        if (seq <= 0) throw new ArgumentOutOfRangeException(nameof(seq), $"seq must be positive, got {seq}");
    }

    void CheckTokens(int[] tokens)
    {
        foreach (var t in tokens)
            if ((uint)t >= (uint)Vocabulary)
                throw new ArgumentOutOfRangeException(nameof(tokens), $"token {t} is outside the vocabulary [0, {Vocabulary})");
    }

    /// <summary>
    /// True when the model carries a recurrent state, so a <see cref="GenerationSession{T}"/>'s step costs the same per
    /// token and sequences of different lengths can step together, each one's state moved on its own; models without
    /// one (softmax attention) re-run the whole prefix on each step.
    /// </summary>
    public bool HasRecurrentState => CarriesState;

    /// <summary>Whether the generated model carries a recurrent state (<see cref="HasRecurrentState"/>).</summary>
    protected virtual bool CarriesState => true;

    /// <summary>
    /// Starts <paramref name="batch"/> sequences for generation, each from a zero state, and ends the session started
    /// before, if any.
    /// </summary>
    public GenerationSession<T> StartGeneration(int batch)
    {
        session?.Dispose();
        return session = new GenerationSession<T>(this, batch);
    }

    /// <summary>Allocates the carried state of a session for <paramref name="batch"/> sequences and zeroes it.</summary>
    internal void StartState(Workspace state, int batch)
    {
        PlanState(state, batch);
        ResetCarry();
    }

    internal void Ended(GenerationSession<T> ended)
    {
        if (session == ended) session = null;
    }

    /// <summary>Adds the gradient of the last <see cref="Forward"/>'s scaled loss into <see cref="Module{T}.Gradients"/>.</summary>
    /// <exception cref="InvalidOperationException">The last run of the model was not a <see cref="Forward"/>.</exception>
    public void Backward()
    {
        if (forwarded is null || !plans.Holds(forwarded))
            throw new InvalidOperationException("call Forward before Backward: the last run of the model was no Forward (Logits or generation since, or none)");
        BackwardCore(forwarded);
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

    /// <summary>Bytes of activation memory planned for the (batch, sequence length) of the last run.</summary>
    public long ActivationBytes => plans.Latest?.Workspace.Bytes ?? 0;

    /// <summary>The buffers of the last run's plan (inputs, logits, every activation), for the device check.</summary>
    internal Workspace? PlannedBuffers => plans.Latest?.Workspace;

    /// <summary>
    /// Whether a plan made now keeps the activations only matrix products read in bf16: when the products take bf16
    /// inputs (<see cref="Device.GemmPrecision"/>), which would round those activations to the same numbers.
    /// </summary>
    bool KeepsBf16 => KeepsBf16Copies && typeof(T) == typeof(float) && Device.GemmPrecision == GemmPrecision.Bf16;

    /// <summary>
    /// Whether plans for bf16 products keep those activations as bf16 copies (the default); off, the products round
    /// them as they read them, which must give the same numbers (what the tests compare).
    /// </summary>
    internal bool KeepsBf16Copies { get; set; } = true;

    /// <summary>
    /// Bytes of device memory a plan for <paramref name="batch"/> sequences of <paramref name="seq"/> tokens takes at the
    /// device's GEMM precision: the activations, the tokens, the logits and their gradient.
    /// </summary>
    public long PlanBytes(int batch, int seq) => PlanBytes(batch, seq, KeepsBf16);

    /// <summary>
    /// <see cref="PlanBytes(int, int)"/> of a plan that keeps the activations only matrix products read in bf16
    /// (<paramref name="bf16"/>, for bf16 products) or in fp32.
    /// </summary>
    public long PlanBytes(int batch, int seq, bool bf16)
    {
        long rows = (long)batch * seq;
        return 2 * rows * sizeof(int) + ActivationPlanBytes(batch, seq, bf16 && typeof(T) == typeof(float)) + rows * (2L * Vocabulary + 1) * Unsafe.SizeOf<T>();
    }

    /// <summary>
    /// Allocates the activations for <paramref name="batch"/> × <paramref name="seq"/> from <paramref name="workspace"/>,
    /// those only matrix products read kept in bf16 when <paramref name="bf16"/>.
    /// </summary>
    protected abstract object PlanActivations(Workspace workspace, int batch, int seq, bool bf16);

    /// <summary>The bytes <see cref="PlanActivations"/> takes for (<paramref name="batch"/>, <paramref name="seq"/>, <paramref name="bf16"/>).</summary>
    protected abstract long ActivationPlanBytes(int batch, int seq, bool bf16);

    /// <summary>The launch with the most indices a plan for (<paramref name="batch"/>, <paramref name="seq"/>) makes, counted in 64 bits.</summary>
    protected abstract (long Indices, string Kernel) LargestLaunch(int batch, int seq);

    /// <summary>
    /// Computes <paramref name="plan"/>'s logits from its inputs, keeping what backward needs. The scan starts from the
    /// carried state of the live session when <paramref name="continueState"/> is set, else from zero.
    /// </summary>
    protected abstract void ForwardCore(ModelPlan<T> plan, bool continueState);

    /// <summary>Allocates the carried scan state for <paramref name="batch"/> sequences (models that carry one).</summary>
    protected virtual void PlanState(Workspace workspace, int batch) { }

    /// <summary>Zeroes the carried scan state of every layer (models that carry one).</summary>
    protected virtual void ResetCarry() { }

    /// <summary>Fills <paramref name="plan"/>'s loss rows and logit gradients (scaled by <paramref name="gradScale"/>).</summary>
    protected abstract void ComputeLoss(ModelPlan<T> plan, T gradScale);

    /// <summary>Back-propagates <paramref name="plan"/>'s logit gradients into <see cref="Module{T}.Gradients"/>.</summary>
    protected abstract void BackwardCore(ModelPlan<T> plan);

    /// <inheritdoc />
    protected override void DisposeActivations()
    {
        session?.Dispose();
        plans.Dispose();
        lossTotal?.Dispose();
    }
}
