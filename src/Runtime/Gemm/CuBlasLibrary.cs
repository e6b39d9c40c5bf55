using System.Numerics;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GateLoop.Runtime;

/// <summary>
/// cuBLAS through function pointers into whichever libcublas the machine has: CUDA 13, 12 or 11. (ILGPU.Algorithms'
/// binding looks for version 12 at most, and CUDA 13 ships libcublas.so.13.) Only what the GEMM needs: a handle
/// on the accelerator's context and default stream (so GEMMs queue in order with the kernels), host pointer mode
/// for alpha and beta, the math mode (TF32 or not) and column-major s/dgemm.
/// </summary>
internal sealed unsafe class CuBlasLibrary : IDisposable
{
    static readonly string[] Names = OperatingSystem.IsWindows()
        ? ["cublas64_13.dll", "cublas64_12.dll", "cublas64_11.dll"]
        : ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"];

    // The loader's search path first, then the toolkit's own folders, which are often not on it.
    static IEnumerable<string> Candidates()
    {
        var roots = new[] { Environment.GetEnvironmentVariable("CUDA_HOME"), Environment.GetEnvironmentVariable("CUDA_PATH"), "/usr/local/cuda" }
            .Concat(Directory.Exists("/usr/local") ? Directory.GetDirectories("/usr/local", "cuda-*").OrderDescending() : [])
            .Where(root => !string.IsNullOrEmpty(root))
            .SelectMany(root => new[] { Path.Combine(root!, "lib64"), Path.Combine(root!, "targets", "x86_64-linux", "lib"), Path.Combine(root!, "bin") })
            .Where(Directory.Exists)
            .Distinct();
        return Names.Concat(roots.SelectMany(folder => Names.Select(name => Path.Combine(folder, name))).Where(File.Exists));
    }

    // cublasMath_t: full fp32 (no tensor-core rounding) or TF32 tensor cores for fp32 GEMMs.
    const int DefaultMath = 0, Tf32TensorOpMath = 3;

    readonly CudaAccelerator accelerator;
    readonly nint library;
    nint handle;
    readonly delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int> sgemm;
    readonly delegate* unmanaged<nint, int, int, int, int, int, double*, nint, int, nint, int, double*, nint, int, int> dgemm;
    readonly delegate* unmanaged<nint, int, int> setMathMode;
    readonly delegate* unmanaged<nint, int> destroy;

    CuBlasLibrary(CudaAccelerator accelerator, nint library, string name)
    {
        this.accelerator = accelerator;
        this.library = library;
        Name = name;
        var create = (delegate* unmanaged<nint*, int>)Export("cublasCreate_v2");
        var version = (delegate* unmanaged<nint, int*, int>)Export("cublasGetVersion_v2");
        var setStream = (delegate* unmanaged<nint, nint, int>)Export("cublasSetStream_v2");
        var setPointerMode = (delegate* unmanaged<nint, int, int>)Export("cublasSetPointerMode_v2");
        sgemm = (delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int>)Export("cublasSgemm_v2");
        dgemm = (delegate* unmanaged<nint, int, int, int, int, int, double*, nint, int, nint, int, double*, nint, int, int>)Export("cublasDgemm_v2");
        setMathMode = (delegate* unmanaged<nint, int, int>)Export("cublasSetMathMode");
        destroy = (delegate* unmanaged<nint, int>)Export("cublasDestroy_v2");

        // The handle belongs to the CUDA context current on this thread: ILGPU's, once bound.
        accelerator.Bind();
        nint h;
        Check(create(&h), "cublasCreate_v2");
        handle = h;
        int v;
        Check(version(handle, &v), "cublasGetVersion_v2");
        Version = v;
        Check(setStream(handle, ((CudaStream)accelerator.DefaultStream).StreamPtr), "cublasSetStream_v2");
        Check(setPointerMode(handle, 0), "cublasSetPointerMode_v2"); // CUBLAS_POINTER_MODE_HOST
        Check(setMathMode(handle, DefaultMath), "cublasSetMathMode");
    }

    /// <summary>The library file that was loaded.</summary>
    public string Name { get; }

    /// <summary>cuBLAS's version number (e.g. 130000).</summary>
    public int Version { get; }

    /// <summary>Loads cuBLAS for <paramref name="accelerator"/>; null, with the reason, when no usable library is found.</summary>
    public static CuBlasLibrary? TryCreate(CudaAccelerator accelerator, out string? error)
    {
        var tried = new List<string>();
        foreach (var name in Candidates())
        {
            if (!NativeLibrary.TryLoad(name, out var library))
            {
                tried.Add(name);
                continue;
            }
            try
            {
                error = null;
                return new CuBlasLibrary(accelerator, library, name);
            }
            catch (Exception e) when (e is EntryPointNotFoundException or CuBlasFailure)
            {
                NativeLibrary.Free(library);
                tried.Add($"{name} ({e.Message})");
            }
        }
        error = $"no usable cuBLAS: tried {string.Join(", ", tried)}";
        return null;
    }

    /// <summary>Whether fp32 GEMMs may use TF32 tensor cores (10-bit mantissa products, fp32 accumulation).</summary>
    public bool AllowTf32
    {
        set
        {
            accelerator.Bind();
            Check(setMathMode(handle, value ? Tf32TensorOpMath : DefaultMath), "cublasSetMathMode");
        }
    }

    /// <summary>Column-major C = alpha·op(A)·op(B) + beta·C (cuBLAS's own convention), queued on the default stream.</summary>
    public void Gemm<T>(bool transA, bool transB, int m, int n, int k, T alpha, ArrayView<T> a, int lda,
        ArrayView<T> b, int ldb, T beta, ArrayView<T> c, int ldc) where T : unmanaged, INumber<T>
    {
        accelerator.Bind();
        int opA = transA ? 1 : 0, opB = transB ? 1 : 0; // CUBLAS_OP_N, CUBLAS_OP_T
        nint pa = a.LoadEffectiveAddressAsPtr(), pb = b.LoadEffectiveAddressAsPtr(), pc = c.LoadEffectiveAddressAsPtr();
        if (typeof(T) == typeof(float))
        {
            float fa = float.CreateChecked(alpha), fb = float.CreateChecked(beta);
            Check(sgemm(handle, opA, opB, m, n, k, &fa, pa, lda, pb, ldb, &fb, pc, ldc), "cublasSgemm_v2");
        }
        else
        {
            double da = double.CreateChecked(alpha), db = double.CreateChecked(beta);
            Check(dgemm(handle, opA, opB, m, n, k, &da, pa, lda, pb, ldb, &db, pc, ldc), "cublasDgemm_v2");
        }
    }

    nint Export(string name) => NativeLibrary.GetExport(library, name);

    static void Check(int status, string call)
    {
        if (status != 0) throw new CuBlasFailure($"{call} failed with cublasStatus_t {status}");
    }

    public void Dispose()
    {
        if (handle != 0)
        {
            accelerator.Bind();
            destroy(handle);
            handle = 0;
        }
        NativeLibrary.Free(library);
    }

    /// <summary>A cuBLAS call returned an error status.</summary>
    internal sealed class CuBlasFailure(string message) : Exception(message);
}
