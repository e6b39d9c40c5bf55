using System.Reflection;
using System.Text.RegularExpressions;
using GateLoop.Tests.Shared;
using ILGPU;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// Every kernel the product can launch compiles to PTX for an H100/H200 (sm_90) here, without a GPU, and its PTX
/// shows none of the fingerprints of ILGPU's known miscompilations (<see cref="PtxAudit"/>): the generated kernels
/// of every model and layer variant, the optimizer's, the device check's and the tiled GEMM's. The probe kernels,
/// each written with one construct the analyzer refuses, show that the audit sees each fault it looks for.
/// ILGPU 1.5.3 emits PTX for sm_80 at most, which the driver compiles for sm_90 when the module loads.
/// </summary>
public sealed class PtxTests : IDisposable
{
    readonly PtxAudit audit = new();

    public void Dispose() => audit.Dispose();

    public static TheoryData<string> KernelClasses() => new(KernelTypes().Select(t => t.FullName!));

    internal static IEnumerable<Type> KernelTypes() =>
        typeof(PtxTests).Assembly.GetTypes().Where(t => t.Name == "Kernels" && t.DeclaringType is not null);

    static string Describe(IEnumerable<PtxAudit.Finding> findings) =>
        string.Join("\n", findings.Select(f => $"{f.Kernel}: {f.Fault}: {f.Line}"));

    [Theory]
    [MemberData(nameof(KernelClasses))]
    public void Generated_kernels_compile_to_ptx_without_known_faults(string kernelClass)
    {
        var type = KernelTypes().Single(t => t.FullName == kernelClass);
        var kernels = PtxAudit.KernelsOf(type);
        Assert.NotEmpty(kernels);
        foreach (var kernel in kernels)
        {
            string ptx = audit.Compile(kernel);
            Assert.Contains(".target sm_80", ptx);
            Assert.Contains($".entry Kernel_{kernel.Name}", ptx);
        }
        var report = audit.AuditModel(type.DeclaringType!);
        Assert.Equal(kernels.Count, report.Kernels);
        Assert.True(report.Findings.Count == 0, Describe(report.Findings));
    }

    [Fact]
    public void The_runtime_kernels_compile_to_ptx_without_known_faults()
    {
        Assert.Equal(["AdamStep", "ClipScale", "SquaredNormPartials"], PtxAudit.KernelsOf(typeof(AdamKernels)).Select(k => k.Name).Order());
        var report = audit.AuditRuntime();
        Assert.Equal(9, report.Kernels); // the three optimizer kernels, the scalar probes, the bf16 copy, the tiled GEMM, the two bf16 roundings and the widening
        Assert.True(report.Findings.Count == 0, Describe(report.Findings));
    }

    [Fact]
    public void The_tiled_gemm_kernel_compiles_to_ptx_for_doubles_too()
    {
        string ptx = audit.CompileGrouped(IlgpuGemm.TiledKernelMethod<double>());
        Assert.Contains(".shared", ptx);
        Assert.Empty(PtxAudit.Scan("TiledKernel", ptx));
    }

    public static TheoryData<string> Probes() => new(PtxProbes.Expected.Select(p => p.Kernel));

    /// <summary>Each probe's PTX holds the fault (where PTX text shows it), and the audit reports the ones it looks for.</summary>
    [Theory]
    [MemberData(nameof(Probes))]
    public void Each_probe_shows_its_fault_in_the_ptx(string kernel)
    {
        var (_, _, pattern, audited) = PtxProbes.Expected.Single(p => p.Kernel == kernel);
        string ptx = audit.Compile(typeof(PtxProbes).GetMethod(kernel, BindingFlags.Public | BindingFlags.Static)!);
        Assert.Matches(new Regex(pattern!), ptx);
        var findings = PtxAudit.Scan(kernel, ptx);
        if (audited) Assert.NotEmpty(findings);
        else Assert.True(findings.Count == 0, Describe(findings));
    }

    [Fact]
    public void The_audit_reads_denormal_constants_of_both_widths_and_leaves_normal_ones()
    {
        Assert.Single(PtxAudit.Scan("k", "\tselp.b32 %f2, 0f00000001, 0f00000000, %p1;"));
        Assert.Single(PtxAudit.Scan("k", "\tselp.b64 %fd2, 0d0000000000000001, 0d0000000000000000, %p1;"));
        Assert.Single(PtxAudit.Scan("k", "\tmov.f32 %f1, 0f807FFFFF;")); // a negative denormal
        Assert.Empty(PtxAudit.Scan("k", "\tmul.f32 %f1, %f2, 0f3F800000;\n\tadd.f32 %f1, %f1, 0f00800000;\n\tmov.f32 %f3, 0f80000000;"));
        Assert.Empty(PtxAudit.Scan("k", "// copysign.f32 in a comment"));
    }

    [Fact]
    public void A_kernel_ilgpu_cannot_compile_is_a_finding_and_the_audit_goes_on()
    {
        var report = audit.Audit([.. PtxAudit.KernelsOf(typeof(Uncompilable)), .. PtxAudit.KernelsOf(typeof(AdamKernels))]);
        var finding = Assert.Single(report.Findings);
        Assert.Equal(nameof(Uncompilable.Clamp), finding.Kernel);
        Assert.StartsWith("ILGPU cannot compile it for CUDA: ", finding.Fault);
    }

    static class Uncompilable
    {
#pragma warning disable GL0030 // the construct under test
        public static void Clamp(Index1D i, ArrayView<float> x) => x[i] = Math.Clamp(x[i], 0f, 1f);
#pragma warning restore GL0030
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
