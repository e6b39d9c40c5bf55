using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ir
{
    /// <summary>How a buffer of the activation plan is used.</summary>
    internal enum BufferUse
    {
        /// <summary>Computed by the forward schedule (and kept, when backward reads it).</summary>
        Forward,

        /// <summary>Scratch of the backward schedule: gradients of activations.</summary>
        Gradient,

        /// <summary>Scratch only a GPU's schedule uses (the chunked scans'); its contents differ between devices.</summary>
        Schedule,
    }

    /// <summary>
    /// One buffer an op needs for a (batch, seq): one per layer when <paramref name="Count"/> is given (a constant
    /// expression such as <c>Depth</c>), else one shared; sized by an expression over <c>rows</c> (batch·seq),
    /// <c>batch</c>, <c>seq</c> and the model's constants. Ops that share a buffer declare it alike.
    /// </summary>
    internal sealed record Buffer(string Field, string? Count, string Size, string Why, BufferUse Use = BufferUse.Forward);

    /// <summary>Kernel source an op contributes: static ILGPU kernel methods, and host range entries for some of them.</summary>
    /// <param name="Key">Ops that need the same kernels give the same key; they are emitted once.</param>
    internal sealed record KernelSource(string Key, string Kernel, string HostEntry = "")
    {
        /// <summary>
        /// A lane kernel with its host entry, and its lane struct and the lane helpers it calls apart (they define
        /// no kernel, so stay when the kernel is fused away; a helper's key is shared by every map that calls it).
        /// </summary>
        public static IEnumerable<KernelSource> Of(ILaneKernel map, Numeric n)
        {
            yield return new KernelSource(map.Name, map.Kernel(n), map.HostEntry(n));
            if (n.IsDouble) yield break;
            yield return new KernelSource(map.Name + "Lanes", "", map.Lanes(n));
            foreach (var helper in map.Helpers) yield return new KernelSource(helper.VectorName, "", helper.Vector());
        }

        /// <summary>A row op's rows in SIMD lanes (float), apart from its host entry as a lane struct is, so that they stay when its kernel is fused away.</summary>
        public static IEnumerable<KernelSource> LanesOf(LaneRow row, Numeric n)
        {
            if (!n.IsDouble) yield return new KernelSource(row.Name + "Simd", "", row.Lanes(n));
        }
    }

    /// <summary>
    /// A node of the IR: what one operation of a model owns and does. Its parameters (PyTorch names, shapes, init),
    /// the buffers it needs, its kernels (with their host entries), and the steps of its forward pass and of its
    /// backward pass (kernel launches over its values), which the backward schedule runs in the reverse order of the
    /// forward. An op kind is one
    /// file under Ops/.
    /// </summary>
    internal abstract class Op
    {
        public virtual IEnumerable<Param> Parameters => Enumerable.Empty<Param>();

        /// <summary>The values this op computes; their buffers (and their gradients') are part of the activation plan.</summary>
        public virtual IEnumerable<Value> Outputs => Enumerable.Empty<Value>();

        /// <summary>Every buffer the op needs: its outputs' and their gradients', and any scratch of its own.</summary>
        public virtual IEnumerable<Buffer> Buffers =>
            Outputs.SelectMany(v => new[] { v.Storage, v.Grad?.Storage }).Where(b => b is not null).Select(b => b!);

        public virtual IEnumerable<KernelSource> Kernels(Numeric n) => Enumerable.Empty<KernelSource>();

        /// <summary>Members the op needs in the model class beside its kernels (the chunked scans' switch), keyed like kernels.</summary>
        public virtual IEnumerable<KernelSource> Members(Numeric n) => Enumerable.Empty<KernelSource>();

        public abstract void Forward(Schedule s);

        public abstract void Backward(Schedule s);
    }
}
