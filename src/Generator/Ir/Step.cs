using System.Collections.Generic;
using System.Linq;

namespace GateLoop.Generator.Ir
{
    /// <summary>What a step passes: a tensor, a parameter's view (its weights or its gradient), or a scalar.</summary>
    internal abstract class Arg
    {
        /// <summary>The element type (<see cref="Value.Real"/> for the model's), of a view or of a scalar.</summary>
        public abstract string Element { get; }

        public static implicit operator Arg(Value v) => new TensorArg(v);

        /// <summary>An int scalar the schedules have in scope (<c>Seq</c>).</summary>
        public static implicit operator Arg(string expr) => new ScalarArg(expr, "int");
    }

    internal sealed class TensorArg : Arg
    {
        public TensorArg(Value value) => Value = value;

        public Value Value { get; }

        public override string Element => Value.Element;
    }

    /// <summary>A view of a parameter: its slice of the flat weights, or of their gradients.</summary>
    internal sealed class ParamArg : Arg
    {
        public ParamArg(Param param, bool gradient)
        {
            Param = param;
            IsGradient = gradient;
        }

        public Param Param { get; }

        public bool IsGradient { get; }

        public override string Element => Value.Real;
    }

    /// <summary>A scalar: a C# expression of an element type (<see cref="Value.Real"/> for the model's).</summary>
    internal sealed class ScalarArg : Arg
    {
        public ScalarArg(string expr, string type, bool isZero = false)
        {
            Expr = expr;
            Type = type;
            IsZero = isZero;
        }

        public string Expr { get; }

        public string Type { get; }

        /// <summary>Whether it is the literal 0 (a β that overwrites).</summary>
        public bool IsZero { get; }

        public override string Element => Type;
    }

    /// <summary>A node of a schedule; what it reads and writes is what the passes reason about.</summary>
    internal abstract class Step
    {
        /// <summary>The tensors the step reads.</summary>
        public virtual IEnumerable<Value> Reads => Enumerable.Empty<Value>();

        /// <summary>The tensors the step writes.</summary>
        public virtual IEnumerable<Value> Writes => Enumerable.Empty<Value>();

        /// <summary>The steps inside this one (a choice's branches), themselves included, in order.</summary>
        public virtual IEnumerable<Step> Flatten() => new[] { this };

        protected static IEnumerable<Value> Tensors(params Arg[] args) => args.OfType<TensorArg>().Select(t => t.Value);
    }

    /// <summary>
    /// A kernel launched over a domain of indices, its arguments bound to the kernel's parameters in order (a
    /// binding that does not fit the kernel is kept, for the launch check to report).
    /// </summary>
    internal sealed class Launch : Step
    {
        public Launch(string kernel, KernelSignature? signature, Size domain, IReadOnlyList<Arg> args)
        {
            Kernel = kernel;
            Signature = signature;
            Domain = domain;
            Args = args;
        }

        public string Kernel { get; }

        /// <summary>The kernel's parameters, null when no op contributes a kernel of that name.</summary>
        public KernelSignature? Signature { get; }

        public Size Domain { get; }

        public IReadOnlyList<Arg> Args { get; }

        /// <summary>Each argument with the parameter it binds (only as many as both have).</summary>
        public IEnumerable<(KernelParameter Parameter, Arg Arg)> Bindings =>
            Signature is null ? Enumerable.Empty<(KernelParameter, Arg)>() : Signature.Parameters.Zip(Args, (p, a) => (p, a));

        public override IEnumerable<Value> Reads => Bindings.Where(b => b.Parameter.Reads).SelectMany(b => Tensors(b.Arg));

        public override IEnumerable<Value> Writes => Bindings.Where(b => b.Parameter.Writes).SelectMany(b => Tensors(b.Arg));
    }

    /// <summary>C[m×n] = op(A)·op(B) + β·C on the device (row-major, packed).</summary>
    internal sealed class Gemm : Step
    {
        public Gemm(bool transA, bool transB, Size m, Size n, Size k, Arg a, Arg b, ScalarArg beta, Arg c)
        {
            (TransA, TransB, M, N, K, A, B, Beta, C) = (transA, transB, m, n, k, a, b, beta, c);
        }

        public bool TransA { get; }
        public bool TransB { get; }
        public Size M { get; }
        public Size N { get; }
        public Size K { get; }
        public Arg A { get; }
        public Arg B { get; }
        public ScalarArg Beta { get; }
        public Arg C { get; }

        /// <summary>Whether C's old contents count (β ≠ 0).</summary>
        public bool Accumulates => !Beta.IsZero;

        public override IEnumerable<Value> Reads => Tensors(A, B).Concat(Accumulates ? Tensors(C) : Enumerable.Empty<Value>());

        public override IEnumerable<Value> Writes => Tensors(C);
    }

    /// <summary>
    /// A Linear's forward product y = x·Wᵀ + β·y over the rows, W the [outs × ins] parameter: the module's product,
    /// which reads the weights' reduced copies when inference chose them.
    /// </summary>
    internal sealed class LinearProduct : Step
    {
        public LinearProduct(Param weight, Size outs, Size ins, Value x, bool accumulate, Value y)
        {
            (Weight, Outs, Ins, X, Accumulate, Y) = (weight, outs, ins, x, accumulate, y);
        }

        public Param Weight { get; }
        public Size Outs { get; }
        public Size Ins { get; }
        public Value X { get; }
        public bool Accumulate { get; }
        public Value Y { get; }

        public override IEnumerable<Value> Reads => Accumulate ? new[] { X, Y } : new[] { X };

        public override IEnumerable<Value> Writes => new[] { Y };
    }

    /// <summary>dst += Σ over the rows of m (bias gradients).</summary>
    internal sealed class ColumnSum : Step
    {
        public ColumnSum(Size columns, Value m, Arg dst)
        {
            Columns = columns;
            M = m;
            Dst = dst;
        }

        public Size Columns { get; }
        public Value M { get; }
        public Arg Dst { get; }

        public override IEnumerable<Value> Reads => new[] { M }.Concat(Tensors(Dst));

        public override IEnumerable<Value> Writes => Tensors(Dst);
    }

    /// <summary>to = from (a residual kept before an op adds into it).</summary>
    internal sealed class Copy : Step
    {
        public Copy(Value from, Value to)
        {
            From = from;
            To = to;
        }

        public Value From { get; }
        public Value To { get; }

        public override IEnumerable<Value> Reads => new[] { From };

        public override IEnumerable<Value> Writes => new[] { To };
    }

    /// <summary>Zeroes a tensor, or only when <see cref="Unless"/> (a condition the schedule has in scope) is false.</summary>
    internal sealed class Zero : Step
    {
        public Zero(Value target, string? unless = null)
        {
            Target = target;
            Unless = unless;
        }

        public Value Target { get; }
        public string? Unless { get; }

        public override IEnumerable<Value> Writes => new[] { Target };
    }

    /// <summary>A remark the rendered schedule carries.</summary>
    internal sealed class Comment : Step
    {
        public Comment(string text) => Text = text;

        public string Text { get; }
    }

    /// <summary>
    /// Names <see cref="Local"/> as one of two tensors by a condition the schedule has in scope (a scan's state:
    /// the carried one while generating, else the plan's).
    /// </summary>
    internal sealed class Select : Step
    {
        public Select(Value local, string condition, Value ifTrue, Value ifFalse)
        {
            (Local, Condition, IfTrue, IfFalse) = (local, condition, ifTrue, ifFalse);
        }

        public Value Local { get; }
        public string Condition { get; }
        public Value IfTrue { get; }
        public Value IfFalse { get; }

        public override IEnumerable<Value> Reads => new[] { IfTrue, IfFalse };

        public override IEnumerable<Value> Writes => new[] { Local };
    }

    /// <summary>One of two step lists by a condition the schedule has in scope (the GPU's chunked scans).</summary>
    internal sealed class Choice : Step
    {
        public Choice(string condition, IReadOnlyList<Step> then, IReadOnlyList<Step> otherwise)
        {
            Condition = condition;
            Then = then;
            Otherwise = otherwise;
        }

        public string Condition { get; }
        public IReadOnlyList<Step> Then { get; }
        public IReadOnlyList<Step> Otherwise { get; }

        public override IEnumerable<Step> Flatten() => new Step[] { this }.Concat(Then.SelectMany(s => s.Flatten())).Concat(Otherwise.SelectMany(s => s.Flatten()));
    }
}
