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
/// for alpha and beta, the math mode (TF32 or not), column-major s/dgemm, and cublasGemmEx for bf16 inputs.
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
    readonly delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, int, nint, int, int, float*, nint, int, int, int, int, int> gemmEx;
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
        // cublasStatus_t cublasGemmEx(handle, transa, transb, m, n, k, const void* alpha, const void* A, cudaDataType_t Atype,
        // int lda, const void* B, cudaDataType_t Btype, int ldb, const void* beta, void* C, cudaDataType_t Ctype, int ldc,
        // cublasComputeType_t computeType, cublasGemmAlgo_t algo): the enums are ints; alpha and beta are fp32 for CUBLAS_COMPUTE_32F.
        gemmEx = (delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, int, nint, int, int, float*, nint, int, int, int, int, int>)Export("cublasGemmEx");
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
        int opA = transA ? GemmExArguments.OpT : GemmExArguments.OpN, opB = transB ? GemmExArguments.OpT : GemmExArguments.OpN;
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

    /// <summary>
    /// cublasGemmEx with the arguments <paramref name="call"/> describes: <paramref name="a"/> and <paramref name="b"/>
    /// are cuBLAS's A and B (bf16), <paramref name="c"/> fp32, queued on the default stream.
    /// </summary>
    public void GemmEx(GemmExArguments call, float alpha, ArrayView<ushort> a, ArrayView<ushort> b, float beta, ArrayView<float> c)
    {
        accelerator.Bind();
        nint pa = a.LoadEffectiveAddressAsPtr(), pb = b.LoadEffectiveAddressAsPtr(), pc = c.LoadEffectiveAddressAsPtr();
        Check(gemmEx(handle, call.TransA, call.TransB, call.M, call.N, call.K, &alpha, pa, call.AType, call.Lda, pb, call.BType, call.Ldb,
            &beta, pc, call.CType, call.Ldc, call.ComputeType, call.Algo), "cublasGemmEx");
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

/// <summary>
/// The integer arguments of one <c>cublasGemmEx</c> call, as cuBLAS reads them (column-major): the operations, sizes,
/// data types, leading dimensions, compute type and algorithm. The values are those of CUDA's headers
/// (<c>cublas_api.h</c>, <c>library_types.h</c>).
/// </summary>
internal readonly record struct GemmExArguments(int TransA, int TransB, int M, int N, int K, int AType, int Lda, int BType, int Ldb,
    int CType, int Ldc, int ComputeType, int Algo)
{
    /// <summary>cublasOperation_t: CUBLAS_OP_N, CUBLAS_OP_T.</summary>
    public const int OpN = 0, OpT = 1;

    /// <summary>cudaDataType_t: CUDA_R_32F, CUDA_R_16BF.</summary>
    public const int Fp32 = 0, Bf16 = 14;

    /// <summary>cublasComputeType_t CUBLAS_COMPUTE_32F: fp32 products and sums, no down-conversion of the inputs.</summary>
    public const int Compute32F = 68;

    /// <summary>cublasGemmAlgo_t CUBLAS_GEMM_DEFAULT: cuBLAS's heuristic choice (tensor cores for bf16 on sm_80 and later).</summary>
    public const int GemmDefault = -1;

    /// <summary>
    /// The call for row-major C[m×n] = op(A)·op(B) (+ beta·C) from bf16 A and B into fp32 C. A row-major matrix is the
    /// column-major transpose with the same leading dimension, so cuBLAS computes Cᵀ = op(B)ᵀ·op(A)ᵀ: its A is our B, its
    /// B our A, m and n swap, and each keeps its own flag.
    /// </summary>
    public static GemmExArguments RowMajorBf16(bool transA, bool transB, int m, int n, int k, int lda, int ldb, int ldc) =>
        new(transB ? OpT : OpN, transA ? OpT : OpN, n, m, k, Bf16, ldb, Bf16, lda, Fp32, ldc, Compute32F, GemmDefault);
}
