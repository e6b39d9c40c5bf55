using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// A raw pointer into a host buffer with <see cref="ArrayView{T}"/>'s indexing, for the host twins of generated
/// kernels: the same kernel body reads through it without the view's per-access indirection.
/// </summary>
/// <typeparam name="T">The element type.</typeparam>
public readonly unsafe struct HostView<T> where T : unmanaged
{
    readonly T* pointer;

    /// <summary>Points at the first element of <paramref name="view"/>, which must live in host memory.</summary>
    public HostView(ArrayView<T> view)
    {
        pointer = view.Length == 0 ? null : (T*)view.LoadEffectiveAddressAsPtr();
        Length = view.Length;
    }

    /// <summary>The number of elements.</summary>
    public long Length { get; }

    /// <summary>The element at <paramref name="index"/>.</summary>
    public ref T this[long index]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ref pointer[index];
    }
}
