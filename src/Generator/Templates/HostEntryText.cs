using System.Collections.Generic;
using System.Linq;

namespace GateLoop.Generator.Templates
{
    /// <summary>
    /// Text shared by the kernel shapes that write their own host entries (LaneScan, ColumnReduction): the entry
    /// takes the kernel's views and passes them on as pointers, and keeps each lane's running values in a stack
    /// buffer <c>run</c>, indexed by the lane's position j in the run.
    /// </summary>
    internal static class HostEntryText
    {
        static string View(Numeric n) => Numeric.Runtime + "HostView<" + n.Type + ">";

        /// <summary>A kernel's parameter list (views typed <c>ArrayView&lt;T&gt;</c>) with the views as pointers.</summary>
        public static string PointerParameters(string parameters, Numeric n) => parameters.Replace($"ArrayView<{n.Type}>", View(n));

        /// <summary>The arguments passing those parameters on, each view wrapped as a pointer.</summary>
        public static string PointerArguments(string parameters, Numeric n) =>
            string.Join(", ", KernelText.Parameters(parameters).Select(p => p.Type.StartsWith("ArrayView") ? $"new {View(n)}({p.Name})" : p.Name));

        /// <summary>The parameters' names, as arguments passing them on unchanged.</summary>
        public static string Names(string parameters) => string.Join(", ", KernelText.Parameters(parameters).Select(p => p.Name));

        /// <summary>
        /// The public host entry of kernel <paramref name="name"/>: indices from…to−1 through the method
        /// <paramref name="runs"/> (taking pointers), or, given a SIMD method of the runtime, whole groups of 8 through
        /// it (called as (from, to, the count parameter, <paramref name="simdExtra"/>, the kernel's arguments)) and
        /// only the ragged ends through <paramref name="runs"/>.
        /// </summary>
        /// <param name="count">The kernel's parameter after its index, e.g. <c>int seq</c>.</param>
        public static string Entry(Numeric n, string name, string what, string count, string parameters, string runs, string? simd, string simdExtra)
        {
            string countName = KernelText.Parameters(count).Single().Name, pointers = PointerArguments(parameters, n);
            if (simd is null)
                return $$"""
                    /// <summary>Runs <see cref="Kernels.{{name}}"/> for {{what}}.</summary>
                    public static void {{name}}(int from, int to, {{count}}, {{parameters}}) =>
                        {{runs}}(from, to, {{countName}}, {{pointers}});
                    """;
            string arguments = Names(parameters);
            return $$"""
                /// <summary>Runs <see cref="Kernels.{{name}}"/> for {{what}}; whole groups of 8 in SIMD registers, the ragged ends one by one.</summary>
                public static void {{name}}(int from, int to, {{count}}, {{parameters}})
                {
                    int head = global::System.Math.Min(to, (from + 7) / 8 * 8), tail = global::System.Math.Max(head, to / 8 * 8);
                    {{runs}}(from, head, {{countName}}, {{pointers}});
                    {{simd}}(head, tail, {{countName}}, {{simdExtra}}, {{arguments}});
                    {{runs}}(tail, to, {{countName}}, {{pointers}});
                }
                """;
        }

        /// <summary>Declares the running values from lane j's slots of <c>run</c>.</summary>
        public static string Load(Numeric n, string[] values) =>
            $"{n.Type} {string.Join(", ", values.Select((v, i) => $"{v} = run[{values.Length} * j + {i}]"))};";

        /// <summary>Writes the running values back to lane j's slots.</summary>
        public static string Store(string[] values) =>
            string.Join(" ", values.Select((v, i) => $"run[{values.Length} * j + {i}] = {v};"));
    }
}
