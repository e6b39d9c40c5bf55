using System.Collections.Concurrent;
using System.Numerics;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// The <c>cpu</c> backend: each kernel runs as its host entry (a range of indices per call, views read as
/// pointers, SIMD where the generator wrote it) on this thread or spread over the cores; GEMMs run on
/// <see cref="HostGemm"/>.
/// </summary>
public sealed class HostDevice : Device
{
    internal HostDevice(Context context, Accelerator accelerator, string name) : base(context, accelerator, name) { }

    /// <inheritdoc />
    public override string GemmBackend => "host-simd";

    private protected override void Multiply<T>(bool transA, bool transB, int m, int n, int k, T alpha, GemmInput<T> a,
        GemmInput<T> b, T beta, ArrayView<T> c, bool bf16Inputs) => HostGemm.Multiply(transA, transB, m, n, k, alpha, a, b, beta, c, bf16Inputs);

    // Waking the other cores costs tens of microseconds, more than many launches of a generation step take
    // altogether; so a launch whose last run (same kernel, same count) was that short runs on this thread.
    // A few chunks per core balance uneven rows without paying a delegate per scheduling step.
    readonly ConcurrentDictionary<(System.Reflection.MethodInfo, int), double> microseconds = new();
    const double ParallelWorthMicroseconds = 50;

    private protected override void Run(Delegate kernel, int n, Action<int, int> host, Func<Accelerator, Delegate> load,
        Action<Delegate> launch, Func<object[]> arguments)
    {
        int chunks = Math.Min(n, Environment.ProcessorCount * 4);
        var key = (kernel.Method, n);
        if (chunks <= 1 || microseconds.TryGetValue(key, out double last) && last < ParallelWorthMicroseconds)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            host(0, n);
            microseconds[key] = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            return;
        }
        long begin = System.Diagnostics.Stopwatch.GetTimestamp();
        Parallel.For(0, chunks, c => host((int)((long)n * c / chunks), (int)((long)n * (c + 1) / chunks)));
        // Measured in parallel, so compare as if serial: the cores' time is what a serial run would take.
        microseconds[key] = System.Diagnostics.Stopwatch.GetElapsedTime(begin).TotalMicroseconds * Environment.ProcessorCount;
    }
}
