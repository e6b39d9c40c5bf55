using System.Collections.Generic;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ir
{
    /// <summary>
    /// The writer ops write their schedule lines with: kernel launches, GEMMs and column sums on the model's device,
    /// parameter and gradient views, locals. In a backward schedule it also keeps which values' gradients hold a sum
    /// so far: the first op to write a value's gradient overwrites its buffer (β = 0), the others add to it, which is
    /// how a value read by several ops gets the sum of their gradients.
    /// </summary>
    internal sealed class Schedule
    {
        readonly CodeWriter w;
        readonly System.Func<Param, bool> inLayer;
        readonly HashSet<string> declared = new HashSet<string>();
        readonly HashSet<Value> holding = new HashSet<Value>();

        /// <param name="inLayer">Whether a parameter is one layer's (the parameter layout knows).</param>
        public Schedule(CodeWriter writer, Numeric numeric, System.Func<Param, bool> inLayer)
        {
            w = writer;
            N = numeric;
            this.inLayer = inLayer;
        }

        public Numeric N { get; }

        public string One => N.Lit(1);

        public string Zero => N.Lit(0);

        public Schedule Line(string line = "")
        {
            w.Line(line);
            return this;
        }

        public Schedule Open(string header)
        {
            w.Open(header);
            return this;
        }

        public Schedule Close()
        {
            w.Close();
            return this;
        }

        /// <summary>A parameter's view of the flat weights; a layer's tensors are addressed from the layer base p.</summary>
        public string W(Param p) => View("W", p);

        /// <summary>The view of a parameter's gradient.</summary>
        public string G(Param p) => View("G", p);

        string View(string buffer, Param p) => $"{buffer}({(inLayer(p) ? "p + " : "")}{p.Field}, {p.LengthExpr})";

        /// <summary>C[m×n] = op(A)·op(B) + β·C on the device (row-major, packed).</summary>
        public void Gemm(bool transA, bool transB, string m, string n, string k, string a, string b, string beta, string c) =>
            w.Line($"Device.Gemm({(transA ? "true" : "false")}, {(transB ? "true" : "false")}, {m}, {n}, {k}, {One}, {a}, {b}, {beta}, {c});");

        /// <summary>Launches generated kernel <paramref name="kernel"/> over <paramref name="count"/> indices.</summary>
        public void Launch(string kernel, string count, params string[] args) => w.Line(LaunchCall(kernel, count, args));

        /// <summary>
        /// A Linear's forward product y = x·Wᵀ + β·y over the R rows, W the [outs × ins] parameter <paramref name="weight"/>:
        /// the module's <c>Linear</c>, which reads the weights' reduced copies when inference chose them.
        /// </summary>
        public void Linear(Param weight, string outs, string ins, string x, string beta, string y) =>
            w.Line($"Linear(R, {outs}, {ins}, {x}, {(inLayer(weight) ? "p + " : "")}{weight.Field}, {beta}, {y});");

        /// <summary>The statement of <see cref="Launch"/>: the kernel for ILGPU and its host entry for the host backend.</summary>
        public static string LaunchCall(string kernel, string count, params string[] args) =>
            $"Device.Launch(Kernels.{kernel}, Kernels.Host.{kernel}, {count}, {string.Join(", ", args)});";

        /// <summary>dst += Σ over the R rows of m (bias gradients).</summary>
        public void ColumnSum(string columns, string m, string dst) => w.Line($"Device.ColumnSum(R, {columns}, {m}, {dst});");

        /// <summary>Sets a local, declaring it the first time this schedule sets it.</summary>
        public void Bind(string local, string expr) => w.Line($"{(declared.Add(local) ? "var " : "")}{local} = {expr};");

        /// <summary>β for a write of <paramref name="v"/>'s gradient: 0 for the first, which starts the sum, then 1.</summary>
        public string Beta(Value v) => holding.Add(v) ? Zero : One;

        /// <summary>Marks <paramref name="v"/>'s gradient as holding a sum already (the residual stream's, which flows on unchanged).</summary>
        public void Holds(Value v) => holding.Add(v);

        /// <summary>For kernels that add into <paramref name="v"/>'s gradient: zeroes its buffer when nothing was written yet.</summary>
        public void EnsureHolding(Value v)
        {
            if (holding.Add(v)) w.Line($"{v.Grad}.MemSetToZero();");
        }
    }
}
