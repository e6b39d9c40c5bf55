using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Numerics.Tests;

/// <summary>
/// Calls generated kernel methods directly on the host over buffers of the cpu device (ILGPU host memory, which the
/// host can index), and checks gradients against central finite differences. One instance is shared by a test
/// class as a fixture; every buffer it hands out is freed with it.
/// </summary>
public sealed class KernelHarness : IDisposable
{
    /// <summary>Finite-difference step.</summary>
    public const double H = 1e-6;

    readonly GateLoop.Runtime.Device device = GateLoop.Runtime.Device.Create("cpu");
    readonly List<MemoryBuffer> buffers = [];

    Accelerator accelerator => device.Accelerator;

    /// <summary>dst += the column sums of a rows × columns matrix, as the models compute bias gradients.</summary>
    public void ColumnSum(int rows, int columns, ArrayView<double> m, ArrayView<double> dst) =>
        device.ColumnSum(rows, columns, m, dst);

    /// <summary>A zeroed buffer of <paramref name="length"/> doubles.</summary>
    public ArrayView<double> Zeros(long length)
    {
        var buffer = accelerator.Allocate1D<double>(length);
        buffer.MemSetToZero();
        accelerator.Synchronize();
        buffers.Add(buffer);
        return buffer.View;
    }

    /// <summary>A buffer holding a copy of <paramref name="data"/>.</summary>
    public ArrayView<double> Upload(double[] data)
    {
        var view = Zeros(data.Length);
        Set(view, data);
        return view;
    }

    /// <summary>A buffer holding a copy of <paramref name="data"/>.</summary>
    public ArrayView<int> Upload(int[] data)
    {
        var buffer = accelerator.Allocate1D<int>(data.Length);
        buffers.Add(buffer);
        var view = buffer.View;
        for (int i = 0; i < data.Length; i++) view[i] = data[i];
        return view;
    }

    /// <summary>Overwrites <paramref name="view"/> with <paramref name="data"/> (same length).</summary>
    public static void Set(ArrayView<double> view, double[] data)
    {
        if (view.Length != data.Length) throw new ArgumentException($"length {data.Length} into a view of {view.Length}");
        for (int i = 0; i < data.Length; i++) view[i] = data[i];
    }

    /// <summary>A host copy of <paramref name="view"/>.</summary>
    public static double[] Get(ArrayView<double> view)
    {
        var result = new double[view.Length];
        for (int i = 0; i < result.Length; i++) result[i] = view[i];
        return result;
    }

    readonly Dictionary<System.Reflection.MethodInfo, Delegate> loaded = [];

    // Loaded once per kernel: a finite difference launches it thousands of times.
    Delegate Loaded(Delegate kernel, Func<Delegate> load)
    {
        if (!loaded.TryGetValue(kernel.Method, out var launcher)) loaded[kernel.Method] = launcher = load();
        return launcher;
    }

    /// <summary>
    /// Runs a kernel over indices 0…n−1 as ILGPU does, on the CPU accelerator in warps of 32: for kernels whose lanes
    /// work together (a warp per row, as the norms'), which a sequential call per index cannot run.
    /// </summary>
    public void Run<T1, T2, T3, T4>(Action<Index1D, T1, T2, T3, T4> kernel, int n, T1 a1, T2 a2, T3 a3, T4 a4)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct
    {
        ((Action<Index1D, T1, T2, T3, T4>)Loaded(kernel, () => accelerator.LoadAutoGroupedStreamKernel(kernel)))(n, a1, a2, a3, a4);
        accelerator.Synchronize();
    }

    /// <inheritdoc cref="Run{T1, T2, T3, T4}"/>
    public void Run<T1, T2, T3, T4, T5>(Action<Index1D, T1, T2, T3, T4, T5> kernel, int n, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct
    {
        ((Action<Index1D, T1, T2, T3, T4, T5>)Loaded(kernel, () => accelerator.LoadAutoGroupedStreamKernel(kernel)))(n, a1, a2, a3, a4, a5);
        accelerator.Synchronize();
    }

    /// <summary>Runs a kernel body for indices 0…n−1, sequentially.</summary>
    public static void Launch(int n, Action<Index1D> body)
    {
        for (int i = 0; i < n; i++) body(i);
    }

    /// <summary>n values uniform in [lo, hi).</summary>
    public static double[] Random(Random rng, int n, double lo = -1, double hi = 1)
    {
        var result = new double[n];
        for (int i = 0; i < n; i++) result[i] = lo + (hi - lo) * rng.NextDouble();
        return result;
    }

    /// <summary>Σ w_i·y_i.</summary>
    public static double Dot(double[] w, double[] y)
    {
        if (w.Length != y.Length) throw new ArgumentException($"lengths {w.Length} and {y.Length}");
        double sum = 0;
        for (int i = 0; i < w.Length; i++) sum += w[i] * y[i];
        return sum;
    }

    /// <summary>Elementwise a − b.</summary>
    public static double[] Minus(double[] a, double[] b) => a.Select((v, i) => v - b[i]).ToArray();

    /// <summary>Elementwise s·a.</summary>
    public static double[] Scale(double s, double[] a) => a.Select(v => s * v).ToArray();

    /// <summary>
    /// (L(x + h·e_i) − L(x − h·e_i)) / 2h for every i. <paramref name="x"/> is perturbed in place (and restored),
    /// so <paramref name="loss"/> must read it afresh on every call.
    /// </summary>
    public static double[] NumericGradient(double[] x, Func<double> loss)
    {
        var grad = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double saved = x[i];
            x[i] = saved + H;
            double plus = loss();
            x[i] = saved - H;
            double minus = loss();
            x[i] = saved;
            grad[i] = (plus - minus) / (2 * H);
        }
        return grad;
    }

    /// <summary>|actual − expected| ≤ abs + rel·|expected| element by element; the message names the worst element.</summary>
    public static void AssertClose(string what, double[] expected, double[] actual, double abs = 1e-7, double rel = 1e-6)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double excess = Math.Abs(actual[i] - expected[i]) - (abs + rel * Math.Abs(expected[i]));
            if (double.IsNaN(excess)) excess = double.PositiveInfinity; // a NaN anywhere fails
            if (excess > worstExcess)
            {
                worst = i;
                worstExcess = excess;
            }
        }
        Assert.True(worst < 0,
            worst < 0 ? "" : $"{what}[{worst}]: got {actual[worst]:R}, expected {expected[worst]:R} (of {expected.Length} values)");
    }

    public void Dispose()
    {
        foreach (var buffer in buffers) buffer.Dispose();
        device.Dispose();
    }
}
