using System.Collections.Generic;
using System.Linq;

namespace GateLoop.Generator.Templates
{
    /// <summary>
    /// A row op written once as <see cref="Lane"/> formulas (the norms): sums over a row of a constant width, pass by
    /// pass, each pass followed by row scalars computed from its sums; then the row scalars written out per row and
    /// the outputs per element. It renders as the ILGPU kernel, where a warp shares a row (<see cref="Shared"/>: its
    /// launch covers rows × <c>Kernels.RowLanes</c> indices, lane l takes the row's elements l, l + 32, …, so a warp's
    /// loads are consecutive, and each sum meets across the lanes by shuffles), and as its host range entry, which
    /// runs whole rows: for a float build the same passes over registers of float lanes (the widest this machine
    /// has, the body generic over the width), the row's tail shorter than a register in scalars, each sum taken
    /// lane-wise and then across the lanes; for a double build in scalars.
    /// </summary>
    internal sealed class LaneRow
    {
        /// <summary>A pass over the row: its sums, then the row scalars computed from them (and earlier ones).</summary>
        public sealed record Pass((string Name, Lane Value)[] Sums, (string Name, Lane Value)[] Then);

        readonly string name, summary, width;
        readonly string[] views;
        readonly (string View, string Local, bool Column)[] elements;
        readonly (string Name, string View, int Stride, int Offset)[] rowReads;
        readonly (string Name, Lane Value)[] locals;
        readonly Pass[] passes;
        readonly (string View, int Stride, int Offset, Lane Value)[] rowWrites;
        readonly (string View, Lane Value, bool Add)[] outputs;

        /// <param name="width">The constant holding the row width.</param>
        /// <param name="views">The kernel's views, in its parameter order.</param>
        /// <param name="elements">Each view read per element, the local it is read into, and whether it is one row
        /// shared by every row (a weight: index d) rather than the thread's own row (index o + d).</param>
        /// <param name="rowReads">Row scalars read from a view holding <c>Stride</c> values per row.</param>
        /// <param name="locals">Per-element locals over the element reads, row scalars and earlier locals.</param>
        /// <param name="rowWrites">Row scalars written to a view of <c>Stride</c> values per row.</param>
        /// <param name="outputs">Each output view and its element, added to what it holds when <c>Add</c>.</param>
        public LaneRow(string name, string summary, string width, string[] views, (string View, string Local, bool Column)[] elements,
            (string Name, string View, int Stride, int Offset)[] rowReads, (string Name, Lane Value)[] locals, Pass[] passes,
            (string View, int Stride, int Offset, Lane Value)[] rowWrites, (string View, Lane Value, bool Add)[] outputs)
        {
            (this.name, this.summary, this.width, this.views, this.elements) = (name, summary, width, views, elements);
            (this.rowReads, this.locals, this.passes, this.rowWrites, this.outputs) = (rowReads, locals, passes, rowWrites, outputs);
        }

        /// <summary>The kernel's name.</summary>
        public string Name => name;

        /// <summary>Lanes per row: <c>Kernels.RowLanes</c>.</summary>
        public const int Warp = 32;

        /// <summary>The launch domain of a row kernel over <paramref name="rows"/> rows: a warp's lanes per row.</summary>
        public static string Domain(string rows) => rows + " * Kernels.RowLanes";

        /// <summary>
        /// What the row kernels share: the lanes per row (a warp, as CUDA's and the simulator's and the ILGPU CPU
        /// accelerator the runtime configures), and the sum over a row's lanes. The sum is a butterfly of shuffles, so
        /// every lane ends with the same bits (each step adds the same two values in either order) and no lane waits
        /// on shared memory.
        /// </summary>
        public static string Shared(Numeric n) => $$"""
            /// <summary>Lanes per row of a row kernel (one warp): lane l of a row takes its elements l, l + RowLanes, ….</summary>
            public const int RowLanes = {{Warp}};

            /// <summary>The sum of <paramref name="s"/> over the RowLanes lanes of a row, in every lane.</summary>
            static {{n.Type}} RowSum({{n.Type}} s)
            {
                s += Warp.ShuffleXor(s, 16);
                s += Warp.ShuffleXor(s, 8);
                s += Warp.ShuffleXor(s, 4);
                s += Warp.ShuffleXor(s, 2);
                return s + Warp.ShuffleXor(s, 1);
            }
            """;

        /// <summary>
        /// The ILGPU kernel: a row per <c>Kernels.RowLanes</c> indices (every lane of a warp is in or out together,
        /// the domain being whole warps). Each lane reads and writes only its own elements, and a pass's sums are
        /// complete (the shuffles wait for the whole warp) before any output is written, so an output may alias an input.
        /// </summary>
        public string Kernel(Numeric n)
        {
            string T = n.Type;
            var w = new CodeWriter()
                .Line($"/// <summary>{summary} A warp per row.</summary>")
                .Open($"public static void {name}(Index1D index, {string.Join(", ", views.Select(v => $"ArrayView<{T}> {v}"))})")
                .Line("int lane = index.X % RowLanes;")
                .Line($"long row = index.X / RowLanes, o = row * {width};");
            foreach (var read in rowReads) w.Line($"{T} {read.Name} = {read.View}[{RowIndex(read.Stride, read.Offset, "row")}];");
            foreach (var pass in passes)
            {
                w.Line($"{T} {string.Join(", ", pass.Sums.Select(s => s.Name + " = 0"))};");
                ScalarLoop(w, n, LaneLoop, pass.Sums.Select(s => s.Value), pass.Sums.Select(s => $"{s.Name} += {s.Value.Scalar(n)};"));
                foreach (var sum in pass.Sums) w.Line($"{sum.Name} = RowSum({sum.Name});");
                foreach (var (scalar, value) in pass.Then) w.Line($"{T} {scalar} = {value.Scalar(n)};");
            }
            if (rowWrites.Length > 0)
            {
                w.Open("if (lane == 0)");
                foreach (var write in rowWrites) w.Line($"{write.View}[{RowIndex(write.Stride, write.Offset, "row")}] = {write.Value.Scalar(n)};");
                w.Close();
            }
            ScalarLoop(w, n, LaneLoop, outputs.Select(o => o.Value), Writes(n, ""));
            return w.Close().ToString().TrimEnd('\n');
        }

        string LaneLoop => $"for (int d = lane; d < {width}; d += RowLanes)";

        // The rows whose first lane lies in from…to−1: ranges that split the domain anywhere split the rows exactly.
        const string HostRows = "for (int r = (from + Kernels.RowLanes - 1) / Kernels.RowLanes; r < (to + Kernels.RowLanes - 1) / Kernels.RowLanes; r++)";

        string FloatViews => string.Join(", ", views.Select(v => $"ArrayView<float> {v}"));

        /// <summary>
        /// The host range entry over indices of the kernel's domain, running the rows whose first lane is in the range
        /// whole: for float in SIMD lanes of this machine's width (<see cref="Lanes"/>), for double in scalars.
        /// </summary>
        public string HostEntry(Numeric n)
        {
            if (n.IsDouble) return ScalarHostEntry(n);
            string arguments = "from, to, " + string.Join(", ", views);
            return new CodeWriter()
                .Line($"/// <summary>Runs <see cref=\"Kernels.{name}\"/> for the rows whose first lane is among indices <paramref name=\"from\"/>…<paramref name=\"to\"/>−1 in SIMD lanes, each row's tail in scalars.</summary>")
                .Open($"public static void {name}(int from, int to, {FloatViews})")
                .Line($"if ({Numeric.Runtime}HostSimd.LaneBits == 512) {name}Simd<{Numeric.Runtime}LaneVector512>({arguments});")
                .Line($"else if ({Numeric.Runtime}HostSimd.LaneBits == 256) {name}Simd<{Numeric.Runtime}LaneVector256>({arguments});")
                .Line($"else {name}Simd<{Numeric.Runtime}LaneVector128>({arguments});")
                .Close().ToString().TrimEnd('\n');
        }

        /// <summary>The method <c>{Name}Simd</c> the float host entry calls (empty for double): the rows in lanes of width TV, each row's tail in scalars.</summary>
        public string Lanes(Numeric n)
        {
            if (n.IsDouble) return "";
            var w = new CodeWriter().Open($"static void {name}Simd<{Lane.V}>(int from, int to, {FloatViews}) {Lane.Constraint}");
            foreach (var v in views) w.Line($"var {v}Host = new {Numeric.Runtime}HostView<float>({v});");
            w.Open(HostRows)
             .Line($"long o = (long)r * {width};")
             .Line("int d;");
            var vectorNames = new Dictionary<string, string>();
            // A row scalar that vector formulas read is broadcast once per row.
            void Broadcast(string scalar)
            {
                if (!VectorReads.Contains(scalar)) return;
                w.Line($"var {scalar}Lanes = {Lane.V}.Create({scalar});");
                vectorNames[scalar] = scalar + "Lanes";
            }
            foreach (var read in rowReads)
            {
                w.Line($"float {read.Name} = {read.View}Host[{RowIndex(read.Stride, read.Offset, "r")}];");
                Broadcast(read.Name);
            }
            var f = Numeric.Float;
            foreach (var pass in passes)
            {
                w.Line($"{Lane.V} {string.Join(", ", pass.Sums.Select(s => s.Name + "Lanes = default"))};");
                VectorLoop(w, pass.Sums.Select(s => s.Value), vectorNames, pass.Sums.Select(s => $"{s.Name}Lanes += {s.Value.Vector(vectorNames)};"));
                w.Line($"float {string.Join(", ", pass.Sums.Select(s => $"{s.Name} = {Lane.V}.Sum({s.Name}Lanes)"))};");
                ScalarLoop(w, f, $"for (; d < {width}; d++)", pass.Sums.Select(s => s.Value), pass.Sums.Select(s => $"{s.Name} += {s.Value.Scalar(f)};"), "Host");
                foreach (var (scalar, value) in pass.Then)
                {
                    w.Line($"float {scalar} = {value.Scalar(f)};");
                    Broadcast(scalar);
                }
            }
            foreach (var write in rowWrites) w.Line($"{write.View}Host[{RowIndex(write.Stride, write.Offset, "r")}] = {write.Value.Scalar(f)};");
            VectorLoop(w, outputs.Select(o => o.Value), vectorNames, outputs.Select(o =>
                o.Add
                    ? $"({Lane.V}.Load(ref {o.View}Host[o + d]) + {o.Value.Vector(vectorNames)}).Store(ref {o.View}Host[o + d]);"
                    : $"({o.Value.Vector(vectorNames)}).Store(ref {o.View}Host[o + d]);"));
            ScalarLoop(w, f, $"for (; d < {width}; d++)", outputs.Select(o => o.Value), Writes(f, "Host"), "Host");
            return w.Close().Close().ToString().TrimEnd('\n');
        }

        // A whole row per step in the element type, as the kernel's lanes compute it together.
        string ScalarHostEntry(Numeric n)
        {
            string T = n.Type;
            var w = new CodeWriter()
                .Line($"/// <summary>Runs <see cref=\"Kernels.{name}\"/> for the rows whose first lane is among indices <paramref name=\"from\"/>…<paramref name=\"to\"/>−1, a row at a time.</summary>")
                .Open($"public static void {name}(int from, int to, {string.Join(", ", views.Select(v => $"ArrayView<{T}> {v}"))})");
            foreach (var v in views) w.Line($"var {v}Host = new {Numeric.Runtime}HostView<{T}>({v});");
            w.Open(HostRows)
             .Line($"long o = (long)r * {width};");
            foreach (var read in rowReads) w.Line($"{T} {read.Name} = {read.View}Host[{RowIndex(read.Stride, read.Offset, "r")}];");
            string loop = $"for (int d = 0; d < {width}; d++)";
            foreach (var pass in passes)
            {
                w.Line($"{T} {string.Join(", ", pass.Sums.Select(s => s.Name + " = 0"))};");
                ScalarLoop(w, n, loop, pass.Sums.Select(s => s.Value), pass.Sums.Select(s => $"{s.Name} += {s.Value.Scalar(n)};"), "Host");
                foreach (var (scalar, value) in pass.Then) w.Line($"{T} {scalar} = {value.Scalar(n)};");
            }
            foreach (var write in rowWrites) w.Line($"{write.View}Host[{RowIndex(write.Stride, write.Offset, "r")}] = {write.Value.Scalar(n)};");
            ScalarLoop(w, n, loop, outputs.Select(o => o.Value), Writes(n, "Host"), "Host");
            return w.Close().Close().ToString().TrimEnd('\n');
        }

        IEnumerable<string> Writes(Numeric n, string suffix) =>
            outputs.Select(o => $"{o.View}{suffix}[o + d] {(o.Add ? "+=" : "=")} {o.Value.Scalar(n)};");

        // The row scalars any vector formula (a sum, an element local, an output) reads.
        HashSet<string> VectorReads => new HashSet<string>(
            passes.SelectMany(p => p.Sums.Select(s => s.Value)).Concat(locals.Select(l => l.Value)).Concat(outputs.Select(o => o.Value)).SelectMany(v => v.Names));

        static string RowIndex(int stride, int offset, string row) =>
            stride == 1 && offset == 0 ? row : $"{stride}{(row == "r" ? "L" : "")} * {row}{(offset == 0 ? "" : $" + {offset}")}";

        // The element reads and locals that formulas need, in declaration order (locals read reads and earlier locals).
        (List<(string View, string Local, bool Column)> Reads, List<(string Name, Lane Value)> Locals) Needed(IEnumerable<Lane> formulas)
        {
            var names = new HashSet<string>(formulas.SelectMany(f => f.Names));
            var needed = new List<(string, Lane)>();
            foreach (var local in locals.Reverse())
                if (names.Contains(local.Name))
                {
                    needed.Insert(0, local);
                    names.UnionWith(local.Value.Names);
                }
            return (elements.Where(e => names.Contains(e.Local)).ToList(), needed);
        }

        string Element((string View, string Local, bool Column) e, string suffix) => $"{e.View}{suffix}[{(e.Column ? "d" : "o + d")}]";

        void ScalarLoop(CodeWriter w, Numeric n, string loop, IEnumerable<Lane> formulas, IEnumerable<string> body, string suffix = "")
        {
            var (reads, needed) = Needed(formulas);
            var lines = body.ToList();
            if (reads.Count == 0 && needed.Count == 0 && lines.Count == 1)
            {
                w.Line($"{loop} {lines[0]}");
                return;
            }
            w.Open(loop);
            if (reads.Count > 0) w.Line($"{n.Type} {string.Join(", ", reads.Select(e => $"{e.Local} = {Element(e, suffix)}"))};");
            foreach (var (local, value) in needed) w.Line($"{n.Type} {local} = {value.Scalar(n)};");
            foreach (var line in lines) w.Line(line);
            w.Close();
        }

        void VectorLoop(CodeWriter w, IEnumerable<Lane> formulas, IReadOnlyDictionary<string, string> names, IEnumerable<string> body)
        {
            var (reads, needed) = Needed(formulas);
            w.Open($"for (d = 0; d <= {width} - {Lane.V}.Count; d += {Lane.V}.Count)");
            foreach (var e in reads) w.Line($"var {e.Local} = {Lane.V}.Load(ref {Element(e, "Host")});");
            foreach (var (local, value) in needed) w.Line($"var {local} = {value.Vector(names)};");
            foreach (var line in body) w.Line(line);
            w.Close();
        }
    }
}
