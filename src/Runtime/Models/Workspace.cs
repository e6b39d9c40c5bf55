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
    readonly List<(string Name, string? Meaning, MemoryBuffer Buffer, long Offset, long Length)> named = [];

    /// <summary>Total bytes held.</summary>
    public long Bytes => buffers.Sum(b => b.LengthInBytes);

    /// <summary>
    /// A zeroed view of <paramref name="length"/> elements that lives as long as the workspace. A
    /// <paramref name="name"/> lists it in <see cref="Named"/>, for the device check; leave it out for scratch whose
    /// contents depend on the schedule (a GPU's chunked scans use buffers the host's sequential scans never touch).
    /// <paramref name="meaning"/> says what a name stands for, when the name alone does not.
    /// </summary>
    public ArrayView<T> Take<T>(long length, string? name = null, string? meaning = null) where T : unmanaged
    {
        var buffer = device.Allocate<T>(length);
        buffers.Add(buffer);
        if (name is not null) named.Add((name, meaning, buffer, 0, length));
        return buffer.View.SubView(0, length);
    }

    /// <summary>
    /// <paramref name="count"/> activations of <paramref name="length"/> elements that only matrix products read (one a
    /// layer), named <c>name[i]</c>: each its own buffer, or with <paramref name="bf16"/> each its own bf16 copy beside
    /// one buffer of values they share, as each layer computes its values and keeps them in bf16 before the next does.
    /// </summary>
    public GemmInput<T>[] TakeGemmInputs<T>(int count, long length, bool bf16, string name, string meaning) where T : unmanaged
    {
        if (!bf16) return [.. Enumerable.Range(0, count).Select(i => (GemmInput<T>)Take<T>(length, $"{name}[{i}]", meaning))];
        var values = Take<T>(length, name, $"{meaning}, each layer's until its product keeps it in bf16");
        return [.. Enumerable.Range(0, count).Select(i => new GemmInput<T>(values, Take<ushort>(length, $"{name}[{i}]", $"{meaning}, in bf16")))];
    }

    /// <summary>Every buffer in the order it was taken.</summary>
    internal IReadOnlyList<MemoryBuffer> Buffers => buffers;

    /// <summary>
    /// A zeroed region of <paramref name="length"/> elements and named views of its <paramref name="parts"/>, for
    /// buffers a plan packs into one region because they are never live at once (parts may overlap).
    /// </summary>
    public ArrayView<T>[] TakeParts<T>(long length, params (long Offset, long Length, string Name, string? Meaning)[] parts) where T : unmanaged
    {
        var buffer = device.Allocate<T>(length);
        buffers.Add(buffer);
        foreach (var p in parts) named.Add((p.Name, p.Meaning, buffer, p.Offset, p.Length));
        return parts.Select(p => (ArrayView<T>)buffer.View.SubView(p.Offset, p.Length)).ToArray();
    }

    /// <summary>The named buffers in the order they were taken, each with where it starts and the length asked for.</summary>
    internal IReadOnlyList<(string Name, string? Meaning, MemoryBuffer Buffer, long Offset, long Length)> Named => named;

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var b in buffers) b.Dispose();
        buffers.Clear();
        named.Clear();
    }
}
