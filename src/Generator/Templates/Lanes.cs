using System.Collections.Generic;
using System.Linq;

namespace GateLoop.Generator.Templates
{
    /// <summary>
    /// An elementwise formula, written once and rendered twice: as scalar C# in the kernel's element type (the ILGPU
    /// kernel, and the host's scalar twin of a double build) and as C# over a register of float lanes of any width
    /// (the host's SIMD lanes of a float build: generic over the runtime's <c>ILaneVector&lt;TV&gt;</c>, a type
    /// parameter <c>TV</c> in scope). Selects are comparisons of floats (a GPU predicates them; see GL0030).
    /// </summary>
    internal abstract class Lane
    {
        /// <summary>The type parameter of the lanes' width, and its constraint.</summary>
        public const string V = "TV", Constraint = "where TV : struct, " + Numeric.Runtime + "ILaneVector<TV>";

        public static implicit operator Lane(double value) => new Constant(value);

        public static implicit operator Lane(string name) => new Named(name);

        public static Lane operator +(Lane a, Lane b) => new Binary("+", 1, a, b);

        public static Lane operator -(Lane a, Lane b) => new Binary("-", 1, a, b);

        public static Lane operator *(Lane a, Lane b) => new Binary("*", 2, a, b);

        public static Lane operator /(Lane a, Lane b) => new Binary("/", 2, a, b);

        public static Lane operator -(Lane a) => new Negation(a);

        public static Lane Exp(Lane x) => new Call(x, n => $"{n.Math}.Exp", $"{Numeric.Runtime}HostSimd.Exp");

        public static Lane Abs(Lane x) => new Call(x, n => $"{n.Math}.Abs", $"{V}.Abs");

        public static Lane Sqrt(Lane x) => new Call(x, n => $"{n.Math}.Sqrt", $"{V}.Sqrt");

        /// <summary><paramref name="a"/> &lt; <paramref name="b"/> ? <paramref name="ifLess"/> : <paramref name="otherwise"/>.</summary>
        public static Lane IfLess(Lane a, Lane b, Lane ifLess, Lane otherwise) => new Select(a, b, ifLess, otherwise);

        /// <summary><paramref name="x"/> == 0 ? <paramref name="ifZero"/> : <paramref name="otherwise"/>.</summary>
        public static Lane IfZero(Lane x, Lane ifZero, Lane otherwise) => new ZeroSelect(x, ifZero, otherwise);

        /// <summary>
        /// Over complex pairs: re·re' + im·im' of a product, the same in both parts (in lanes, a pair's two lanes
        /// added with a swap).
        /// </summary>
        public static Lane PairSum(Lane x) => new Summed(x);

        /// <summary>Over complex pairs: <paramref name="re"/> as the real part and <paramref name="im"/> as the imaginary one.</summary>
        public static Lane Pair(Lane re, Lane im) => new PairParts(re, im);

        /// <summary>The helpers the formula calls, each once.</summary>
        public IEnumerable<LaneHelper> Helpers => Parts().OfType<HelperCall>().Select(h => h.Helper).Distinct();

        /// <summary>The names the formula reads (helpers' own parameters and locals aside).</summary>
        public IEnumerable<string> Names => Reads().OfType<Named>().Select(n => n.Name).Distinct();

        protected virtual IEnumerable<Lane> Children => Enumerable.Empty<Lane>();

        // What the formula itself reads: a helper call's arguments, not the helper's body.
        IEnumerable<Lane> Reads() => new[] { this }.Concat((this is HelperCall h ? h.Arguments : Children).SelectMany(c => c.Reads()));

        IEnumerable<Lane> Parts() => new[] { this }.Concat(Children.SelectMany(c => c.Parts()));

        internal sealed class HelperCall(LaneHelper helper, Lane[] arguments) : Lane
        {
            public LaneHelper Helper => helper;

            public IEnumerable<Lane> Arguments => arguments;

            protected override IEnumerable<Lane> Children => arguments.Concat(helper.Formulas.SelectMany(f => f.Parts()));

            public override string Scalar(Numeric n, LanePart? part) => $"{helper.Name}({string.Join(", ", arguments.Select(a => a.Scalar(n, part)))})";

            public override string Vector(IReadOnlyDictionary<string, string> names) => $"{helper.VectorName}({string.Join(", ", arguments.Select(a => a.Vector(names)))})";
        }

        // Binding strength: sums 1, products 2, everything else 3 (never parenthesized).
        private protected virtual int Precedence => 3;

        /// <summary>The formula in the scalar element type of <paramref name="n"/>.</summary>
        public string Scalar(Numeric n) => Scalar(n, null);

        /// <summary>The formula in the scalar element type, as the real or imaginary part of complex pairs where <paramref name="part"/> says.</summary>
        public abstract string Scalar(Numeric n, LanePart? part);

        /// <summary>The formula over lanes of width <c>TV</c>, names bound by <paramref name="names"/> where given.</summary>
        public abstract string Vector(IReadOnlyDictionary<string, string> names);

        public string Vector() => Vector(new Dictionary<string, string>());

        string Operand(System.Func<Lane, string> render, int parent, bool right) =>
            Precedence < parent || right && Precedence == parent ? $"({render(this)})" : render(this);

        sealed class Named(string name) : Lane
        {
            public string Name => name;

            public override string Scalar(Numeric n, LanePart? part) => part?.Name(name) ?? name;

            public override string Vector(IReadOnlyDictionary<string, string> names) => names.TryGetValue(name, out var bound) ? bound : name;
        }

        sealed class Constant(double value) : Lane
        {
            public override string Scalar(Numeric n, LanePart? part) => n.Lit(value);

            public override string Vector(IReadOnlyDictionary<string, string> names) => $"{V}.Create({Numeric.Float.Lit(value)})";
        }

        sealed class Binary(string op, int precedence, Lane a, Lane b) : Lane
        {
            private protected override int Precedence => precedence;

            protected override IEnumerable<Lane> Children => new[] { a, b };

            public override string Scalar(Numeric n, LanePart? part) => $"{a.Operand(x => x.Scalar(n, part), precedence, false)} {op} {b.Operand(x => x.Scalar(n, part), precedence, true)}";

            public override string Vector(IReadOnlyDictionary<string, string> names) =>
                $"{a.Operand(x => x.Vector(names), precedence, false)} {op} {b.Operand(x => x.Vector(names), precedence, true)}";
        }

        sealed class Negation(Lane a) : Lane
        {
            protected override IEnumerable<Lane> Children => new[] { a };

            public override string Scalar(Numeric n, LanePart? part) => $"-{a.Operand(x => x.Scalar(n, part), 3, false)}";

            public override string Vector(IReadOnlyDictionary<string, string> names) => $"-{a.Operand(x => x.Vector(names), 3, false)}";
        }

        sealed class Call(Lane x, System.Func<Numeric, string> scalar, string vector) : Lane
        {
            protected override IEnumerable<Lane> Children => new[] { x };

            public override string Scalar(Numeric n, LanePart? part) => $"{scalar(n)}({x.Scalar(n, part)})";

            public override string Vector(IReadOnlyDictionary<string, string> names) => $"{vector}({x.Vector(names)})";
        }

        sealed class ZeroSelect(Lane x, Lane ifZero, Lane otherwise) : Lane
        {
            protected override IEnumerable<Lane> Children => new[] { x, ifZero, otherwise };

            public override string Scalar(Numeric n, LanePart? part) => $"({x.Scalar(n, part)} == 0 ? {ifZero.Scalar(n, part)} : {otherwise.Scalar(n, part)})";

            public override string Vector(IReadOnlyDictionary<string, string> names) =>
                $"{V}.IfZero({x.Vector(names)}, {ifZero.Vector(names)}, {otherwise.Vector(names)})";
        }

        sealed class Summed(Lane x) : Lane
        {
            private protected override int Precedence => 1;

            protected override IEnumerable<Lane> Children => new[] { x };

            public override string Scalar(Numeric n, LanePart? part) =>
                part is null ? throw new System.InvalidOperationException("a pair sum outside complex pairs")
                    : $"{x.Operand(v => v.Scalar(n, part.Real), 1, false)} + {x.Operand(v => v.Scalar(n, part.Imaginary), 1, true)}";

            public override string Vector(IReadOnlyDictionary<string, string> names) => $"{V}.PairSum({x.Vector(names)})";
        }

        sealed class PairParts(Lane re, Lane im) : Lane
        {
            private protected override int Precedence => System.Math.Min(re.Precedence, im.Precedence);

            protected override IEnumerable<Lane> Children => new[] { re, im };

            public override string Scalar(Numeric n, LanePart? part) =>
                part is null ? throw new System.InvalidOperationException("a pair's parts outside complex pairs")
                    : part.IsImaginary ? im.Scalar(n, part) : re.Scalar(n, part);

            public override string Vector(IReadOnlyDictionary<string, string> names) => $"{V}.Pair({re.Vector(names)}, {im.Vector(names)})";
        }

        sealed class Select(Lane a, Lane b, Lane ifLess, Lane otherwise) : Lane
        {
            protected override IEnumerable<Lane> Children => new[] { a, b, ifLess, otherwise };

            public override string Scalar(Numeric n, LanePart? part) =>
                $"({a.Scalar(n, part)} < {b.Scalar(n, part)} ? {ifLess.Scalar(n, part)} : {otherwise.Scalar(n, part)})";

            public override string Vector(IReadOnlyDictionary<string, string> names) =>
                $"{V}.IfLess({a.Vector(names)}, {b.Vector(names)}, {ifLess.Vector(names)}, {otherwise.Vector(names)})";
        }
    }

    /// <summary>
    /// Which part of complex pairs a scalar rendering is (the real or the imaginary), and the names of each pair
    /// value's two parts: a pair's name renders as the part's.
    /// </summary>
    internal sealed class LanePart
    {
        readonly IReadOnlyDictionary<string, (string Re, string Im)> pairs;

        public LanePart(IReadOnlyDictionary<string, (string Re, string Im)> pairs, bool imaginary)
        {
            this.pairs = pairs;
            IsImaginary = imaginary;
        }

        public bool IsImaginary { get; }

        public LanePart Real => IsImaginary ? new LanePart(pairs, false) : this;

        public LanePart Imaginary => IsImaginary ? this : new LanePart(pairs, true);

        /// <summary>The part's name of pair value <paramref name="name"/>, or null when it is not a pair value.</summary>
        public string? Name(string name) => pairs.TryGetValue(name, out var p) ? IsImaginary ? p.Im : p.Re : null;
    }

    /// <summary>
    /// A function of lanes the formulas call: its parameters, locals in order, and result. It renders as a scalar
    /// static method (the kernels' helper, one per model) and as a method over SIMD lanes, one per model too, in
    /// the host class beside the lane structs that call it (named apart, so that it does not hide the scalar one
    /// from the host's scalar twins).
    /// </summary>
    internal sealed class LaneHelper
    {
        public LaneHelper(string name, string summary, string[] parameters, (string Name, Lane Value)[] locals, Lane result)
        {
            (Name, Summary, Parameters, Locals, Result) = (name, summary, parameters, locals, result);
        }

        public string Name { get; }
        public string Summary { get; }
        public string[] Parameters { get; }
        public (string Name, Lane Value)[] Locals { get; }
        public Lane Result { get; }

        internal IEnumerable<Lane> Formulas => Locals.Select(l => l.Value).Append(Result);

        /// <summary>A call of the helper.</summary>
        public Lane Call(params Lane[] arguments) => new Lane.HelperCall(this, arguments);

        /// <summary>The scalar method in the kernels' element type.</summary>
        public string Scalar(Numeric n) => Method(n.Type, v => v.Scalar(n), "");

        /// <summary>The name of the method over lanes.</summary>
        public string VectorName => Name + "Lanes";

        /// <summary>The method over lanes of any width.</summary>
        public string Vector() => Method(Lane.V, v => v.Vector(), "[global::System.Runtime.CompilerServices.MethodImpl(global::System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]\n",
            VectorName + "<" + Lane.V + ">", " " + Lane.Constraint);

        string Method(string type, System.Func<Lane, string> render, string attribute, string? name = null, string constraint = "")
        {
            name ??= Name;
            var w = new CodeWriter().Line($"/// <summary>{Summary}</summary>");
            if (attribute.Length > 0) w.Line(attribute.TrimEnd('\n'));
            string signature = $"static {type} {name}({string.Join(", ", Parameters.Select(p => $"{type} {p}"))}){constraint}";
            if (Locals.Length == 0)
                return w.Line($"{signature} => {render(Result)};").ToString().TrimEnd('\n');
            w.Open(signature);
            foreach (var (local, value) in Locals) w.Line($"var {local} = {render(value)};");
            return w.Line($"return {render(Result)};").Close().ToString().TrimEnd('\n');
        }
    }

    /// <summary>A kernel written as lane formulas: the kernel, its host entry, the lane struct that runs, and the helpers it calls.</summary>
    internal interface ILaneKernel
    {
        string Name { get; }

        string Kernel(Numeric n);

        string HostEntry(Numeric n);

        string Lanes(Numeric n);

        IEnumerable<LaneHelper> Helpers { get; }
    }

    /// <summary>
    /// A kernel that maps its input views to its output views index by index through <see cref="Lane"/> formulas:
    /// each input read once into a local, locals computed in order, each output written once. It renders as the
    /// ILGPU kernel, and for a float build as its host range entry in SIMD lanes (a lane struct the runtime's
    /// <c>HostSimd.Map</c> runs): one to three inputs, one or two outputs. An output may be an input's own view (in
    /// place); the second input may be one row that every row of a given width shares (a bias).
    /// </summary>
    internal sealed class LaneMap : ILaneKernel
    {
        readonly string name, summary;
        readonly (string View, string Local)[] inputs;
        readonly (string Name, Lane Value)[] locals;
        readonly (string View, Lane Value)[] outputs;
        readonly string? rowWidth;

        /// <param name="inputs">Each input view and the local its element is read into.</param>
        /// <param name="locals">Locals over the inputs and earlier locals, in order.</param>
        /// <param name="outputs">Each output view and what is written to it.</param>
        /// <param name="rowWidth">Where the second input is one row shared by every row: the constant of its width.</param>
        public LaneMap(string name, string summary, (string View, string Local)[] inputs, (string Name, Lane Value)[] locals, (string View, Lane Value)[] outputs,
            string? rowWidth = null)
        {
            if (inputs.Length is < 1 or > 3 || outputs.Length is < 1 or > 2 || inputs.Length == 3 != (outputs.Length == 2))
                throw new System.ArgumentException($"{name}: the host's lane maps take 1 or 2 inputs to 1 output, or 3 inputs to 2 outputs");
            if (rowWidth is not null && inputs.Length != 2)
                throw new System.ArgumentException($"{name}: a lane map's shared row is its second of two inputs");
            (this.name, this.summary, this.inputs, this.locals, this.outputs, this.rowWidth) = (name, summary, inputs, locals, outputs, rowWidth);
        }

        // The kernel's views: the inputs', then the outputs' not among them.
        IEnumerable<string> ViewNames => inputs.Select(i => i.View).Concat(outputs.Select(o => o.View)).Distinct();

        string Views(string type) => string.Join(", ", ViewNames.Select(v => $"ArrayView<{type}> {v}"));

        string Read(int input) => $"{inputs[input].View}[{(input == 1 && rowWidth is not null ? $"index.X % {rowWidth}" : "index")}]";

        /// <summary>The ILGPU kernel.</summary>
        public string Kernel(Numeric n)
        {
            var w = new CodeWriter()
                .Line($"/// <summary>{summary}</summary>")
                .Open($"public static void {name}(Index1D index, {Views(n.Type)})")
                .Line($"{n.Type} {string.Join(", ", inputs.Select((i, k) => $"{i.Local} = {Read(k)}"))};");
            foreach (var (local, value) in locals) w.Line($"{n.Type} {local} = {value.Scalar(n)};");
            foreach (var (view, value) in outputs) w.Line($"{view}[index] = {value.Scalar(n)};");
            return w.Close().ToString().TrimEnd('\n');
        }

        /// <summary>The kernel's name.</summary>
        public string Name => name;

        /// <summary>The host range entry in SIMD lanes (float); empty for double, whose host runs the scalar twin.</summary>
        public string HostEntry(Numeric n) => n.IsDouble ? "" : new CodeWriter()
            .Line($"/// <summary>Runs <see cref=\"Kernels.{name}\"/> for indices <paramref name=\"from\"/>…<paramref name=\"to\"/>−1 in SIMD lanes.</summary>")
            .Line($"public static void {name}(int from, int to, {Views("float")}) =>")
            .Line($"    {Numeric.Runtime}HostSimd.{(rowWidth is null ? "Map" : "MapRows")}<{name}Lanes>(from, to, {(rowWidth is null ? "" : rowWidth + ", ")}{string.Join(", ", inputs.Select(i => i.View).Concat(outputs.Select(o => o.View)))});")
            .ToString().TrimEnd('\n');

        /// <summary>
        /// The lane struct the host entry runs (float; empty for double), apart from the entry so that a fused
        /// kernel's host entry can call it when this kernel itself is no longer launched.
        /// </summary>
        public string Lanes(Numeric n)
        {
            if (n.IsDouble) return "";
            const string V = Lane.V;
            // Apply's parameters are the kernel's locals; the slots an op leaves free are unused.
            var slots = inputs.Select(i => i.Local).Concat(new[] { "_1", "_2" }).Take(3).ToList();
            var names = new Dictionary<string, string>();
            var w = new CodeWriter()
                .Line($"/// <summary>The lanes of <see cref=\"Kernels.{name}\"/>.</summary>")
                .Open($"readonly struct {name}Lanes : {Numeric.Runtime}HostSimd.ILaneOp")
                .Line("[global::System.Runtime.CompilerServices.MethodImpl(global::System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]")
                .Open($"public static ({V} X, {V} Y) Apply<{V}>({string.Join(", ", slots.Select(s => $"{V} {s}"))}) {Lane.Constraint}");
            foreach (var (local, value) in locals)
            {
                w.Line($"var {local} = {value.Vector(names)};");
                names[local] = local;
            }
            string Output(int i) => i < outputs.Length ? outputs[i].Value.Vector(names) : "default";
            return w.Line($"return ({Output(0)}, {Output(1)});").Close().Close().ToString().TrimEnd('\n');
        }

        /// <summary>The helpers the lane struct calls (each rendered once per model, beside the structs).</summary>
        public IEnumerable<LaneHelper> Helpers => locals.Select(l => l.Value).Concat(outputs.Select(o => o.Value)).SelectMany(v => v.Helpers).Distinct();
    }
}
