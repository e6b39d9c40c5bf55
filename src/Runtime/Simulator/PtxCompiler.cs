using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime.Cuda;

namespace GateLoop.Runtime;

/// <summary>
/// ILGPU's PTX backend configured as the <c>cuda</c> device configures it (ILGPU.Algorithms for the math,
/// optimization level O2, an H100/H200's sm_90; ILGPU 1.5.3 writes the sm_80 instruction set, which the driver
/// compiles for sm_90), without a GPU: the PTX a GPU would be handed, for the audit and the simulator.
/// </summary>
public sealed class PtxCompiler : IDisposable
{
    Context context = null!;
    PTXBackend backend = null!;

    /// <summary>A compiler for sm_90.</summary>
    public PtxCompiler() => Start();

    void Start()
    {
        context = Context.Create(b => b.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2));
        backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null);
    }

    /// <summary>The PTX of an auto-grouped kernel (first parameter an ILGPU index).</summary>
    public string Compile(MethodInfo kernel) => Compile(EntryPointDescription.FromImplicitlyGroupedKernel(kernel));

    /// <summary>The PTX of an explicitly grouped kernel (one that reads <c>Grid</c> and <c>Group</c> itself).</summary>
    public string CompileGrouped(MethodInfo kernel) => Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel));

    string Compile(EntryPointDescription entry)
    {
        lock (this)
        {
            try
            {
                return ((PTXCompiledKernel)backend.Compile(entry, default)).PTXAssembly;
            }
            catch
            {
                // A failed compilation leaves ILGPU's backend unusable (every later one throws): start a new one.
                context.Dispose();
                Start();
                throw;
            }
        }
    }

    /// <inheritdoc />
    public void Dispose() => context.Dispose();
}
