using System.Numerics;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace GateLoop.Runtime;

/// <summary>
/// Where kernels run: <see cref="HostDevice"/> (<c>cpu</c>) calls each kernel's host entry on CPU threads;
/// <see cref="IlgpuDevice"/> compiles the kernels through ILGPU, to PTX on <c>cuda</c> or for ILGPU's CPU
/// accelerator on <c>ilgpu-cpu</c> (which emulates GPU threads, for validating kernels on tiny shapes). Memory
/// always lives in ILGPU buffers so one model class serves every device.
/// </summary>
public abstract class Device : IDisposable
{
    /// <summary>The device names accepted by <see cref="Create"/>.</summary>
    public static readonly IReadOnlyList<string> Names = ["cpu", "ilgpu-cpu", "cuda", "cuda-sim", "auto"];

    readonly Context context;

    private protected Device(Context context, Accelerator accelerator, string name)
    {
        this.context = context;
        Accelerator = accelerator;
        Name = name;
    }

    /// <summary>The ILGPU accelerator that owns this device's memory.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>True on the host backend, where kernels are called directly on CPU threads.</summary>
    public bool IsHost => this is HostDevice;

    /// <summary>
    /// True where kernels run as on an NVIDIA GPU, warps of 32 in lockstep: <c>cuda</c>, and <c>cuda-sim</c>, which
    /// executes the same PTX. (ILGPU's CPU accelerator meets at a barrier for every shuffle, so a schedule choosing
    /// many warps for a GPU keeps to its other steps there.)
    /// </summary>
    public bool IsGpu => Accelerator is CudaAccelerator || this is SimulatedCudaDevice;

    /// <summary>A readable description: kind, processor or GPU name, memory.</summary>
    public string Name { get; }

    /// <summary>
    /// Whether fp32 GEMMs may use TF32 tensor cores (cuBLAS on CUDA: products rounded to a 10-bit mantissa, sums in
    /// fp32). Off by default; a device without tensor cores stays false.
    /// </summary>
    public virtual bool AllowTf32 { get => false; set { } }

    /// <summary>
    /// What <see cref="Gemm{T}(bool, bool, int, int, int, T, GemmInput{T}, GemmInput{T}, T, ArrayView{T})"/> of floats takes as inputs: fp32 (the default), or A and B rounded to bf16 with
    /// fp32 products and sums (cuBLAS's bf16 GEMM on CUDA, the same rounding in the host's and the tiled kernel's
    /// packing elsewhere). Column sums and double GEMMs stay exact.
    /// </summary>
    public GemmPrecision GemmPrecision { get; set; }

    /// <summary>Which matrix-multiply implementation runs on this device.</summary>
    public abstract string GemmBackend { get; }

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

    /// <summary>
    /// Refuses a plan whose largest launch, <paramref name="largest"/> (its indices computed in 64 bits and its
    /// kernel), has more indices than a launch can index (an int), before it is allocated.
    /// </summary>
    /// <exception cref="UserInputException">A launch would overflow.</exception>
    public static void EnsureLaunchable((long Indices, string Kernel) largest, string what)
    {
        if (largest.Indices <= int.MaxValue) return;
        throw new UserInputException(
            $"{what} launches {largest.Kernel} over {largest.Indices:N0} indices, more than one launch can index ({int.MaxValue:N0}); use a smaller batch or seq");
    }

    /// <summary>
    /// Creates a device by name: <c>cpu</c>, <c>ilgpu-cpu</c>, <c>cuda</c>, <c>cuda-sim</c> (the kernels compiled to
    /// PTX as for <c>cuda</c>, executed by the PTX simulator) or <c>auto</c> (cuda when present).
    /// </summary>
    /// <exception cref="DeviceUnavailableException">The name is unknown or the device is not present.</exception>
    public static Device Create(string name)
    {
        // ILGPU.Algorithms supplies the PTX for MathF.Exp and friends (cuBLAS comes from our own binding). The CPU
        // accelerator runs warps of 32 as CUDA does (its default is 4), so a kernel whose warp shares a row (the
        // norms) computes there what it computes on a GPU; one warp per group, where CPUDevice.Nvidia has 32.
        var context = Context.Create(b => b.CPU(new ILGPU.Runtime.CPU.CPUDevice(32, 1, 1)).Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2));
        try
        {
            switch (name)
            {
                case "cpu":
                    return new HostDevice(context, context.CreateCPUAccelerator(0),
                        $"cpu ({Environment.ProcessorCount} threads, host backend)");
                case "ilgpu-cpu":
                    return new IlgpuDevice(context, context.CreateCPUAccelerator(0),
                        "ilgpu-cpu (ILGPU CPU accelerator, for kernel validation)");
                case "cuda-sim":
                    return new SimulatedCudaDevice(context, context.CreateCPUAccelerator(0));
                case "cuda":
                case "auto":
                    var cuda = context.GetCudaDevices();
                    if (cuda.Count == 0)
                    {
                        if (name == "auto") goto case "cpu";
                        throw new DeviceUnavailableException(
                            "no CUDA device was found (is the NVIDIA driver installed and a GPU visible?); use Device.Create(\"cpu\")");
                    }
                    var accelerator = cuda[0].CreateCudaAccelerator(context);
                    return new IlgpuDevice(context, accelerator,
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
    /// When set, every kernel launch and GEMM is timed (waiting for the device after each, so this slows a GPU
    /// run) and accumulated by kernel name.
    /// </summary>
    public Profile? Profile { get; set; }

    /// <summary>
    /// Row-major dense GEMM: C[m×n] = alpha·op(A)·op(B) + beta·C, with op(A) m×k and op(B) k×n; A, B and C are
    /// packed (leading dimension = stored columns). beta = 0 overwrites C.
    /// </summary>
    public void Gemm<T>(bool transA, bool transB, int m, int n, int k, T alpha, ArrayView<T> a, ArrayView<T> b,
        T beta, ArrayView<T> c) where T : unmanaged, INumber<T> =>
        Gemm(transA, transB, m, n, k, alpha, (GemmInput<T>)a, b, beta, c);

    /// <summary>
    /// <see cref="Gemm{T}(bool, bool, int, int, int, T, ArrayView{T}, ArrayView{T}, T, ArrayView{T})"/> of operands
    /// that may be kept in bf16 (<see cref="GemmInput{T}"/>): such an operand is read as its bf16 copy, not rounded
    /// again, whatever the precision (its fp32 values are scratch by then).
    /// </summary>
    public void Gemm<T>(bool transA, bool transB, int m, int n, int k, T alpha, GemmInput<T> a, GemmInput<T> b,
        T beta, ArrayView<T> c) where T : unmanaged, INumber<T>
    {
        long start = Start();
        Multiply(transA, transB, m, n, k, alpha, a, b, beta, c, bf16Inputs: GemmPrecision == GemmPrecision.Bf16 && typeof(T) == typeof(float));
        Record("Gemm", start);
    }

    /// <summary>
    /// The GEMM of <see cref="Gemm{T}(bool, bool, int, int, int, T, GemmInput{T}, GemmInput{T}, T, ArrayView{T})"/> on
    /// this device's implementation: operands kept in bf16 read as their copies, the others rounded to bf16 when asked.
    /// </summary>
    private protected abstract void Multiply<T>(bool transA, bool transB, int m, int n, int k, T alpha, GemmInput<T> a,
        GemmInput<T> b, T beta, ArrayView<T> c, bool bf16Inputs) where T : unmanaged, INumber<T>;

    /// <summary>
    /// Rounds <paramref name="x"/>'s values into its bf16 copy, when its plan keeps one: what its forward product
    /// reads, and its weight gradient's product reads again in the backward.
    /// </summary>
    public void KeepBf16<T>(GemmInput<T> x) where T : unmanaged
    {
        if (!x.KeptInBf16) return;
        Launch(Bf16Copy.KeepBf16, Bf16Copy.Host, checked((int)x.Bf16.Length), x.Values.Cast<float>(), x.Bf16);
    }

    /// <summary>
    /// dst[j] += Σ_r m[r, j] over a packed <paramref name="rows"/> × <paramref name="columns"/> matrix (bias
    /// gradients): a row of ones times m, so it runs as the GEMM backend's matrix–vector product, which walks m
    /// row by row on the host and coalesced on a GPU.
    /// </summary>
    public void ColumnSum<T>(int rows, int columns, ArrayView<T> m, ArrayView<T> dst) where T : unmanaged, INumber<T> =>
        ColumnSum(rows, columns, m, dst, T.One);

    /// <summary>dst[j] += scale·Σ_r m[r, j] (see <see cref="ColumnSum{T}(int, int, ArrayView{T}, ArrayView{T})"/>).</summary>
    public void ColumnSum<T>(int rows, int columns, ArrayView<T> m, ArrayView<T> dst, T scale) where T : unmanaged, INumber<T>
    {
        long start = Start();
        Multiply(false, false, 1, columns, rows, scale, Ones<T>(rows), m, T.One, dst, bf16Inputs: false);
        Record(nameof(ColumnSum), start);
    }

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

    /// <summary>Copies <paramref name="from"/> into <paramref name="to"/> on the device (a schedule's copy of a residual).</summary>
    public void Copy<T>(ArrayView<T> from, ArrayView<T> to) where T : unmanaged
    {
        long start = Start();
        Transfer(from, to);
        Record(nameof(Copy), start);
    }

    /// <summary>The copy of <see cref="Copy{T}"/> on this device.</summary>
    private protected virtual void Transfer<T>(ArrayView<T> from, ArrayView<T> to) where T : unmanaged => from.CopyTo(to);

    /// <summary>The start of work that <see cref="Record"/> times when profiling.</summary>
    internal long Start() => Profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();

    // Profiling waits for the device, so the time is the work's own.
    internal void Record(string name, long start)
    {
        Completed(name);
        if (Profile is null) return;
        Synchronize();
        Profile.Add(name, System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
    }

    /// <summary>Called after each launch and GEMM with the name <see cref="Profile"/> files it under.</summary>
    private protected virtual void Completed(string name) { }

    /// <summary>
    /// Runs one launch of <paramref name="kernel"/> over indices 0…n−1: the host backend calls
    /// <paramref name="host"/> on ranges of indices, ILGPU loads the kernel once (<paramref name="load"/>) and calls
    /// the loaded launcher (<paramref name="launch"/>), the simulator reads the arguments (<paramref name="arguments"/>).
    /// Every <c>Launch</c> overload comes here.
    /// </summary>
    private protected abstract void Run(Delegate kernel, int n, Action<int, int> host, Func<Accelerator, Delegate> load,
        Action<Delegate> launch, Func<object[]> arguments);

    void Dispatch(Delegate kernel, int n, Action<int, int> host, Func<Accelerator, Delegate> load, Action<Delegate> launch,
        Func<object[]> arguments)
    {
        if (n <= 0) return;
        long start = Start();
        Run(kernel, n, host, load, launch, arguments);
        Record(kernel.Method.Name, start);
    }

    // One overload per kernel arity (C# has no variadic generics), each only binding its arguments for Dispatch.
    // A kernel takes its index first; its host entry, generated beside it as Kernels.Host.Name, takes a range.

    /// <summary>Runs <paramref name="kernel"/> for indices 0…n−1, as <paramref name="host"/> on the host backend.</summary>
    public void Launch<T1>(Action<Index1D, T1> kernel, Action<int, int, T1> host, int n, T1 a1)
        where T1 : struct =>
        Dispatch(kernel, n, (from, to) => host(from, to, a1), a => a.LoadAutoGroupedStreamKernel(kernel),
            d => ((Action<Index1D, T1>)d)(n, a1), () => [a1]);

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2>(Action<Index1D, T1, T2> kernel, Action<int, int, T1, T2> host, int n, T1 a1, T2 a2)
        where T1 : struct where T2 : struct =>
        Dispatch(kernel, n, (from, to) => host(from, to, a1, a2), a => a.LoadAutoGroupedStreamKernel(kernel),
            d => ((Action<Index1D, T1, T2>)d)(n, a1, a2), () => [a1, a2]);

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2, T3>(Action<Index1D, T1, T2, T3> kernel, Action<int, int, T1, T2, T3> host, int n,
        T1 a1, T2 a2, T3 a3)
        where T1 : struct where T2 : struct where T3 : struct =>
        Dispatch(kernel, n, (from, to) => host(from, to, a1, a2, a3), a => a.LoadAutoGroupedStreamKernel(kernel),
            d => ((Action<Index1D, T1, T2, T3>)d)(n, a1, a2, a3), () => [a1, a2, a3]);

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2, T3, T4>(Action<Index1D, T1, T2, T3, T4> kernel, Action<int, int, T1, T2, T3, T4> host,
        int n, T1 a1, T2 a2, T3 a3, T4 a4)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct =>
        Dispatch(kernel, n, (from, to) => host(from, to, a1, a2, a3, a4), a => a.LoadAutoGroupedStreamKernel(kernel),
            d => ((Action<Index1D, T1, T2, T3, T4>)d)(n, a1, a2, a3, a4), () => [a1, a2, a3, a4]);

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2, T3, T4, T5>(Action<Index1D, T1, T2, T3, T4, T5> kernel,
        Action<int, int, T1, T2, T3, T4, T5> host, int n, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct =>
        Dispatch(kernel, n, (from, to) => host(from, to, a1, a2, a3, a4, a5), a => a.LoadAutoGroupedStreamKernel(kernel),
            d => ((Action<Index1D, T1, T2, T3, T4, T5>)d)(n, a1, a2, a3, a4, a5), () => [a1, a2, a3, a4, a5]);

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2, T3, T4, T5, T6>(Action<Index1D, T1, T2, T3, T4, T5, T6> kernel,
        Action<int, int, T1, T2, T3, T4, T5, T6> host, int n, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct =>
        Dispatch(kernel, n, (from, to) => host(from, to, a1, a2, a3, a4, a5, a6), a => a.LoadAutoGroupedStreamKernel(kernel),
            d => ((Action<Index1D, T1, T2, T3, T4, T5, T6>)d)(n, a1, a2, a3, a4, a5, a6), () => [a1, a2, a3, a4, a5, a6]);

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2, T3, T4, T5, T6, T7>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7> kernel,
        Action<int, int, T1, T2, T3, T4, T5, T6, T7> host, int n, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
        where T7 : struct =>
        Dispatch(kernel, n, (from, to) => host(from, to, a1, a2, a3, a4, a5, a6, a7), a => a.LoadAutoGroupedStreamKernel(kernel),
            d => ((Action<Index1D, T1, T2, T3, T4, T5, T6, T7>)d)(n, a1, a2, a3, a4, a5, a6, a7), () => [a1, a2, a3, a4, a5, a6, a7]);

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2, T3, T4, T5, T6, T7, T8>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8> kernel,
        Action<int, int, T1, T2, T3, T4, T5, T6, T7, T8> host, int n, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
        where T7 : struct where T8 : struct =>
        Dispatch(kernel, n, (from, to) => host(from, to, a1, a2, a3, a4, a5, a6, a7, a8), a => a.LoadAutoGroupedStreamKernel(kernel),
            d => ((Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8>)d)(n, a1, a2, a3, a4, a5, a6, a7, a8), () => [a1, a2, a3, a4, a5, a6, a7, a8]);

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2, T3, T4, T5, T6, T7, T8, T9>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9> kernel,
        Action<int, int, T1, T2, T3, T4, T5, T6, T7, T8, T9> host, int n, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct =>
        Dispatch(kernel, n, (from, to) => host(from, to, a1, a2, a3, a4, a5, a6, a7, a8, a9), a => a.LoadAutoGroupedStreamKernel(kernel),
            d => ((Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9>)d)(n, a1, a2, a3, a4, a5, a6, a7, a8, a9), () => [a1, a2, a3, a4, a5, a6, a7, a8, a9]);

    /// <inheritdoc cref="Launch{T1}"/>
    public void Launch<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> kernel,
        Action<int, int, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> host, int n, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9, T10 a10)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct =>
        Dispatch(kernel, n, (from, to) => host(from, to, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10), a => a.LoadAutoGroupedStreamKernel(kernel),
            d => ((Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>)d)(n, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10), () => [a1, a2, a3, a4, a5, a6, a7, a8, a9, a10]);

    /// <summary>Frees what the implementation holds beside the accelerator.</summary>
    private protected virtual void DisposeBackend() { }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var buffer in ones.Values) buffer.Dispose();
        DisposeBackend();
        Accelerator.Dispose();
        context.Dispose();
    }
}

/// <summary>The requested device does not exist on this machine, or its name is unknown.</summary>
public sealed class DeviceUnavailableException(string message) : Exception(message);
