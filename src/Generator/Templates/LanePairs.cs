using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;

namespace GateLoop.Generator.Templates
{
    /// <summary>
    /// A kernel over complex pairs (re, im) stored interleaved, one pair per index, written once as <see cref="Lane"/>
    /// formulas: a pair value is a formula over pair values (rendered twice in the kernel, as its real and its
    /// imaginary part); <see cref="Lane.PairSum"/> gives a value the same in both parts (rendered once). For a
    /// float build it also renders as its host range entry: a lane struct over interleaved pairs, half a register's
    /// lanes of pairs to a register, that the runtime's <c>HostSimd.MapPairs</c> runs. Inputs: one or two views of pairs and
    /// optionally one row of pairs that every row of a given count shares (a bias); one output.
    /// </summary>
    internal sealed class LanePairs : ILaneKernel
    {
        /// <summary>A view of pairs read into a pair value, with the names of its two parts in the kernel.</summary>
        public sealed record Input(string View, string Name, string Re, string Im);

        /// <summary>A local: a pair value when it has the names of its parts, else a value the same in both.</summary>
        public sealed record Local(string Name, Lane Value, string? Re = null, string? Im = null);

        readonly string name, summary, rowPairs;
        readonly Input[] inputs;
        readonly Input? row;
        readonly Local[] locals;
        readonly (string View, Lane Value) output;
        readonly string[] constants;

        /// <param name="inputs">One or two views of pairs, one pair per index.</param>
        /// <param name="row">The shared row of pairs (read after the first input), or null.</param>
        /// <param name="rowPairs">The constant of the row's pair count, where there is a row.</param>
        /// <param name="constants">Kernel constants the formulas read (broadcast in the lanes).</param>
        public LanePairs(string name, string summary, Input[] inputs, Input? row, string rowPairs, Local[] locals, (string View, Lane Value) output,
            params string[] constants)
        {
            if (inputs.Length is < 1 or > 2) throw new System.ArgumentException($"{name}: a pair map takes one or two views of pairs");
            (this.name, this.summary, this.inputs, this.row, this.rowPairs, this.locals, this.output, this.constants) =
                (name, summary, inputs, row, rowPairs, locals, output, constants);
        }

        // The kernel's views: the first input, the row, the other input, the output.
        IEnumerable<string> Views => new[] { inputs[0] }.Concat(row is null ? new Input[0] : new[] { row }).Concat(inputs.Skip(1)).Select(i => i.View).Append(output.View);

        IEnumerable<Input> Reads => new[] { inputs[0] }.Concat(row is null ? new Input[0] : new[] { row }).Concat(inputs.Skip(1));

        /// <summary>The kernel's name.</summary>
        public string Name => name;

        /// <summary>The ILGPU kernel.</summary>
        public string Kernel(Numeric n)
        {
            string T = n.Type;
            var pairs = Reads.Select(i => (i.Name, (i.Re, i.Im))).Concat(locals.Where(l => l.Re is not null).Select(l => (l.Name, (l.Re!, l.Im!))))
                .ToDictionary(p => p.Item1, p => p.Item2);
            LanePart re = new LanePart(pairs, false), im = re.Imaginary;
            var body = new List<string>();
            foreach (var local in locals)
                if (local.Re is null) body.Add($"{T} {local.Name} = {local.Value.Scalar(n, re)};");
                else body.AddRange(new[] { $"{T} {local.Re} = {local.Value.Scalar(n, re)};", $"{T} {local.Im} = {local.Value.Scalar(n, im)};" });
            body.Add($"{output.View}[i] = {output.Value.Scalar(n, re)};");
            body.Add($"{output.View}[i + 1] = {output.Value.Scalar(n, im)};");
            // Only the parts the formulas use are read (an ablated imaginary part is not).
            bool Used(string part) => body.Any(line => Regex.IsMatch(line, $@"\b{part}\b"));
            string At(Input i, string index, bool imaginary) => $"{i.View}[{index}{(imaginary ? " + 1" : "")}]";
            var reads = Reads.SelectMany(i => new[] { (i.Re, At(i, i == row ? "bp" : "i", false)), (i.Im, At(i, i == row ? "bp" : "i", true)) })
                .Where(r => Used(r.Item1)).Select(r => $"{r.Item1} = {r.Item2}");
            var w = new CodeWriter()
                .Line($"/// <summary>{summary}</summary>")
                .Open($"public static void {name}(Index1D index, {string.Join(", ", Views.Select(v => $"ArrayView<{T}> {v}"))})")
                .Line("long i = 2 * (long)index.X;");
            if (row is not null) w.Line($"int bp = 2 * (index.X % {rowPairs}); // this pair's {row.View}");
            w.Line($"{T} {string.Join(", ", reads)};");
            foreach (var line in body) w.Line(line);
            return w.Close().ToString().TrimEnd('\n');
        }

        /// <summary>The host range entry in SIMD lanes (float); empty for double, whose host runs the scalar twin.</summary>
        public string HostEntry(Numeric n) => n.IsDouble ? "" : new CodeWriter()
            .Line($"/// <summary>Runs <see cref=\"Kernels.{name}\"/> for pairs <paramref name=\"from\"/>…<paramref name=\"to\"/>−1 in SIMD lanes.</summary>")
            .Line($"public static void {name}(int from, int to, {string.Join(", ", Views.Select(v => $"ArrayView<float> {v}"))}) =>")
            .Line($"    {Numeric.Runtime}HostSimd.MapPairs<{name}Lanes>(from, to, {(row is null ? "0" : rowPairs)}, {inputs[0].View}, " +
                $"{row?.View ?? "default"}, {(inputs.Length > 1 ? inputs[1].View : "default")}, {output.View});")
            .ToString().TrimEnd('\n');

        /// <summary>The lane struct the host entry runs (float; empty for double).</summary>
        public string Lanes(Numeric n)
        {
            if (n.IsDouble) return "";
            const string V = Lane.V;
            var names = constants.ToDictionary(c => c, c => $"{V}.Create({c})");
            string[] slots = { inputs[0].Name, row?.Name ?? "_1", inputs.Length > 1 ? inputs[1].Name : "_2" };
            var w = new CodeWriter()
                .Line($"/// <summary>The lanes of <see cref=\"Kernels.{name}\"/>: pairs interleaved in a register.</summary>")
                .Open($"readonly struct {name}Lanes : {Numeric.Runtime}HostSimd.ILaneOp")
                .Line("[global::System.Runtime.CompilerServices.MethodImpl(global::System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]")
                .Open($"public static ({V} X, {V} Y) Apply<{V}>({string.Join(", ", slots.Select(s => $"{V} {s}"))}) {Lane.Constraint}");
            foreach (var local in locals)
            {
                w.Line($"var {local.Name} = {local.Value.Vector(names)};");
                names[local.Name] = local.Name;
            }
            return w.Line($"return ({output.Value.Vector(names)}, default);").Close().Close().ToString().TrimEnd('\n');
        }

        /// <summary>The helpers the lane struct calls.</summary>
        public IEnumerable<LaneHelper> Helpers => locals.Select(l => l.Value).Append(output.Value).SelectMany(v => v.Helpers).Distinct();
    }
}
