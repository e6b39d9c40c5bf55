using System.Collections.Concurrent;
using System.Numerics;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace GateLoop.Runtime;

/// <summary>
/// The ILGPU backends: <c>cuda</c> compiles each kernel to PTX once and multiplies on cuBLAS (or the tiled
/// ILGPU kernel); <c>ilgpu-cpu</c> runs the kernels on ILGPU's CPU accelerator, which executes the IL as written
/// and so validates kernel logic, never the PTX compiler.
/// </summary>
public sealed class IlgpuDevice : Device
{
    readonly ConcurrentDictionary<System.Reflection.MethodInfo, Delegate> kernels = new();
    readonly IlgpuGemm? gemm;

    internal IlgpuDevice(Context context, Accelerator accelerator, string name) : base(context, accelerator, name)
    {
        // ILGPU's CPU accelerator runs a thread group's barriers on OS threads, which made the tiled GEMM take
        // seconds per matrix of a tiny model; its memory is host memory, so it multiplies on the host instead
        // (the tiled kernel has its own tests there).
        if (accelerator is not CPUAccelerator) gemm = new IlgpuGemm(accelerator);
    }

    /// <inheritdoc />
    public override bool AllowTf32
    {
        get => gemm?.AllowTf32 ?? false;
        set
        {
            if (gemm is not null) gemm.AllowTf32 = value;
        }
    }

    /// <inheritdoc />
    public override string GemmBackend => gemm?.Backend ?? "host-simd";

    private protected override void Multiply<T>(bool transA, bool transB, int m, int n, int k, T alpha, GemmInput<T> a,
        GemmInput<T> b, T beta, ArrayView<T> c, bool bf16Inputs)
    {
        if (gemm is null) HostGemm.Multiply(transA, transB, m, n, k, alpha, a, b, beta, c, bf16Inputs);
        else gemm.Multiply(transA, transB, m, n, k, alpha, a, transA ? m : k, b, transB ? k : n, beta, c, n, bf16Inputs);
    }

    private protected override void Run(Delegate kernel, int n, Action<int, int> host, Func<Accelerator, Delegate> load,
        Action<Delegate> launch, Func<object[]> arguments) => launch(kernels.GetOrAdd(kernel.Method, _ => load(Accelerator)));

    private protected override void DisposeBackend() => gemm?.Dispose();
}
