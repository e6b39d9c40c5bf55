using ILGPU;

namespace GateLoop.Runtime;

/// <summary>
/// Scalar math as the model kernels use it, one probe per operation, run on a device and compared with .NET
/// on the host by <see cref="DeviceCheck.Scalars"/>: the functions ILGPU maps to device intrinsics, the sign and
/// comparison selects, and the integer–float conversions.
/// </summary>
[HostTwins]
static partial class ProbeKernels
{
    /// <summary>
    /// The probes, in the order of <see cref="Scalar"/>'s cases: the value .NET computes (in double, from the same
    /// floats) and the tolerance, relative to max(|value|, 1). Exact operations must agree exactly; the device's
    /// exp and log are approximations within a few float ulps (1e-5 allows ~80), arithmetic within one rounding.
    /// </summary>
    public static readonly (string Name, Func<float, float, double> Host, double Tolerance)[] Probes =
    [
        ("exp(x)", (x, _) => Math.Exp(x), 1e-5),
        ("log(|x|)", (x, _) => Math.Log(Math.Abs(x)), 1e-5),
        ("sqrt(|x|)", (x, _) => Math.Sqrt(Math.Abs(x)), 1e-6),
        ("x / y", (x, y) => (double)x / y, 1e-6),
        ("|x|", (x, _) => Math.Abs(x), 0),
        ("max(x, y) (select)", (x, y) => x < y ? y : x, 0),
        ("min(x, y) (select)", (x, y) => y < x ? y : x, 0),
        ("floor(x)", (x, _) => Math.Floor(x), 0),
        ("sigmoid(x)", (x, _) => 1 / (1 + Math.Exp(-(double)x)), 1e-5),
        ("x with y's sign (select)", (x, y) => y < 0 ? -Math.Abs(x) : Math.Abs(x), 0),
        ("x < y ? 1 : 0 (float select)", (x, y) => x < y ? 1 : 0, 0),
        ("(float)(int)x", (x, _) => Math.Truncate(x), 0),
        ("(float)(long)(x·1e6)", (x, _) => (float)(long)(x * 1e6f), 0),
        ("x·y + x", (x, y) => (double)x * y + x, 1e-6),
    ];

    /// <summary>output[p·n + i] = probe p of (x[i], y[i]), for n inputs.</summary>
    public static void Scalar(Index1D index, ArrayView<float> x, ArrayView<float> y, ArrayView<float> output)
    {
        int n = (int)x.Length, p = index / n, i = index % n;
        float a = x[i], b = y[i];
        float r;
        switch (p)
        {
            case 0: r = MathF.Exp(a); break;
            case 1: r = MathF.Log(MathF.Abs(a)); break;
            case 2: r = MathF.Sqrt(MathF.Abs(a)); break;
            case 3: r = a / b; break;
            case 4: r = MathF.Abs(a); break;
            // Kernels select instead of calling Max and Min, whose PTX drops a NaN (GL0030).
            case 5: r = a < b ? b : a; break;
            case 6: r = b < a ? b : a; break;
            case 7: r = MathF.Floor(a); break;
            case 8: r = 1 / (1 + MathF.Exp(-a)); break;
            case 9: r = b < 0 ? -MathF.Abs(a) : MathF.Abs(a); break;
            case 10: r = a < b ? 1f : 0f; break;
            case 11: r = (int)a; break;
            case 12: r = (long)(a * 1e6f); break;
            default: r = a * b + a; break;
        }
        output[index] = r;
    }
}
