using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime.Cuda;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// Every kernel the product can launch compiles to PTX for an H100 (sm_90) here, without a GPU: the generated
/// kernels of every model and layer variant, the optimizer's and the tiled GEMM's. ILGPU 1.5.3 emits PTX for
/// sm_80 at most, which the driver compiles for sm_90 when the module loads (PTX is forward compatible).
/// </summary>
public sealed class PtxTests : IDisposable
{
    readonly Context context = Context.Create(b => b.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2));
    readonly PTXBackend backend;

    public PtxTests() =>
        backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null);

    public void Dispose() => context.Dispose();

    public static TheoryData<string> KernelClasses() => new(KernelTypes().Select(t => t.FullName!));

    internal static IEnumerable<Type> KernelTypes() =>
        typeof(PtxTests).Assembly.GetTypes().Where(t => t.Name == "Kernels" && t.DeclaringType is not null);

    string Compile(MethodInfo kernel)
    {
        var compiled = (PTXCompiledKernel)backend.Compile(EntryPointDescription.FromImplicitlyGroupedKernel(kernel), default);
        return compiled.PTXAssembly;
    }

    [Theory]
    [MemberData(nameof(KernelClasses))]
    public void Generated_kernels_compile_to_ptx(string kernelClass)
    {
        var type = KernelTypes().Single(t => t.FullName == kernelClass);
        var kernels = type.GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Where(m => m.GetParameters().FirstOrDefault()?.ParameterType == typeof(Index1D)).ToList();
        Assert.NotEmpty(kernels);
        foreach (var kernel in kernels)
        {
            string ptx = Compile(kernel);
            Assert.Contains(".target sm_80", ptx);
            Assert.Contains($".entry Kernel_{kernel.Name}", ptx);
        }
    }

    [Fact]
    public void The_optimizer_kernels_compile_to_ptx()
    {
        var kernels = typeof(AdamKernels).GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Where(m => m.GetParameters().FirstOrDefault()?.ParameterType == typeof(Index1D)).ToList();
        Assert.Equal(["AdamStep", "ClipScale", "SquaredNormPartials"], kernels.Select(k => k.Name).Order());
        foreach (var kernel in kernels) Assert.Contains(".entry", Compile(kernel));
    }

    [Theory]
    [InlineData(typeof(float))]
    [InlineData(typeof(double))]
    public void The_tiled_gemm_kernel_compiles_to_ptx(Type element)
    {
        var kernel = typeof(IlgpuGemm).GetMethod("TiledKernel", BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(element);
        var compiled = (PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel), default);
        Assert.Contains(".shared", compiled.PTXAssembly);
    }

    [Fact]
    public void Every_declared_variant_is_covered()
    {
        // Gate loop (both head layouts, both norms, ablations), attention (rotary, relative positions), SimpleGateLoop.
        var declaring = KernelTypes().Select(t => t.DeclaringType!.Name).ToHashSet();
        foreach (var name in new[] { "PreMaxHeads", "PreHeadsSubNorm", "PostHeadsGated", "PostAblated", "AttnRotary", "AttnRelPosSoftmax", "SglHeinsenPostReverse" })
            Assert.Contains(name, declaring);
    }
}
