using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// One residual block of the transformer, the seed's PreNorm(fn) or PostNorm(fn): a pre-norm block feeds its ops
    /// h = RMSNorm(x) (the local <c>h</c>) and adds their result to x as the next element of the residual stream; a
    /// post-norm block feeds them x itself and takes LayerNorm(x + f(x)). The stream X[0…blocks] and its gradient dX are shared by every
    /// block. The block's last op writes the residual sum: in a pre-norm block an output projection whose GEMM adds into
    /// x's copy (the sum is the stream), in a post-norm block the projection alone, x then added where the LayerNorm
    /// reads the sum (<c>AddResidual</c>, which a rewrite fuses into the norm's rows); or, when the mixer has no
    /// projection, the block adds the ops' output to x itself.
    /// </summary>
    internal sealed class Block : Sequence
    {
        readonly (string Forward, string Backward) titles;
        readonly string blocks;
        readonly bool pre;
        readonly Op norm;
        readonly Value x, sum;
        readonly Value? added;

        /// <param name="titles">The comments the schedules open the block with.</param>
        /// <param name="blocks">How many blocks the model has, e.g. <c>2 * Depth</c>: the stream has one element more.</param>
        /// <param name="x">The block's input, an element of the stream, whose gradient is the stream's.</param>
        /// <param name="sum">x + f: the next element of the stream (pre-norm) or what the LayerNorm normalizes.</param>
        /// <param name="norm">The RMSNorm producing h (pre-norm) or the LayerNorm after the sum (post-norm).</param>
        /// <param name="added">The ops' output, when the block adds it to x itself; null when the last op writes into the sum.</param>
        public Block(string module, (string Forward, string Backward) titles, string blocks, bool pre, Value x, Value sum, Op norm,
            IReadOnlyList<Op> ops, Value? added) : base(module, ops)
        {
            this.titles = titles;
            this.blocks = blocks;
            this.pre = pre;
            this.x = x;
            this.sum = sum;
            this.norm = norm;
            this.added = added;
        }

        public override IEnumerable<Param> Parameters => base.Parameters.Concat(norm.Parameters.Select(p => p.Under(Module)));

        /// <summary>The residual stream's gradient, which every block shares.</summary>
        public static readonly Buffer StreamGradient = new Buffer("DX", null, "rows * Dim", "gradient of the residual stream", BufferUse.Gradient);

        /// <summary>The gradient of a pre-norm block's normalized input, which every block shares.</summary>
        public static readonly Buffer NormedGradient = new Buffer("DH", null, "rows * Dim", "gradient of a block's normalized input", BufferUse.Gradient);

        public override IEnumerable<Buffer> Buffers
        {
            get
            {
                yield return new Buffer("X", blocks + " + 1", "rows * Dim", "residual stream at each block boundary");
                if (pre)
                {
                    yield return new Buffer("H", blocks + " + 1", "rows * Dim", "RMSNorm outputs: the inputs of each block and of the head");
                    yield return new Buffer("InvNorm", blocks + " + 1", "rows", "1/‖x‖ per row of each RMSNorm");
                }
                else
                {
                    yield return new Buffer("Sum", blocks, "rows * Dim", "x + f(x) before each block's LayerNorm");
                    yield return new Buffer("NormStats", blocks, "rows * 2", "mean and rstd per row of each LayerNorm");
                }
                foreach (var b in base.Buffers.Concat(norm.Buffers)) yield return b;
                yield return StreamGradient;
                if (pre) yield return NormedGradient;
            }
        }

        public override IEnumerable<KernelSource> Kernels(Numeric n)
        {
            foreach (var k in norm.Kernels(n)) yield return k;
            foreach (var k in base.Kernels(n)) yield return k;
            if (added is null && !pre)
                foreach (var k in KernelSource.Of(AddResidual, n)) yield return k;
            if (added is not null)
                yield return new KernelSource("Add", $$"""
                    /// <summary>sum = a + b.</summary>
                    public static void Add(Index1D index, ArrayView<{{n.Type}}> a, ArrayView<{{n.Type}}> b, ArrayView<{{n.Type}}> sum) =>
                        sum[index] = a[index] + b[index];
                    """);
        }

        public override void Forward(Schedule s)
        {
            s.Comment(titles.Forward + ".");
            if (pre) norm.Forward(s);
            if (added is null)
            {
                foreach (var op in Ops.Take(Ops.Count - 1)) op.Forward(s);
                if (pre) s.Copy(x, sum);
                Ops[Ops.Count - 1].Forward(s);
                if (!pre) s.Launch("AddResidual", "R * Dim", sum, x);
            }
            else
            {
                base.Forward(s);
                s.Launch("Add", "R * Dim", x, added, sum);
            }
            if (!pre) norm.Forward(s);
        }

        static readonly LaneMap AddResidual = new LaneMap("AddResidual", "s += r: the residual r added to the block's output s.",
            new[] { ("s", "se"), ("r", "re") }, new (string, Lane)[0], new[] { ("s", (Lane)"se" + "re") });

        // dX holds the gradient of the block's output, and flows on unchanged to x through the residual.
        public override void Backward(Schedule s)
        {
            s.Comment(titles.Backward + ".");
            s.Holds(x);
            if (!pre) norm.Backward(s);
            base.Backward(s);
            if (pre) norm.Backward(s);
        }
    }
}
