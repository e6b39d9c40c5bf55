using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Tests;

/// <summary>An elementwise formula written once renders as the ILGPU kernel and as the host's SIMD lanes alike.</summary>
public sealed class LaneTests
{
    static readonly LaneHelper Square = new("Square", "x².", ["x"], [], (Lane)"x" * "x");

    static readonly LaneMap Map = new("Demo", "y = −(a − b)² when a < b, else a / (b + 1).", [("a", "av"), ("b", "bv")],
        [("d", (Lane)"av" - "bv")], [("y", Lane.IfLess("av", "bv", -Square.Call("d"), (Lane)"av" / ((Lane)"bv" + 1)))]);

    [Fact]
    public void The_kernel_reads_each_input_once_and_computes_the_formula_in_its_element_type()
    {
        Assert.Equal("""
            /// <summary>y = −(a − b)² when a < b, else a / (b + 1).</summary>
            public static void Demo(Index1D index, ArrayView<double> a, ArrayView<double> b, ArrayView<double> y)
            {
                double av = a[index], bv = b[index];
                double d = av - bv;
                y[index] = (av < bv ? -Square(d) : av / (bv + 1.0));
            }
            """.Replace("\r\n", "\n"), Map.Kernel(Numeric.Double));
        Assert.Equal("static float Square(float x) => x * x;", Square.Scalar(Numeric.Float).Split('\n')[1]);
    }

    [Fact]
    public void The_lanes_compute_the_same_formula_over_vectors_with_the_helper_beside_them()
    {
        string lanes = Map.Lanes(Numeric.Float);
        // Generic over the register's width: the runtime instantiates it with the widest this machine has.
        Assert.Contains("public static (TV X, TV Y) Apply<TV>(TV av, TV bv, TV _1) where TV : struct, global::GateLoop.Runtime.ILaneVector<TV>", lanes);
        Assert.Contains("var d = av - bv;", lanes);
        Assert.Contains("return (TV.IfLess(av, bv, -SquareLanes(d), av / (bv + TV.Create(1f))), default);", lanes);
        Assert.DoesNotContain("static TV Square", lanes); // the helper is emitted once per model, beside the structs
        Assert.Contains("static TV SquareLanes<TV>(TV x) where TV : struct, global::GateLoop.Runtime.ILaneVector<TV> => x * x;", Square.Vector());
        Assert.Contains("HostSimd.Map<DemoLanes>(from, to, a, b, y);", Map.HostEntry(Numeric.Float));
        Assert.Equal("", Map.HostEntry(Numeric.Double)); // a double build's host runs the kernel's scalar twin
    }
}
