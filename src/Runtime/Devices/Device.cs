using System.Collections.Concurrent;
using System.Numerics;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace GateLoop.Runtime;

/// <summary>
/// Where kernels run. <c>cpu</c> calls the generated kernel methods directly on CPU threads (the fast host
/// backend); <c>ilgpu-cpu</c> runs them through ILGPU's CPU accelerator, which emulates GPU threads and is only
/// for validating kernels on tiny shapes (GEMMs run on the host there); <c>cuda</c> compiles them to PTX through ILGPU. Memory always lives
/// in ILGPU buffers so one model class serves every device.
/// </summary>
public sealed class Device : IDisposable
{
    /// <summary>The device names accepted by <see cref="Create"/>.</summary>
    public static readonly IReadOnlyList<string> Names = ["cpu", "ilgpu-cpu", "cuda", "auto"];

    readonly Context context;
    readonly ConcurrentDictionary<System.Reflection.MethodInfo, Delegate> kernels = new();
    readonly IlgpuGemm? gemm;

    Device(Context context, Accelerator accelerator, bool isHost, string name)
    {
        this.context = context;
        Accelerator = accelerator;
        IsHost = isHost;
        Name = name;
        // ILGPU's CPU accelerator runs a thread group's barriers on OS threads, which made the tiled GEMM take
        // seconds per matrix of a tiny model; its memory is host memory, so it multiplies on the host instead
        // (the tiled kernel has its own tests there).
        if (!isHost && accelerator is not CPUAccelerator) gemm = new IlgpuGemm(accelerator);
    }

    /// <summary>The ILGPU accelerator that owns this device's memory.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>True when kernels are called directly on CPU threads.</summary>
    public bool IsHost { get; }

    /// <summary>A readable description: kind, processor or GPU name, memory.</summary>
    public string Name { get; }

    /// <summary>
    /// Whether fp32 GEMMs may use TF32 tensor cores (cuBLAS on CUDA: products rounded to a 10-bit mantissa, sums in
    /// fp32). Off by default; the host backend always multiplies in full precision and stays false.
    /// </summary>
    public bool AllowTf32
    {
        get => gemm?.AllowTf32 ?? false;
        set
        {
            if (gemm is not null) gemm.AllowTf32 = value;
        }
    }

    /// <summary>
    /// Bytes of memory the device's buffers can take: the GPU's memory on CUDA, else the memory this process may
    /// use (the machine's, or its container's limit).
    /// </summary>
    public long MemoryBytes => Accelerator is CudaAccelerator ? Accelerator.MemorySize : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>
    /// Refuses a plan of <paramref name="bytes"/> more than the device can hold beside <paramref name="held"/>,
    /// with one line saying what it would take, before an allocation fails somewhere less clear.
    /// </summary>
    /// <exception cref="UserInputException">The plan does not fit.</exception>
    public void EnsureFits(long bytes, long held, string what)
    {
        if (bytes + held <= MemoryBytes) return;
        static string Size(long b) => b >= 1L << 30 ? $"{b / (double)(1L << 30):N1} GiB" : $"{b / (double)(1L << 20):N0} MiB";
        throw new UserInputException(
            $"{what} needs about {Size(bytes)} of memory beside the {Size(held)} already held, more than the {Size(MemoryBytes)} {Name.Split(' ')[0]} has; use a smaller batch or sequence length");
    }

    /// <summary>Which matrix-multiply implementation runs on this device.</summary>
    public string GemmBackend => gemm?.Backend ?? "host-simd";

    /// <summary>Creates a device by name: <c>cpu</c>, <c>ilgpu-cpu</c>, <c>cuda</c> or <c>auto</c> (cuda when present).</summary>
    /// <exception cref="DeviceUnavailableException">The name is unknown or the device is not present.</exception>
    public static Device Create(string name)
    {
        // ILGPU.Algorithms supplies the PTX for MathF.Exp and friends (cuBLAS comes from our own binding).
        var context = Context.Create(b => b.CPU().Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2));
        try
        {
            switch (name)
            {
                case "cpu":
                    return new Device(context, context.CreateCPUAccelerator(0), isHost: true,
                        $"cpu ({Environment.ProcessorCount} threads, host backend)");
                case "ilgpu-cpu":
                    return new Device(context, context.CreateCPUAccelerator(0), isHost: false,
                        "ilgpu-cpu (ILGPU CPU accelerator, for kernel validation)");
                case "cuda":
                case "auto":
                    var cuda = context.GetCudaDevices();
                    if (cuda.Count == 0)
                    {
                        if (name == "auto") goto case "cpu";
                        throw new DeviceUnavailableException(
                            "no CUDA device was found (is the NVIDIA driver installed and a GPU visible?); use --device cpu");
                    }
                    var accelerator = cuda[0].CreateCudaAccelerator(context);
                    return new Device(context, accelerator, isHost: false,
                        $"cuda: {accelerator.Name} ({accelerator.MemorySize / (1024.0 * 1024 * 1024):F1} GiB)");
                default:
                    throw new DeviceUnavailableException($"unknown device '{name}'; choose one of: {string.Join(", ", Names)}");
            }
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>Allocates a zeroed buffer of <paramref name="length"/> elements on this device.</summary>
    public MemoryBuffer1D<T, Stride1D.Dense> Allocate<T>(long length) where T : unmanaged
    {
        var buffer = Accelerator.Allocate1D<T>(Math.Max(length, 1));
        buffer.MemSetToZero();
        return buffer;
    }

    /// <summary>Waits for all queued work.</summary>
    public void Synchronize() => Accelerator.Synchronize();

    /// <summary>
    /// Row-major dense GEMM: C[m×n] = alpha·op(A)·op(B) + beta·C, with op(A) m×k and op(B) k×n; A, B and C are
    /// packed (leading dimension = stored columns). beta = 0 overwrites C.
    /// </summary>
    public void Gemm<T>(bool transA, bool transB, int m, int n, int k, T alpha, ArrayView<T> a, ArrayView<T> b,
        T beta, ArrayView<T> c) where T : unmanaged, INumber<T> =>
        Multiply(transA, transB, m, n, k, alpha, a, b, beta, c, "Gemm");

    unsafe void Multiply<T>(bool transA, bool transB, int m, int n, int k, T alpha, ArrayView<T> a, ArrayView<T> b,
        T beta, ArrayView<T> c, string profileName) where T : unmanaged, INumber<T>
    {
        int lda = transA ? m : k, ldb = transB ? k : n;
        var clock = Profile is null ? null : System.Diagnostics.Stopwatch.StartNew();
        if (gemm is null)
            HostGemm.Multiply(transA, transB, m, n, k, alpha, (T*)a.LoadEffectiveAddressAsPtr(), lda,
                (T*)b.LoadEffectiveAddressAsPtr(), ldb, beta, (T*)c.LoadEffectiveAddressAsPtr(), n);
        else
            gemm.Multiply(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, n);
        if (clock is not null)
        {
            Synchronize();
            Profile!.Add(profileName, clock.Elapsed.TotalMilliseconds);
        }
    }

    /// <summary>
    /// dst[j] += Σ_r m[r, j] over a packed <paramref name="rows"/> × <paramref name="columns"/> matrix (bias
    /// gradients): a row of ones times m, so it runs as the GEMM backend's matrix–vector product, which walks m
    /// row by row on the host and coalesced on a GPU.
    /// </summary>
    public void ColumnSum<T>(int rows, int columns, ArrayView<T> m, ArrayView<T> dst) where T : unmanaged, INumber<T> =>
        ColumnSum(rows, columns, m, dst, T.One);

    /// <summary>dst[j] += scale·Σ_r m[r, j] (see <see cref="ColumnSum{T}(int, int, ArrayView{T}, ArrayView{T})"/>).</summary>
    public void ColumnSum<T>(int rows, int columns, ArrayView<T> m, ArrayView<T> dst, T scale) where T : unmanaged, INumber<T> =>
        Multiply(false, false, 1, columns, rows, scale, Ones<T>(rows), m, T.One, dst, nameof(ColumnSum));

    readonly Dictionary<Type, MemoryBuffer> ones = [];

    // A shared vector of ones, grown to the longest length asked for.
    ArrayView<T> Ones<T>(int length) where T : unmanaged, INumber<T>
    {
        lock (ones)
        {
            if (ones.GetValueOrDefault(typeof(T)) is not MemoryBuffer1D<T, Stride1D.Dense> buffer || buffer.Length < length)
            {
                ones.GetValueOrDefault(typeof(T))?.Dispose();
                buffer = Allocate<T>(length);
                buffer.CopyFromCPU(Enumerable.Repeat(T.One, length).ToArray());
                ones[typeof(T)] = buffer;
            }
            return buffer.View.SubView(0, length);
        }
    }

    /// <summary>
    /// When set, every kernel launch and GEMM is timed (waiting for the device after each, so this slows a GPU
    /// run) and accumulated by kernel name.
    /// </summary>
    public Profile? Profile { get; set; }

    // Profiling waits for the device, so the time is the kernel's own.
    void Record(Delegate kernel, long start)
    {
        Synchronize();
        Profile!.Add(kernel.Method.Name, System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
    }

    // Kernel launches: one index per logical work item. The host backend runs the kernel's host twin (or the
    // kernel itself) on CPU threads; ILGPU compiles it once per device and caches the launcher.

    /// <summary>Runs <paramref name="kernel"/> for indices 0…n−1.</summary>
    public void Launch<T1>(Action<Index1D, T1> kernel, int n, T1 a1)
        where T1 : struct
    {
        if (n <= 0) return;
        long start = Profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
        if (!IsHost) Load(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel))(n, a1);
        else if (HostTwin<Action<int, int, T1>>(kernel) is { } twin) HostFor(kernel, n, (from, to) => twin(from, to, a1));
        else HostFor(kernel, n, (from, to) => { for (int i = from; i < to; i++) kernel(i, a1); });
        if (Profile is not null) Record(kernel, start);
    }

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2>(Action<Index1D, T1, T2> kernel, int n, T1 a1, T2 a2)
        where T1 : struct where T2 : struct
    {
        if (n <= 0) return;
        long start = Profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
        if (!IsHost) Load(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel))(n, a1, a2);
        else if (HostTwin<Action<int, int, T1, T2>>(kernel) is { } twin) HostFor(kernel, n, (from, to) => twin(from, to, a1, a2));
        else HostFor(kernel, n, (from, to) => { for (int i = from; i < to; i++) kernel(i, a1, a2); });
        if (Profile is not null) Record(kernel, start);
    }

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2, T3>(Action<Index1D, T1, T2, T3> kernel, int n, T1 a1, T2 a2, T3 a3)
        where T1 : struct where T2 : struct where T3 : struct
    {
        if (n <= 0) return;
        long start = Profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
        if (!IsHost) Load(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel))(n, a1, a2, a3);
        else if (HostTwin<Action<int, int, T1, T2, T3>>(kernel) is { } twin) HostFor(kernel, n, (from, to) => twin(from, to, a1, a2, a3));
        else HostFor(kernel, n, (from, to) => { for (int i = from; i < to; i++) kernel(i, a1, a2, a3); });
        if (Profile is not null) Record(kernel, start);
    }

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2, T3, T4>(Action<Index1D, T1, T2, T3, T4> kernel, int n, T1 a1, T2 a2, T3 a3, T4 a4)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct
    {
        if (n <= 0) return;
        long start = Profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
        if (!IsHost) Load(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel))(n, a1, a2, a3, a4);
        else if (HostTwin<Action<int, int, T1, T2, T3, T4>>(kernel) is { } twin) HostFor(kernel, n, (from, to) => twin(from, to, a1, a2, a3, a4));
        else HostFor(kernel, n, (from, to) => { for (int i = from; i < to; i++) kernel(i, a1, a2, a3, a4); });
        if (Profile is not null) Record(kernel, start);
    }

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2, T3, T4, T5>(Action<Index1D, T1, T2, T3, T4, T5> kernel, int n,
        T1 a1, T2 a2, T3 a3, T4 a4, T5 a5)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct
    {
        if (n <= 0) return;
        long start = Profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
        if (!IsHost) Load(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel))(n, a1, a2, a3, a4, a5);
        else if (HostTwin<Action<int, int, T1, T2, T3, T4, T5>>(kernel) is { } twin) HostFor(kernel, n, (from, to) => twin(from, to, a1, a2, a3, a4, a5));
        else HostFor(kernel, n, (from, to) => { for (int i = from; i < to; i++) kernel(i, a1, a2, a3, a4, a5); });
        if (Profile is not null) Record(kernel, start);
    }

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2, T3, T4, T5, T6>(Action<Index1D, T1, T2, T3, T4, T5, T6> kernel, int n,
        T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
    {
        if (n <= 0) return;
        long start = Profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
        if (!IsHost) Load(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel))(n, a1, a2, a3, a4, a5, a6);
        else if (HostTwin<Action<int, int, T1, T2, T3, T4, T5, T6>>(kernel) is { } twin) HostFor(kernel, n, (from, to) => twin(from, to, a1, a2, a3, a4, a5, a6));
        else HostFor(kernel, n, (from, to) => { for (int i = from; i < to; i++) kernel(i, a1, a2, a3, a4, a5, a6); });
        if (Profile is not null) Record(kernel, start);
    }

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2, T3, T4, T5, T6, T7>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7> kernel, int n,
        T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
        where T7 : struct
    {
        if (n <= 0) return;
        long start = Profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
        if (!IsHost) Load(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel))(n, a1, a2, a3, a4, a5, a6, a7);
        else if (HostTwin<Action<int, int, T1, T2, T3, T4, T5, T6, T7>>(kernel) is { } twin) HostFor(kernel, n, (from, to) => twin(from, to, a1, a2, a3, a4, a5, a6, a7));
        else HostFor(kernel, n, (from, to) => { for (int i = from; i < to; i++) kernel(i, a1, a2, a3, a4, a5, a6, a7); });
        if (Profile is not null) Record(kernel, start);
    }

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2, T3, T4, T5, T6, T7, T8>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8> kernel, int n,
        T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
        where T7 : struct where T8 : struct
    {
        if (n <= 0) return;
        long start = Profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
        if (!IsHost) Load(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel))(n, a1, a2, a3, a4, a5, a6, a7, a8);
        else if (HostTwin<Action<int, int, T1, T2, T3, T4, T5, T6, T7, T8>>(kernel) is { } twin) HostFor(kernel, n, (from, to) => twin(from, to, a1, a2, a3, a4, a5, a6, a7, a8));
        else HostFor(kernel, n, (from, to) => { for (int i = from; i < to; i++) kernel(i, a1, a2, a3, a4, a5, a6, a7, a8); });
        if (Profile is not null) Record(kernel, start);
    }

    // The generator gives every kernel a host twin, Kernels.Host.Name(from, to, the same arguments), that runs a
    // range of indices through pointers; a hand-written kernel without one runs index by index.
    readonly ConcurrentDictionary<System.Reflection.MethodInfo, Delegate?> twins = new();

    TTwin? HostTwin<TTwin>(Delegate kernel) where TTwin : Delegate =>
        (TTwin?)twins.GetOrAdd(kernel.Method, method => HostTwinOf(method)?.CreateDelegate<TTwin>());

    /// <summary>The range entry <c>Host.Name(int from, int to, …)</c> beside <paramref name="kernel"/>, if it has one.</summary>
    internal static System.Reflection.MethodInfo? HostTwinOf(System.Reflection.MethodInfo kernel) =>
        kernel.DeclaringType?.GetNestedType("Host")?.GetMethod(kernel.Name,
            System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static,
            [typeof(int), typeof(int), .. kernel.GetParameters().Skip(1).Select(p => p.ParameterType)]);

    TLoaded Load<TLoaded>(Delegate kernel, Func<TLoaded> load) where TLoaded : Delegate =>
        (TLoaded)kernels.GetOrAdd(kernel.Method, _ => load());

    // Waking the other cores costs tens of microseconds, more than many launches of a generation step take
    // altogether; so a launch whose last run (same kernel, same count) was that short runs on this thread.
    // A few chunks per core balance uneven rows without paying a delegate per scheduling step.
    readonly ConcurrentDictionary<(System.Reflection.MethodInfo, int), double> hostMicroseconds = new();
    const double ParallelWorthMicroseconds = 50;

    // The body runs a range of indices, so the only call per index is the kernel's own delegate.
    void HostFor(Delegate kernel, int n, Action<int, int> body)
    {
        int chunks = Math.Min(n, Environment.ProcessorCount * 4);
        var key = (kernel.Method, n);
        if (chunks <= 1 || hostMicroseconds.TryGetValue(key, out double last) && last < ParallelWorthMicroseconds)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            body(0, n);
            hostMicroseconds[key] = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            return;
        }
        long begin = System.Diagnostics.Stopwatch.GetTimestamp();
        Parallel.For(0, chunks, c => body((int)((long)n * c / chunks), (int)((long)n * (c + 1) / chunks)));
        // Measured in parallel, so compare as if serial: the cores' time is what a serial run would take.
        hostMicroseconds[key] = System.Diagnostics.Stopwatch.GetElapsedTime(begin).TotalMicroseconds * Environment.ProcessorCount;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var buffer in ones.Values) buffer.Dispose();
        gemm?.Dispose();
        Accelerator.Dispose();
        context.Dispose();
    }
}

/// <summary>The requested device does not exist on this machine, or its name is unknown.</summary>
public sealed class DeviceUnavailableException(string message) : Exception(message);
