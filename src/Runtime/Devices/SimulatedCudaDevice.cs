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
/// miscompilation shows here, in any build, without a GPU; and counts of what it would execute, per kernel.
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
    readonly IlgpuGemm gemm;
    IReadOnlyDictionary<string, MethodInfo> replacements = new Dictionary<string, MethodInfo>();

    internal SimulatedCudaDevice(Context context, Accelerator accelerator)
        : base(context, accelerator, "cuda-sim (ILGPU's PTX for sm_90, executed by the PTX simulator)")
    {
        gemm = new IlgpuGemm(accelerator, maxThreadsPerGroup: 1024, (kernel, config, arguments) =>
            Simulate(kernel, grouped: true, new(config.GridDim.X, config.GridDim.Y, config.GridDim.Z),
                new(config.GroupDim.X, config.GroupDim.Y, config.GroupDim.Z), length: null, arguments));
    }

    /// <inheritdoc />
    public override string GemmBackend => "ilgpu-tiled (simulated)";

    /// <summary>What the simulator counted, per kernel name (the GEMM's as <c>TiledKernel</c>), since the last <see cref="ResetCounters"/>.</summary>
    public IReadOnlyDictionary<string, LaunchCounters> Counters => counters;

    /// <summary>Forgets the counts.</summary>
    public void ResetCounters() => counters.Clear();

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

    private protected override void Multiply<T>(bool transA, bool transB, int m, int n, int k, T alpha, ArrayView<T> a,
        ArrayView<T> b, T beta, ArrayView<T> c) =>
        gemm.Multiply(transA, transB, m, n, k, alpha, a, transA ? m : k, b, transB ? k : n, beta, c, n);

    private protected override void Run(Delegate kernel, int n, Action<int, int> host, Func<Accelerator, Delegate> load,
        Action<Delegate> launch, Func<object[]> arguments)
    {
        var method = kernel.Method;
        if (replacements.TryGetValue(method.Name, out var replacement)
            && replacement.GetParameters().Select(p => p.ParameterType).SequenceEqual(method.GetParameters().Select(p => p.ParameterType)))
            method = replacement;
        Simulate(method, grouped: false, new((n + GroupSize - 1) / GroupSize), new(GroupSize), n, arguments());
    }

    void Simulate(MethodInfo method, bool grouped, PtxMachine.Dim3 grid, PtxMachine.Dim3 block, int? length, object[] arguments)
    {
        var kernel = kernels.GetOrAdd(method, m => PtxKernel.Parse(grouped ? compiler.CompileGrouped(m) : compiler.Compile(m)));
        var values = length is { } count ? [count, .. arguments] : arguments;
        if (values.Length != kernel.Params.Count)
            throw new ArgumentException($"{kernel.Name} declares {kernel.Params.Count} PTX parameters for {values.Length} arguments");
        var space = new byte[kernel.ParamBytes];
        var regions = new List<PtxMachine.Region>();
        for (int i = 0; i < values.Length; i++)
        {
            var p = kernel.Params[i];
            var bytes = Marshal(values[i], Describe(p.Name), regions);
            if (bytes.Length != p.Size)
                throw new ArgumentException($"{kernel.Name}: the argument for {p.Name} is {bytes.Length} bytes, its PTX parameter {p.Size}");
            bytes.CopyTo(space, p.Offset);
        }
        var counts = PtxMachine.Launch(kernel, grid, block, space, regions);
        counters.AddOrUpdate(method.Name, counts, (_, sum) =>
        {
            lock (sum) sum.Add(counts);
            return sum;
        });
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
    static byte[] Marshal(object value, string name, List<PtxMachine.Region> regions)
    {
        var type = value.GetType();
        return type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ArrayView<>)
            ? ViewMarshallers.GetOrAdd(type.GetGenericArguments()[0], t => (Func<object, string, List<PtxMachine.Region>, byte[]>)
                typeof(SimulatedCudaDevice).GetMethod(nameof(View), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(t)
                    .CreateDelegate(typeof(Func<object, string, List<PtxMachine.Region>, byte[]>)))(value, name, regions)
            : ValueMarshallers.GetOrAdd(type, t => (Func<object, byte[]>)
                typeof(SimulatedCudaDevice).GetMethod(nameof(Bytes), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(t)
                    .CreateDelegate(typeof(Func<object, byte[]>)))(value);
    }

    static readonly ConcurrentDictionary<Type, Func<object, string, List<PtxMachine.Region>, byte[]>> ViewMarshallers = new();
    static readonly ConcurrentDictionary<Type, Func<object, byte[]>> ValueMarshallers = new();

    static unsafe byte[] View<T>(object boxed, string name, List<PtxMachine.Region> regions) where T : unmanaged
    {
        var view = (ArrayView<T>)boxed;
        ulong address = view.Length > 0 ? (ulong)Unsafe.AsPointer(ref view.LoadEffectiveAddress()) : 0;
        if (view.Length > 0) regions.Add(new(address, view.LengthInBytes, name));
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
