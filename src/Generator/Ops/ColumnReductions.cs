using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Ops
{
    /// <summary>
    /// What the norms' column reductions share (Templates/ColumnReduction renders their kernels): the rows each
    /// thread of the first level sums, the partials buffer between the levels, and the two launches.
    /// </summary>
    internal static class ColumnReductions
    {
        /// <summary>
        /// Rows per thread of the first level, a kernel constant (<c>Kernels.ColumnPart</c>). 32 gives a seed step's
        /// 1,024 rows 32 parts, so both levels walk about as far and a GPU runs 32 times the threads of one column each.
        /// </summary>
        public static KernelSource PartLength => new KernelSource("ColumnPart",
            "/// <summary>Rows per thread of a column reduction's first level.</summary>\npublic const int ColumnPart = 32;");

        const string Parts = "(R + Kernels.ColumnPart - 1) / Kernels.ColumnPart";

        /// <summary>The partials of kernel <paramref name="kernel"/>: <paramref name="sums"/> per part and column, scratch of the backward.</summary>
        /// <param name="plan">The plan that holds the model's gradient scratch.</param>
        public static Value Partials(string kernel, string columns, int sums, string plan) => Value.Gradient(new Buffer(kernel + "Partials", null,
            $"(long)((rows + Kernels.ColumnPart - 1) / Kernels.ColumnPart) * {(sums == 1 ? columns : $"{sums} * {columns}")}",
            $"per part of Kernels.ColumnPart rows and column, the sums of {kernel}'s first level", BufferUse.Gradient), plan);

        /// <summary>Both levels of <paramref name="kernel"/> over <paramref name="columns"/> columns of the rows.</summary>
        public static void Launch(Schedule s, string kernel, string columns, Value partials, Arg[] inputs, Arg[] outputs)
        {
            s.Launch(kernel + "Partials", $"{Parts} * {columns}", new Arg[] { "R" }.Concat(inputs).Append(partials).ToArray());
            s.Launch(kernel, columns, new Arg[] { Parts, partials }.Concat(outputs).ToArray());
        }
    }
}
