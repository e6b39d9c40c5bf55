namespace GateLoop.Generator.Ir
{
    /// <summary>
    /// A tensor of the forward graph: the expression the schedules name it by (<c>a.Qkv[l]</c>, a local such as
    /// <c>h</c>), the buffer it is stored in when it has one of its own, and where its gradient is written in the
    /// backward schedule (null when nothing flows back, as into the token ids). Values that are one tensor under two
    /// names (a block's input and the residual sum) share a gradient buffer.
    /// </summary>
    internal sealed class Value
    {
        public Value(string expr, string? grad = null, Buffer? storage = null, Buffer? gradStorage = null)
        {
            Expr = expr;
            Grad = grad;
            Storage = storage;
            GradStorage = gradStorage;
        }

        /// <summary>
        /// A value in a buffer of its own in the activations (<c>a.Field</c>, <c>a.Field[l]</c> when there is one per
        /// layer), its gradient in a buffer of the plan named <paramref name="gradients"/> (the backward's scratch).
        /// </summary>
        public static Value Stored(Buffer storage, Buffer? gradient = null, string gradients = "a") =>
            new Value(storage.Count is null ? $"a.{storage.Field}" : $"a.{storage.Field}[l]",
                gradient is null ? null : $"{gradients}.{gradient.Field}", storage, gradient);

        public string Expr { get; }

        public string? Grad { get; }

        public Buffer? Storage { get; }

        public Buffer? GradStorage { get; }

        public override string ToString() => Expr;
    }
}
