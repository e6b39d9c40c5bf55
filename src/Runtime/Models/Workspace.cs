using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// Device buffers for one (batch, sequence length) plan. Models allocate every activation once per shape
/// and reuse it on every step; disposing the workspace frees them all.
/// </summary>
public sealed class Workspace(Device device) : IDisposable
{
    readonly List<MemoryBuffer> buffers = [];

    /// <summary>Total bytes held.</summary>
    public long Bytes => buffers.Sum(b => b.LengthInBytes);

    /// <summary>A zeroed view of <paramref name="length"/> elements that lives as long as the workspace.</summary>
    public ArrayView<T> Take<T>(long length) where T : unmanaged
    {
        var buffer = device.Allocate<T>(length);
        buffers.Add(buffer);
        return buffer.View.SubView(0, length);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var b in buffers) b.Dispose();
        buffers.Clear();
    }
}
