using System.Collections.Generic;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ir
{
    /// <summary>
    /// What an op's forward and backward build their steps with: kernel launches (bound to the kernel's parameters),
    /// GEMMs, Linear products, column sums, copies, zeroing, remarks, choices. It renders nothing; Emit/ does. In a
    /// backward schedule it also keeps which values' gradients hold a sum so far: the first op to write a value's
    /// gradient overwrites its buffer (β = 0), the others add to it, which is how a value read by several ops gets
    /// the sum of their gradients.
    /// </summary>
    internal sealed class Schedule
    {
        readonly IReadOnlyDictionary<string, KernelSignature> kernels;
        readonly HashSet<Value> holding;
        List<Step> steps = new List<Step>();

        /// <param name="kernels">The kernels the graph's ops contribute, by name, which launches bind to.</param>
        public Schedule(Numeric numeric, IReadOnlyDictionary<string, KernelSignature> kernels) : this(numeric, kernels, new HashSet<Value>()) { }

        Schedule(Numeric numeric, IReadOnlyDictionary<string, KernelSignature> kernels, HashSet<Value> holding)
        {
            N = numeric;
            this.kernels = kernels;
            this.holding = holding;
        }

        public Numeric N { get; }

        /// <summary>The steps built so far, in order.</summary>
        public IReadOnlyList<Step> Steps => steps;

        public ScalarArg One => new ScalarArg(N.Lit(1), Value.Real);

        public ScalarArg Zero => new ScalarArg(N.Lit(0), Value.Real, isZero: true);

        /// <summary>A literal of the model's element type.</summary>
        public ScalarArg Lit(double value) => new ScalarArg(N.Lit(value), Value.Real);

        /// <summary>A parameter's view of the flat weights.</summary>
        public Arg W(Param p) => new ParamArg(p, gradient: false);

        /// <summary>The view of a parameter's gradient.</summary>
        public Arg G(Param p) => new ParamArg(p, gradient: true);

        Schedule Add(Step step)
        {
            steps.Add(step);
            return this;
        }

        public Schedule Comment(string text) => Add(new Comment(text));

        /// <summary>Launches kernel <paramref name="kernel"/> over <paramref name="domain"/> indices.</summary>
        public Schedule Launch(string kernel, Size domain, params Arg[] args) =>
            Add(new Launch(kernel, kernels.TryGetValue(kernel, out var signature) ? signature : null, domain, args));

        /// <summary>C[m×n] = op(A)·op(B) + β·C on the device (row-major, packed).</summary>
        public Schedule Gemm(bool transA, bool transB, Size m, Size n, Size k, Arg a, Arg b, ScalarArg beta, Arg c) =>
            Add(new Gemm(transA, transB, m, n, k, a, b, beta, c));

        /// <summary>A Linear's forward product y = x·Wᵀ (+ y when <paramref name="accumulate"/>) over the rows.</summary>
        public Schedule Linear(Param weight, Size outs, Size ins, Value x, bool accumulate, Value y) =>
            Add(new LinearProduct(weight, outs, ins, x, accumulate, y));

        /// <summary>dst += Σ over the rows of m (bias gradients).</summary>
        public Schedule ColumnSum(Size columns, Value m, Arg dst) => Add(new ColumnSum(columns, m, dst));

        public Schedule Copy(Value from, Value to) => Add(new Copy(from, to));

        /// <summary>Zeroes <paramref name="target"/>, or only when <paramref name="unless"/> is false.</summary>
        public Schedule Clear(Value target, string? unless = null) => Add(new Zero(target, unless));

        /// <summary>Names <paramref name="local"/> as <paramref name="ifTrue"/> or <paramref name="ifFalse"/> by <paramref name="condition"/>.</summary>
        public Schedule Select(Value local, string condition, Value ifTrue, Value ifFalse) => Add(new Select(local, condition, ifTrue, ifFalse));

        /// <summary>The steps <paramref name="then"/> builds when <paramref name="condition"/> holds, else those <paramref name="otherwise"/> builds.</summary>
        public Schedule Choose(string condition, System.Action<Schedule> then, System.Action<Schedule> otherwise)
        {
            var outer = steps;
            steps = new List<Step>();
            then(this);
            var first = steps;
            steps = new List<Step>();
            otherwise(this);
            var second = steps;
            steps = outer;
            return Add(new Choice(condition, first, second));
        }

        /// <summary>β for a write of <paramref name="v"/>'s gradient: 0 for the first, which starts the sum, then 1.</summary>
        public ScalarArg Beta(Value v) => holding.Add(v) ? Zero : One;

        /// <summary>Marks <paramref name="v"/>'s gradient as holding a sum already (the residual stream's, which flows on unchanged).</summary>
        public void Holds(Value v) => holding.Add(v);

        /// <summary>For kernels that add into <paramref name="v"/>'s gradient: zeroes its buffer when nothing was written yet.</summary>
        public void EnsureHolding(Value v)
        {
            if (holding.Add(v)) Clear(v.Grad!);
        }
    }
}
