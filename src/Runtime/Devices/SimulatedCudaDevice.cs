using System.Collections.Concurrent;
using System.Numerics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// <c>cuda-sim</c>: every kernel compiled by ILGPU's PTX backend as the <c>cuda</c> device compiles it, then run by
/// <see cref="PtxMachine"/> with the parameter space ILGPU's CUDA launcher would pass (one struct: the launch length
/// of an implicitly grouped kernel, then each argument, an <see cref="ArrayView{T}"/> as its address and length);
/// GEMMs run the tiled ILGPU kernel the same way (cuBLAS cannot run here). Buffers live in host memory, and a
/// kernel may touch only the buffers its arguments view. What a GPU would compute from ILGPU's PTX, so a
/// miscompilation shows here, in any build, without a GPU; and counts of what it would execute, per kernel, with
/// the time a GPU would take by <see cref="CostModel"/> (an estimate). With <see cref="SampleBlocks"/> the values
/// come from the host entries and the host's GEMM, and only a sample of each launch's blocks is simulated for its
/// counts: how a full-size training step is estimated in seconds rather than hours.
/// </summary>
public sealed class SimulatedCudaDevice : Device
{
    /// <summary>
    /// Threads per block of an implicitly grouped launch. On a GPU ILGPU asks the driver's occupancy calculator;
    /// the kernels do not depend on it (each thread computes its index and returns past the length).
    /// </summary>
    public const int GroupSize = 256;

    readonly PtxCompiler compiler = new();
    readonly ConcurrentDictionary<MethodInfo, PtxKernel> kernels = new();
    readonly ConcurrentDictionary<string, LaunchCounters> counters = new();
    readonly Dictionary<string, KernelCost> costs = [];
    Action<KernelCost>? pending; // the last launch's or GEMM's estimate, filed under its name by Completed
    readonly IlgpuGemm gemm;
    IReadOnlyDictionary<string, MethodInfo> replacements = new Dictionary<string, MethodInfo>();

    internal SimulatedCudaDevice(Context context, Accelerator accelerator)
        : base(context, accelerator, "cuda-sim (ILGPU's PTX for sm_90, executed by the PTX simulator)")
    {
        gemm = new IlgpuGemm(accelerator, maxThreadsPerGroup: 1024, (kernel, config, arguments) =>
            Execute(Bind(kernel, grouped: true, length: null, arguments), new(config.GridDim.X, config.GridDim.Y, config.GridDim.Z),
                new(config.GroupDim.X, config.GroupDim.Y, config.GroupDim.Z)));
    }

    /// <inheritdoc />
    public override string GemmBackend => "ilgpu-tiled (simulated)";

    /// <summary>What the simulator counted, per kernel name (the GEMM's as <c>TiledKernel</c>), since the last <see cref="ResetCounters"/>.</summary>
    public IReadOnlyDictionary<string, LaunchCounters> Counters => counters;

    /// <summary>Forgets the counts and the estimates.</summary>
    public void ResetCounters()
    {
        counters.Clear();
        costs.Clear();
    }

    /// <summary>The GPU whose time <see cref="Costs"/> estimates.</summary>
    public GpuCostModel CostModel { get; set; } = GpuCostModel.H200;

    /// <summary>
    /// The estimated time of every launch and GEMM on <see cref="CostModel"/> since the last
    /// <see cref="ResetCounters"/>, by the name <see cref="Device.Profile"/> uses (GEMMs as cuBLAS calls, whatever
    /// ran them here).
    /// </summary>
    public IReadOnlyDictionary<string, KernelCost> Costs => costs;

    /// <summary>
    /// When positive, a launch of more blocks than this simulates only this many, spread evenly from the first to the
    /// last, for its counts (scaled to the grid), and its host entry computes the values; GEMMs run on the host.
    /// Zero (the default) simulates every block and every GEMM.
    /// </summary>
    public int SampleBlocks { get; set; }

    /// <summary>
    /// When set, every kernel launch (not the GEMM) also runs its host entry on the same inputs and the two results
    /// are compared buffer by buffer, so a disagreement names the kernel, the buffer and element, and the PTX that
    /// ran with operands where it computes differently from .NET. The simulated results are kept.
    /// </summary>
    public bool CompareWithHost { get; set; }

    /// <summary>
    /// An element's largest difference from the host's in <see cref="CompareWithHost"/>, relative to the larger of
    /// its magnitude and the buffer's root mean square: one kernel on identical inputs differs only by its own
    /// roundings (an approximate exponential, another summation order), about 1e-6.
    /// </summary>
    public const double KernelTolerance = 1e-4;

    /// <summary>
    /// From now on, a launch of a kernel named like a public static method of <paramref name="kernels"/>, with the
    /// same parameters, runs that method's PTX instead: how the tests run the kernels of an earlier revision inside
    /// today's schedule. Null restores the model's own.
    /// </summary>
    public void ReplaceKernels(Type? kernels)
    {
        this.kernels.Clear();
        replacements = kernels is null
            ? new Dictionary<string, MethodInfo>()
            : kernels.GetMethods(BindingFlags.Public | BindingFlags.Static).ToDictionary(m => m.Name);
    }

    private protected override unsafe void Multiply<T>(bool transA, bool transB, int m, int n, int k, T alpha, GemmInput<T> a,
        GemmInput<T> b, T beta, ArrayView<T> c, bool bf16Inputs)
    {
        if (SampleBlocks > 0) HostGemm.Multiply(transA, transB, m, n, k, alpha, a, b, beta, c, bf16Inputs);
        else gemm.Multiply(transA, transB, m, n, k, alpha, a, transA ? m : k, b, transB ? k : n, beta, c, n, bf16Inputs);
        var estimate = CostModel.Gemm(m, n, k, sizeof(T));
        (long, long, long, int) shape = (m, n, k, sizeof(T));
        pending = cost => cost.Add(shape, estimate);
    }

    // A device-to-device copy costs a launch and its bytes read and written; the host's copy gives the values.
    private protected override void Transfer<T>(ArrayView<T> from, ArrayView<T> to)
    {
        base.Transfer(from, to);
        var estimate = CostModel.Copy(from.LengthInBytes);
        pending = cost => cost.AddCopy(estimate);
    }

    private protected override void Completed(string name)
    {
        if (pending is null) return;
        if (!costs.TryGetValue(name, out var cost)) costs[name] = cost = new KernelCost();
        pending(cost);
        pending = null;
    }

    // The blocks a sampled launch simulates: SampleBlocks of them, spread evenly, the first and the last included.
    long[] Sample(long blocks) =>
        Enumerable.Range(0, SampleBlocks).Select(i => SampleBlocks == 1 ? 0 : i * (blocks - 1) / (SampleBlocks - 1)).Distinct().ToArray();

    private protected override void Run(Delegate kernel, int n, Action<int, int> host, Func<Accelerator, Delegate> load,
        Action<Delegate> launch, Func<object[]> arguments)
    {
        var method = kernel.Method;
        if (replacements.TryGetValue(method.Name, out var replacement)
            && replacement.GetParameters().Select(p => p.ParameterType).SequenceEqual(method.GetParameters().Select(p => p.ParameterType)))
            method = replacement;
        var bound = Bind(method, grouped: false, n, arguments());
        var grid = new PtxMachine.Dim3((n + GroupSize - 1) / GroupSize);
        if (!CompareWithHost)
        {
            if (SampleBlocks > 0 && grid.Count > SampleBlocks)
            {
                Estimate(Execute(bound, grid, new(GroupSize), Sample(grid.Count)), grid.Count);
                host(0, n);
            }
            else Estimate(Execute(bound, grid, new(GroupSize)), grid.Count);
            return;
        }
        var before = bound.Views.Select(v => Copy(v.Region)).ToArray();
        var counts = Execute(bound, grid, new(GroupSize));
        Estimate(counts, grid.Count);
        var simulated = bound.Views.Select(v => Copy(v.Region)).ToArray();
        for (int i = 0; i < bound.Views.Count; i++) Restore(bound.Views[i].Region, before[i]);
        host(0, n);
        for (int i = 0; i < bound.Views.Count; i++)
        {
            var (region, element) = bound.Views[i];
            string? problem = Disagreement(element, simulated[i], Copy(region));
            Restore(region, simulated[i]);
            if (problem is not null)
                throw new KernelMismatchException($"{bound.Kernel.Name} on cuda-sim disagrees with the host entry in {region.Name}: {problem}{Explain(bound.Kernel, counts)}");
        }
    }

    static unsafe byte[] Copy(PtxMachine.Region r) => new ReadOnlySpan<byte>((void*)r.Start, checked((int)r.Bytes)).ToArray();

    static unsafe void Restore(PtxMachine.Region r, byte[] bytes) => bytes.CopyTo(new Span<byte>((void*)r.Start, checked((int)r.Bytes)));

    // The first element past the tolerance, described; null when the buffers agree.
    static string? Disagreement(Type element, byte[] simulated, byte[] host)
    {
        double[] s = Values(element, simulated), h = Values(element, host);
        bool exact = element != typeof(float) && element != typeof(double);
        double rms = Math.Sqrt(h.Where(double.IsFinite).Select(v => v * v).DefaultIfEmpty(0).Average());
        for (int j = 0; j < s.Length; j++)
        {
            double a = s[j], b = h[j];
            bool same = exact ? a == b
                : double.IsNaN(a) || double.IsNaN(b) ? double.IsNaN(a) && double.IsNaN(b)
                : double.IsInfinity(a) || double.IsInfinity(b) ? a == b
                : Math.Abs(a - b) <= KernelTolerance * Math.Max(Math.Abs(b), rms);
            if (!same)
                return $"element {j} is {a.ToString("G9", System.Globalization.CultureInfo.InvariantCulture)} where the host computes {b.ToString("G9", System.Globalization.CultureInfo.InvariantCulture)} (the buffer's RMS is {rms:G3})";
        }
        return null;
    }

    static double[] Values(Type element, byte[] bytes) =>
        element == typeof(float) ? MemoryMarshal.Cast<byte, float>(bytes).ToArray().Select(v => (double)v).ToArray()
        : element == typeof(double) ? MemoryMarshal.Cast<byte, double>(bytes).ToArray()
        : element == typeof(int) ? MemoryMarshal.Cast<byte, int>(bytes).ToArray().Select(v => (double)v).ToArray()
        : bytes.Select(v => (double)v).ToArray();

    static string Explain(PtxKernel kernel, LaunchCounters counts) =>
        counts.Hazards.Count == 0 ? "" : "; PTX that ran with operands on which it computes differently from .NET: "
            + string.Join("; ", counts.Hazards.Select(h => $"line {h.Key} '{kernel.Lines[h.Key - 1].Trim()}': {h.Value}"));

    /// <summary>A launch bound to its arguments: the kernel, its parameter space, and the buffers its views cover.</summary>
    sealed record Launch(MethodInfo Method, PtxKernel Kernel, byte[] Space, List<(PtxMachine.Region Region, Type Element)> Views);

    Launch Bind(MethodInfo method, bool grouped, int? length, object[] arguments)
    {
        var kernel = kernels.GetOrAdd(method, m => PtxKernel.Parse(grouped ? compiler.CompileGrouped(m) : compiler.Compile(m)));
        var values = length is { } count ? [count, .. arguments] : arguments;
        if (values.Length != kernel.Params.Count)
            throw new ArgumentException($"{kernel.Name} declares {kernel.Params.Count} PTX parameters for {values.Length} arguments");
        var space = new byte[kernel.ParamBytes];
        var views = new List<(PtxMachine.Region, Type)>();
        for (int i = 0; i < values.Length; i++)
        {
            var p = kernel.Params[i];
            var bytes = Marshal(values[i], Describe(p.Name), views);
            if (bytes.Length != p.Size)
                throw new ArgumentException($"{kernel.Name}: the argument for {p.Name} is {bytes.Length} bytes, its PTX parameter {p.Size}");
            bytes.CopyTo(space, p.Offset);
        }
        return new(method, kernel, space, views);
    }

    void Estimate(LaunchCounters counts, long blocks)
    {
        var features = LaunchFeatures.Of(counts, blocks, GroupSize, CostModel);
        var estimate = CostModel.Launch(features);
        pending = cost => cost.Add(features, estimate);
    }

    LaunchCounters Execute(Launch launch, PtxMachine.Dim3 grid, PtxMachine.Dim3 block, long[]? sample = null)
    {
        var counts = PtxMachine.Launch(launch.Kernel, grid, block, launch.Space, launch.Views.Select(v => v.Region).ToList(), sample);
        counters.AddOrUpdate(launch.Method.Name, _ => { var sum = new LaunchCounters(); sum.Add(counts); return sum; }, (_, sum) =>
        {
            lock (sum) sum.Add(counts);
            return sum;
        });
        return counts;
    }

    // ILGPU names a parameter "_" + its C# name + "_" + a number.
    static string Describe(string ptxName)
    {
        var name = ptxName.TrimStart('_');
        int last = name.LastIndexOf('_');
        return $"'{(last > 0 ? name[..last] : name)}'";
    }

    // An argument's bytes as ILGPU's launcher writes them: a view as (address, length in elements), any other
    // (unmanaged) value as its bytes.
    static byte[] Marshal(object value, string name, List<(PtxMachine.Region, Type)> views)
    {
        var type = value.GetType();
        return type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ArrayView<>)
            ? ViewMarshallers.GetOrAdd(type.GetGenericArguments()[0], t => (Func<object, string, List<(PtxMachine.Region, Type)>, byte[]>)
                typeof(SimulatedCudaDevice).GetMethod(nameof(View), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(t)
                    .CreateDelegate(typeof(Func<object, string, List<(PtxMachine.Region, Type)>, byte[]>)))(value, name, views)
            : ValueMarshallers.GetOrAdd(type, t => (Func<object, byte[]>)
                typeof(SimulatedCudaDevice).GetMethod(nameof(Bytes), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(t)
                    .CreateDelegate(typeof(Func<object, byte[]>)))(value);
    }

    static readonly ConcurrentDictionary<Type, Func<object, string, List<(PtxMachine.Region, Type)>, byte[]>> ViewMarshallers = new();
    static readonly ConcurrentDictionary<Type, Func<object, byte[]>> ValueMarshallers = new();

    static unsafe byte[] View<T>(object boxed, string name, List<(PtxMachine.Region, Type)> views) where T : unmanaged
    {
        var view = (ArrayView<T>)boxed;
        ulong address = view.Length > 0 ? (ulong)Unsafe.AsPointer(ref view.LoadEffectiveAddress()) : 0;
        if (view.Length > 0) views.Add((new(address, view.LengthInBytes, name), typeof(T)));
        var bytes = new byte[16];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), address);
        BitConverter.TryWriteBytes(bytes.AsSpan(8, 8), view.Length);
        return bytes;
    }

    static byte[] Bytes<T>(object boxed) where T : unmanaged
    {
        var value = (T)boxed;
        return MemoryMarshal.AsBytes(new ReadOnlySpan<T>(ref value)).ToArray();
    }

    private protected override void DisposeBackend()
    {
        gemm.Dispose();
        compiler.Dispose();
    }
}

/// <summary>A kernel run by the PTX simulator computed something else than its host entry (see <see cref="SimulatedCudaDevice.CompareWithHost"/>).</summary>
public sealed class KernelMismatchException(string message) : Exception(message);
