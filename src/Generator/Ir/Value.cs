using System.Collections.Generic;

namespace GateLoop.Generator.Ir
{
    /// <summary>
    /// A tensor of the program, one object per tensor: the name the schedules know it by (a buffer of the plan,
    /// <c>a.Qkv[l]</c>, or a view the model holds, <c>LogitsView</c>), its shape as a size over the model's constants
    /// and batch and seq, its element type, its gradient (another tensor, null when nothing flows back, as into the
    /// token ids), and once the program is built, the step that writes it first and the steps that read it. Values
    /// that are one tensor's gradient under several names (a residual stream's elements) share one gradient value.
    /// </summary>
    internal sealed class Value
    {
        /// <summary>The element type of the model's numeric type (float, or double when verifying).</summary>
        public const string Real = "T";

        public Value(string name, Size shape, Value? grad = null, Buffer? storage = null, string element = Real)
        {
            Name = name;
            Shape = shape;
            Grad = grad;
            Storage = storage;
            Element = element;
        }

        /// <summary>
        /// A value in a buffer of its own in a plan (<c>a.Field</c>, <c>a.Field[l]</c> when there is one per layer, or
        /// the element <paramref name="index"/> of a buffer that has several).
        /// </summary>
        public static Value Stored(Buffer storage, Value? grad = null, string plan = "a", string index = "l") =>
            new Value(storage.Count is null ? $"{plan}.{storage.Field}" : $"{plan}.{storage.Field}[{index}]", storage.Size, grad, storage);

        /// <summary>A gradient value stored in <paramref name="storage"/> of the plan <paramref name="plan"/>.</summary>
        public static Value Gradient(Buffer storage, string plan = "a") => Stored(storage, null, plan);

        /// <summary>An identity among the program's values, in the order its schedules first touch them.</summary>
        public int Id { get; internal set; } = -1;

        public string Name { get; }

        public Size Shape { get; }

        /// <summary><see cref="Real"/>, or a C# type such as <c>int</c>.</summary>
        public string Element { get; }

        public Value? Grad { get; }

        public Buffer? Storage { get; }

        /// <summary>The first step that writes it (null for the program's inputs).</summary>
        public Step? Producer { get; internal set; }

        /// <summary>The steps that read it, in schedule order.</summary>
        public List<Step> Consumers { get; } = new List<Step>();

        public override string ToString() => Name;
    }
}
