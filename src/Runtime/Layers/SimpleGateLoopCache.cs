using System.Numerics;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// The state a <see cref="SimpleGateLoopLayer{T}"/> carries from one call to the next, as in the seed's
/// <c>(a[:, -1], kv[:, -1])</c>: per sequence and channel, the cumulative gate Π a over everything seen so far and
/// the last state S. A fresh (or <see cref="Reset"/>) cache holds gate 1 and state 0, which is the same as no cache.
/// Passing it to consecutive <see cref="SimpleGateLoopLayer{T}.Forward"/> calls continues the sequence exactly.
/// Create one with <see cref="SimpleGateLoopLayer{T}.CreateCache"/>.
/// </summary>
public sealed class SimpleGateLoopCache<T> : IDisposable where T : unmanaged, IFloatingPoint<T>
{
    readonly MemoryBuffer1D<T, Stride1D.Dense> gate, state;

    internal SimpleGateLoopCache(Device device, int batch, int width)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), $"batch ({batch}) must be positive");
        Device = device;
        Batch = batch;
        Width = width;
        gate = device.Allocate<T>((long)batch * width);
        state = device.Allocate<T>((long)batch * width);
        Reset();
    }

    /// <summary>The device holding the buffers.</summary>
    public Device Device { get; }

    /// <summary>Sequences in the batch.</summary>
    public int Batch { get; }

    /// <summary>Channels per sequence (the layer's Dim).</summary>
    public int Width { get; }

    /// <summary>Cumulative gate Π a per sequence and channel, [batch, Dim].</summary>
    public ArrayView<T> Gate => gate.View;

    /// <summary>Last state S per sequence and channel, [batch, Dim].</summary>
    public ArrayView<T> State => state.View;

    /// <summary>Starts over: gate 1, state 0.</summary>
    public void Reset()
    {
        var ones = new T[gate.Length];
        Array.Fill(ones, T.One);
        gate.View.CopyFromCPU(ones);
        state.MemSetToZero();
    }

    /// <summary>A host copy of <see cref="Gate"/>.</summary>
    public T[] ReadGate() => Module<T>.Read(Gate);

    /// <summary>A host copy of <see cref="State"/>.</summary>
    public T[] ReadState() => Module<T>.Read(State);

    /// <inheritdoc />
    public void Dispose()
    {
        gate.Dispose();
        state.Dispose();
    }
}
