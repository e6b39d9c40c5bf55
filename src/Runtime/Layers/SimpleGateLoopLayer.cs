using System.Numerics;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// What every generated SimpleGateLoop layer shares: the flat parameter and gradient buffers, initialization,
/// argument checks, the activation plan per (batch, sequence length) and the cache. The generated subclass supplies
/// the constant-size kernels and the order in which they run. The layer works on device views the caller owns, so
/// it can sit between the caller's own kernels:
/// <code>
/// using var layer = new LongContextMixer(device);
/// layer.Initialize(seed: 0);
/// layer.Forward(x, y, batch, seq);      // x, y: [batch·seq·Dim] views on device
/// layer.Backward(dy, dx);                // adds into layer.Gradients, writes dx
/// </code>
/// </summary>
/// <typeparam name="T">The element type the layer was compiled for (float, or double for verification).</typeparam>
public abstract class SimpleGateLoopLayer<T> : Module<T> where T : unmanaged, IFloatingPoint<T>
{
    Workspace? forwardSpace, backwardSpace;
    ArrayView<T> input, initial, scratchGate, scratchState;

    /// <summary>Creates the layer's buffers on <paramref name="device"/>; weights are zero until initialized.</summary>
    /// <param name="device">Where the buffers live and the kernels run.</param>
    /// <param name="parameters">The generated parameter table.</param>
    /// <param name="width">Dim, the channels per position.</param>
    /// <param name="reverse">Whether the layer scans from the last position to the first.</param>
    protected SimpleGateLoopLayer(Device device, IReadOnlyList<ParameterInfo> parameters, int width, bool reverse)
        : base(device, parameters)
    {
        Width = width;
        Reverse = reverse;
    }

    /// <summary>Dim: channels per position of the input and the output.</summary>
    public int Width { get; }

    /// <summary>Whether the layer scans from the last position to the first (and so cannot take a cache).</summary>
    public bool Reverse { get; }

    // The shape of the current plan, which the schedules are passed.
    int batch, seq;

    /// <summary>Bytes of activation memory planned for the current (batch, sequence length), backward scratch included once allocated.</summary>
    public long ActivationBytes => (forwardSpace?.Bytes ?? 0) + (backwardSpace?.Bytes ?? 0);

    /// <summary>The forward's and the backward's buffers, for the device check.</summary>
    internal IEnumerable<Workspace> PlannedBuffers => new[] { forwardSpace, backwardSpace }.OfType<Workspace>();

    /// <summary>A cache for <paramref name="batch"/> sequences on this layer's device, holding gate 1 and state 0.</summary>
    /// <exception cref="InvalidOperationException">The layer is a <see cref="Reverse"/> layer.</exception>
    public SimpleGateLoopCache<T> CreateCache(int batch)
    {
        ThrowIfReverse();
        return new SimpleGateLoopCache<T>(Device, batch, Width);
    }

    /// <summary>
    /// y = layer(x) for x, y of [batch, seq, Dim] on this device. With a <paramref name="cache"/> the scan starts
    /// from its state and leaves the state and cumulative gate after the last position in it, so consecutive calls
    /// continue one sequence exactly; without one it starts from zero. What <see cref="Backward"/> needs is kept,
    /// including the view <paramref name="x"/> itself (not a copy): leave x unchanged until then, and do not let y
    /// alias x. Activations are allocated on the first call for each (batch, seq) and reused after.
    /// </summary>
    /// <exception cref="ArgumentException">A length does not match, or the cache is for another batch size or device.</exception>
    /// <exception cref="InvalidOperationException">A cache was passed to a <see cref="Reverse"/> layer (as in the seed).</exception>
    public void Forward(ArrayView<T> x, ArrayView<T> y, int batch, int seq, SimpleGateLoopCache<T>? cache = null)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), $"batch must be positive, got {batch}");
        if (seq <= 0) throw new ArgumentOutOfRangeException(nameof(seq), $"seq must be positive, got {seq}");
        if ((long)batch * seq * 3 * Width > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(seq), $"batch × seq × 3·Dim ({(long)batch * seq * 3 * Width}) exceeds what one buffer can index");
        long length = (long)batch * seq * Width;
        CheckLength(x, length, nameof(x), "batch × seq × Dim");
        CheckLength(y, length, nameof(y), "batch × seq × Dim");
        if (cache is not null)
        {
            ThrowIfReverse();
            if (cache.Batch != batch || cache.Width != Width || cache.Device != Device)
                throw new ArgumentException(
                    $"the cache holds {cache.Batch} sequences of {cache.Width} channels on {cache.Device.Name}; this call needs {batch} of {Width} on {Device.Name}",
                    nameof(cache));
        }
        if (forwardSpace is null || batch != this.batch || seq != this.seq)
        {
            forwardSpace?.Dispose();
            backwardSpace?.Dispose();
            backwardSpace = null;
            Device.EnsureFits(PlanBytes(batch, seq), 2 * ParameterCount * Unsafe.SizeOf<T>(), $"a plan of {batch:N0} × {seq:N0} positions for {GetType().Name}");
            Device.EnsureLaunchable(LargestLaunch(batch, seq), $"a plan of batch {batch:N0} × seq {seq:N0} for {GetType().Name}");
            forwardSpace = new Workspace(Device);
            (this.batch, this.seq) = (batch, seq);
            long states = (long)batch * Width;
            initial = forwardSpace.Take<T>(states, "initial state");
            scratchGate = forwardSpace.Take<T>(states, "cumulative gate");
            scratchState = forwardSpace.Take<T>(states, "last state");
            PlanForward(forwardSpace, batch, seq);
        }
        // The starting state is copied so backward still has S_0 after the cache moves on.
        if (cache is null) initial.MemSetToZero();
        else cache.State.CopyTo(initial);
        input = x;
        ForwardCore(batch, seq, x, y, initial, cache?.Gate ?? scratchGate, cache?.State ?? scratchState);
    }

    /// <summary>
    /// Back-propagates <paramref name="dy"/> (∂L/∂y of the last <see cref="Forward"/>, [batch, seq, Dim]): adds the
    /// parameter gradients into <see cref="Module{T}.Gradients"/> and writes ∂L/∂x into <paramref name="dx"/>, which may alias
    /// dy. A cache's starting state is a constant here: no gradient flows into an earlier call.
    /// </summary>
    /// <exception cref="InvalidOperationException">No forward pass has run.</exception>
    public void Backward(ArrayView<T> dy, ArrayView<T> dx)
    {
        if (forwardSpace is null) throw new InvalidOperationException("call Forward before Backward");
        long length = (long)batch * seq * Width;
        CheckLength(dy, length, nameof(dy), "batch × seq × Dim of the last Forward");
        CheckLength(dx, length, nameof(dx), "batch × seq × Dim of the last Forward");
        if (backwardSpace is null)
        {
            backwardSpace = new Workspace(Device);
            PlanBackward(backwardSpace, batch, seq);
        }
        BackwardCore(batch, seq, input, dy, dx, initial);
        Device.Synchronize();
    }

    static void CheckLength(ArrayView<T> view, long expected, string name, string what)
    {
        if (view.Length != expected)
            throw new ArgumentException($"{name} has {view.Length} elements; expected {what} = {expected}", name);
    }

    void ThrowIfReverse()
    {
        if (Reverse)
            throw new InvalidOperationException(
                "caching only works with a non-reversed sequence: a Reverse layer scans from the end, so there is no state to carry forward");
    }

    /// <summary>The elements <see cref="PlanForward"/> and <see cref="PlanBackward"/> take for (<paramref name="batch"/>, <paramref name="seq"/>).</summary>
    protected abstract long ActivationElements(int batch, int seq);

    /// <summary>The launch with the most indices a plan for (<paramref name="batch"/>, <paramref name="seq"/>) makes, counted in 64 bits.</summary>
    protected abstract (long Indices, string Kernel) LargestLaunch(int batch, int seq);

    /// <summary>Bytes of device memory a forward and backward of <paramref name="batch"/> × <paramref name="seq"/> positions plan.</summary>
    public long PlanBytes(int batch, int seq) => (ActivationElements(batch, seq) + 3L * batch * Width) * Unsafe.SizeOf<T>();

    /// <summary>Allocates the forward activations for <paramref name="batch"/> × <paramref name="seq"/> from <paramref name="workspace"/>.</summary>
    protected abstract void PlanForward(Workspace workspace, int batch, int seq);

    /// <summary>Allocates the backward scratch for <paramref name="batch"/> × <paramref name="seq"/> (on the first backward per shape).</summary>
    protected abstract void PlanBackward(Workspace workspace, int batch, int seq);

    /// <summary>Computes <paramref name="y"/> from <paramref name="x"/> over <paramref name="batch"/> × <paramref name="seq"/> positions, keeping what backward needs.</summary>
    /// <param name="batch">Sequences.</param>
    /// <param name="seq">Positions per sequence.</param>
    /// <param name="x">Input [batch·seq, Dim].</param>
    /// <param name="y">Output [batch·seq, Dim].</param>
    /// <param name="initial">The starting state S_0 [batch, Dim] (read only).</param>
    /// <param name="gate">The cumulative gate [batch, Dim], multiplied by this call's Π a.</param>
    /// <param name="state">Receives the last state [batch, Dim].</param>
    protected abstract void ForwardCore(int batch, int seq, ArrayView<T> x, ArrayView<T> y, ArrayView<T> initial, ArrayView<T> gate, ArrayView<T> state);

    /// <summary>Adds the parameter gradients of ∂L/∂y = <paramref name="dy"/> (over <paramref name="batch"/> × <paramref name="seq"/> positions) into <see cref="Module{T}.Gradients"/> and writes <paramref name="dx"/>.</summary>
    /// <param name="batch">Sequences of the last forward.</param>
    /// <param name="seq">Positions per sequence of the last forward.</param>
    /// <param name="x">The last forward's input.</param>
    /// <param name="dy">∂L/∂y [batch·seq, Dim].</param>
    /// <param name="dx">Receives ∂L/∂x [batch·seq, Dim]; may alias dy.</param>
    /// <param name="initial">The last forward's starting state S_0.</param>
    protected abstract void BackwardCore(int batch, int seq, ArrayView<T> x, ArrayView<T> dy, ArrayView<T> dx, ArrayView<T> initial);

    /// <inheritdoc />
    protected override void DisposeActivations()
    {
        forwardSpace?.Dispose();
        backwardSpace?.Dispose();
    }
}
