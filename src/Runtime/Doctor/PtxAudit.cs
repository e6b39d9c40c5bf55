using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using ILGPU;

namespace GateLoop.Runtime;

/// <summary>
/// Compiles kernels to PTX for an H100/H200 (sm_90) without a GPU and looks in the PTX for the fingerprints of
/// ILGPU 1.5.3's known miscompilations: a <c>copysign</c> (its operands come out swapped), a floating-point
/// constant that is a denormal bit pattern such as <c>0f00000001</c> (a bool converted to float as its raw bits),
/// saturating narrow conversions, unsigned conversions through double, and calls left unresolved.
/// The build's kernel-safety analyzer refuses the C# that leads there; this checks what ILGPU actually emitted,
/// including code ILGPU adds itself (its Math.Round goes through copysign).
/// </summary>
public sealed class PtxAudit : IDisposable
{
    /// <summary>One fingerprint found in one kernel's PTX.</summary>
    /// <param name="Kernel">The kernel's name.</param>
    /// <param name="Fault">What the fingerprint means.</param>
    /// <param name="Line">The PTX line holding it.</param>
    public sealed record Finding(string Kernel, string Fault, string Line);

    /// <summary>What an audit compiled and found.</summary>
    /// <param name="Kernels">How many kernels were compiled to PTX.</param>
    /// <param name="Findings">The fingerprints in their PTX; empty when none shows a known fault.</param>
    public sealed record Report(int Kernels, IReadOnlyList<Finding> Findings);

    readonly PtxCompiler compiler = new();

    // The instructions that betray a known fault, with what each means.
    static readonly (Regex Pattern, string Fault)[] Fingerprints =
    [
        (new(@"\bcopysign\.f(16|32|64)\b"), "copysign: ILGPU passes its operands swapped (the sign comes from the wrong one)"),
        (new(@"^\.extern\s+\.func"), "an external function ILGPU left unresolved: the module fails to load on a GPU"),
        (new(@"\bcvt\.rzi\.(s8|u8|s16|u16)\.f(32|64)\b"), "a saturating float-to-narrow-integer conversion (.NET truncates through int and wraps)"),
        (new(@"\bcvt\.rn\.f64\.u(32|64)\b"), "an unsigned integer converted to float through double (ILGPU issue 1309)"),
        (new(@"\b(min|max)\.f(32|64)\b"), "a floating-point min or max: PTX returns the other operand of a NaN, .NET returns NaN"),
    ];

    static readonly Regex FloatImmediate = new(@"\b0([fd])([0-9A-Fa-f]{8,16})\b", RegexOptions.Compiled);

    /// <summary>
    /// The kernels a class declares: public static methods whose first parameter is an <see cref="Index1D"/>
    /// (auto-grouped, as <see cref="Device.Launch{T1}"/> runs them).
    /// </summary>
    public static IReadOnlyList<MethodInfo> KernelsOf(Type type) =>
        type.GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Where(m => m.GetParameters().FirstOrDefault()?.ParameterType == typeof(Index1D))
            .ToList();

    /// <summary>The PTX of an auto-grouped kernel (first parameter <see cref="Index1D"/>).</summary>
    public string Compile(MethodInfo kernel) => compiler.Compile(kernel);

    /// <summary>The PTX of an explicitly grouped kernel (one that reads <c>Grid</c> and <c>Group</c> itself).</summary>
    public string CompileGrouped(MethodInfo kernel) => compiler.CompileGrouped(kernel);

    /// <summary>Every fingerprint in <paramref name="ptx"/>, the PTX of <paramref name="kernel"/>.</summary>
    public static IReadOnlyList<Finding> Scan(string kernel, string ptx)
    {
        var findings = new List<Finding>();
        foreach (var line in ptx.Split('\n').Select(l => l.Trim()))
        {
            if (line.StartsWith("//", StringComparison.Ordinal)) continue;
            foreach (var (pattern, fault) in Fingerprints)
                if (pattern.IsMatch(line)) findings.Add(new(kernel, fault, line));
            foreach (Match m in FloatImmediate.Matches(line))
                if (IsDenormal(m.Groups[1].Value == "d", m.Groups[2].Value))
                    findings.Add(new(kernel, "a denormal constant: a bool converted to float as its raw bit pattern (1.4e-45 for 1.0)", line));
        }
        return findings;
    }

    // PTX writes float immediates as 0f + 8 hex digits and doubles as 0d + 16; a zero exponent with a non-zero
    // fraction is a denormal, which no kernel of ours means to write.
    static bool IsDenormal(bool isDouble, string hex)
    {
        if (hex.Length != (isDouble ? 16 : 8)) return false;
        ulong bits = ulong.Parse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return isDouble
            ? (bits & 0x7FF0000000000000UL) == 0 && (bits & 0x000FFFFFFFFFFFFFUL) != 0
            : (bits & 0x7F800000UL) == 0 && (bits & 0x007FFFFFUL) != 0;
    }

    /// <summary>Compiles each kernel and scans its PTX; a kernel ILGPU cannot compile for CUDA is a finding too.</summary>
    public Report Audit(IReadOnlyCollection<MethodInfo> kernels) =>
        new(kernels.Count, kernels.SelectMany(k => Check(k.Name, () => Compile(k))).ToList());

    IReadOnlyList<Finding> Check(string kernel, Func<string> compile)
    {
        try
        {
            return Scan(kernel, compile());
        }
        catch (Exception e)
        {
            return [new(kernel, "ILGPU cannot compile it for CUDA: " + (e.InnerException ?? e).Message.Split('\n')[0], "")];
        }
    }

    /// <summary>Audits the kernels of a generated model or layer class, which the generator puts in its nested class <c>Kernels</c>.</summary>
    public Report AuditModel(Type model) =>
        Audit(KernelsOf(model.GetNestedType("Kernels") ?? throw new ArgumentException($"{model.Name} is not a generated model or layer (it has no Kernels class)", nameof(model))));

    /// <summary>
    /// Audits the kernels the runtime launches itself: the optimizer's, the device check's probes, the one that keeps an
    /// activation in bf16, the tiled GEMM's (float), the two that round a bf16 GEMM's inputs and the one that widens a
    /// kept bf16 copy for the tiled GEMM.
    /// </summary>
    public Report AuditRuntime()
    {
        var kernels = KernelsOf(typeof(AdamKernels)).Concat(KernelsOf(typeof(ProbeKernels))).Concat(KernelsOf(typeof(Bf16Copy))).ToList();
        var report = Audit(kernels);
        var grouped = new[] { IlgpuGemm.TiledKernelMethod<float>(), IlgpuGemm.RoundToBf16Method, IlgpuGemm.NarrowToBf16Method, IlgpuGemm.WidenBf16Method };
        return new(kernels.Count + grouped.Length, [.. report.Findings, .. grouped.SelectMany(k => Check(k.Name, () => CompileGrouped(k)))]);
    }

    /// <inheritdoc />
    public void Dispose() => compiler.Dispose();
}
