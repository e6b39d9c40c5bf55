using System.Collections.Concurrent;
using System.Numerics;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

// ILGPU's CPU accelerator emits its kernel wrappers into a dynamic assembly named ILGPURuntime; they must
// see the internal kernel-argument struct below.
[assembly: InternalsVisibleTo("ILGPURuntime")]

namespace GateLoop.Runtime;

/// <summary>
/// Row-major GEMM on an ILGPU accelerator (cblas semantics with CblasRowMajor):
/// C[m×n] = alpha·op(A)·op(B) + beta·C. On CUDA it calls cuBLAS when the library loads; otherwise (and on
/// every other accelerator) it runs a shared-memory tiled kernel. Work is queued on the accelerator's default
/// stream, in order with other kernels launched there; the call does not wait for it to finish.
/// </summary>
/// <remarks>
/// With bf16 inputs a kernel first rounds A and B (their stored extent) into scratch buffers, in order on the same
/// stream: to 16-bit values for cuBLAS's <c>cublasGemmEx</c> (bf16 A and B, fp32 C, CUBLAS_COMPUTE_32F), or to fp32
/// values that bf16 represents for the tiled kernel, whose fp32 products of them are exact. Both roundings are
/// <see cref="Bf16.RoundBits"/>, the host's.
/// </remarks>
internal sealed class IlgpuGemm : IDisposable
{
    /// <summary>
    /// Largest edge of the square tile of C computed by one thread group (one thread per element). Groups of
    /// MaxTile² threads are too many for some accelerators (ILGPU's default CPU device allows 16), so the launch
    /// picks the edge and the kernel reads it back from Group.DimX; shared memory is sized for the maximum.
    /// </summary>
    const int MaxTile = 16;

    /// <summary>Shared tiles get one padding column so the transposed stores do not hit a single bank.</summary>
    const int TileStride = MaxTile + 1;

    /// <summary>Runs the tiled kernel (an explicitly grouped kernel) over a grid, in place of the accelerator's launcher.</summary>
    internal delegate void TiledLauncher(System.Reflection.MethodInfo kernel, KernelConfig config, object[] arguments);

    readonly Accelerator accelerator;
    readonly TiledLauncher? launcher;
    readonly int maxGroup;
    readonly ConcurrentDictionary<Type, Delegate> kernels = new();
    readonly ConcurrentDictionary<System.Reflection.MethodInfo, Delegate> roundings = new();
    // Rounded copies of A and B, grown to the largest extent asked for; reused call after call, since the stream runs
    // each rounding after the GEMM before it.
    readonly MemoryBuffer1D<float, Stride1D.Dense>?[] rounded = new MemoryBuffer1D<float, Stride1D.Dense>?[2];
    readonly MemoryBuffer1D<ushort, Stride1D.Dense>?[] narrowed = new MemoryBuffer1D<ushort, Stride1D.Dense>?[2];
    readonly Lock blasLock = new();
    CuBlasLibrary? blas;
    volatile bool blasTried;

    public IlgpuGemm(Accelerator accelerator)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        this.accelerator = accelerator;
        maxGroup = accelerator.MaxNumThreadsPerGroup;
    }

    /// <summary>
    /// A GEMM whose tiled kernel runs through <paramref name="launcher"/> (the PTX simulator) in groups of at most
    /// <paramref name="maxThreadsPerGroup"/>, on buffers of <paramref name="accelerator"/>.
    /// </summary>
    internal IlgpuGemm(Accelerator accelerator, int maxThreadsPerGroup, TiledLauncher launcher) : this(accelerator)
    {
        this.launcher = launcher;
        maxGroup = maxThreadsPerGroup;
        blasTried = true;
    }

    /// <summary>"cublas (library, version)" when cuBLAS serves this accelerator, else "ilgpu-tiled".</summary>
    public string Backend => Blas is { } b ? $"cublas ({b.Name}, version {b.Version})" : "ilgpu-tiled";

    /// <summary>Whether fp32 GEMMs may use TF32 tensor cores (cuBLAS only; the tiled kernel is always full fp32).</summary>
    public bool AllowTf32
    {
        get => allowTf32;
        set
        {
            allowTf32 = value;
            if (Blas is { } b) b.AllowTf32 = value;
        }
    }

    bool allowTf32;

    /// <summary>Why cuBLAS could not be used on a CUDA accelerator (null when it is used or not applicable).</summary>
    public string? CuBlasError { get; private set; }

    /// <summary>
    /// C = alpha·op(A)·op(B) + beta·C with row-major storage. op(A) is m×k: A is stored m×k (row stride lda), or
    /// k×m when <paramref name="transA"/>. op(B) is k×n: B is stored k×n (ldb), or n×k when
    /// <paramref name="transB"/>. beta = 0 overwrites C without reading it; k = 0 or alpha = 0 gives C = beta·C.
    /// With <paramref name="bf16Inputs"/> (float only), A and B are rounded to bf16 and the products summed in fp32. An
    /// operand kept in bf16 is read as its copy: as it is by cuBLAS's bf16 GEMM, widened to the fp32 values it stands
    /// for otherwise.
    /// </summary>
    /// <exception cref="NotSupportedException">T is neither float nor double, or bf16 inputs are asked of double.</exception>
    public void Multiply<T>(bool transA, bool transB, int m, int n, int k, T alpha, GemmInput<T> a, int lda,
        GemmInput<T> b, int ldb, T beta, ArrayView<T> c, int ldc, bool bf16Inputs = false) where T : unmanaged, INumber<T>
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double))
            throw new NotSupportedException($"IlgpuGemm supports float and double, not {typeof(T).FullName}.");
        if (bf16Inputs && typeof(T) != typeof(float))
            throw new NotSupportedException($"bf16 inputs are rounded from float, not {typeof(T).FullName}.");
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfLessThan(lda, Math.Max(1, transA ? m : k));
        ArgumentOutOfRangeException.ThrowIfLessThan(ldb, Math.Max(1, transB ? k : n));
        ArgumentOutOfRangeException.ThrowIfLessThan(ldc, Math.Max(1, n));
        if (m == 0 || n == 0) return;
        CheckExtent(c.Length, m, n, ldc, nameof(c));
        if (k > 0)
        {
            CheckExtent(a.KeptInBf16 ? a.Bf16.Length : a.Values.Length, transA ? k : m, transA ? m : k, lda, nameof(a));
            CheckExtent(b.KeptInBf16 ? b.Bf16.Length : b.Values.Length, transB ? n : k, transB ? k : n, ldb, nameof(b));
        }

        // alpha = 0 or k = 0 is just C = beta·C; the tiled kernel does that without reading A or B (BLAS
        // convention, so NaNs there cannot leak into C), which cuBLAS does not promise.
        bool reads = k > 0 && alpha != T.Zero;
        long extentA = (long)((transA ? k : m) - 1) * lda + (transA ? m : k), extentB = (long)((transB ? n : k) - 1) * ldb + (transB ? k : n);
        if (reads && Blas is { } cublas && bf16Inputs)
            // Row-major as column-major, as MultiplyCuBlas explains: cuBLAS's A is our B.
            cublas.GemmEx(GemmExArguments.RowMajorBf16(transA, transB, m, n, k, lda, ldb, ldc), float.CreateChecked(alpha),
                Narrowed(b, 1, extentB), Narrowed(a, 0, extentA), float.CreateChecked(beta), c.Cast<float>());
        else if (reads && Blas is { } fp32)
            MultiplyCuBlas(fp32, transA, transB, m, n, k, alpha, Wide(a, 0, extentA, false), lda, Wide(b, 1, extentB, false), ldb, beta, c, ldc);
        else if (reads)
            MultiplyTiled(transA, transB, m, n, k, alpha, Wide(a, 0, extentA, bf16Inputs), lda, Wide(b, 1, extentB, bf16Inputs), ldb, beta, c, ldc);
        else
            MultiplyTiled(transA, transB, m, n, k, alpha, a.Values, lda, b.Values, ldb, beta, c, ldc);
    }

    // Operand i as bf16 for cuBLAS: its kept copy, else its values rounded into scratch.
    ArrayView<ushort> Narrowed<T>(GemmInput<T> x, int i, long extent) where T : unmanaged =>
        x.KeptInBf16 ? x.Bf16 : RoundedCopy(ref narrowed[i], NarrowToBf16, x.Values.Cast<float>(), extent);

    // Operand i as fp32: its kept copy widened, else its values, rounded into scratch when asked.
    ArrayView<T> Wide<T>(GemmInput<T> x, int i, long extent, bool round) where T : unmanaged =>
        x.KeptInBf16 ? RoundedCopy(ref rounded[i], WidenBf16, x.Bf16, extent).Cast<T>()
        : round ? RoundedCopy(ref rounded[i], RoundToBf16, x.Values.Cast<float>(), extent).Cast<T>()
        : x.Values;

    /// <summary>
    /// The first <paramref name="extent"/> elements of <paramref name="source"/> converted by <paramref name="kernel"/>
    /// (one thread per element: rounded to bf16, or a bf16 copy widened) into <paramref name="scratch"/>, queued on the stream.
    /// </summary>
    ArrayView<TOut> RoundedCopy<TIn, TOut>(ref MemoryBuffer1D<TOut, Stride1D.Dense>? scratch, Action<ArrayView<TIn>, ArrayView<TOut>> kernel,
        ArrayView<TIn> source, long extent) where TIn : unmanaged where TOut : unmanaged
    {
        if (extent > int.MaxValue) throw new NotSupportedException($"a bf16 GEMM operand of {extent:N0} elements is more than one rounding launch indexes");
        int group = Math.Min(256, maxGroup);
        var config = new KernelConfig(new Index1D((int)((extent + group - 1) / group)), new Index1D(group));
        ArrayView<TIn> from = source.SubView(0, extent);
        ArrayView<TOut> to = Grow(ref scratch, extent).View.SubView(0, extent);
        if (launcher is not null) launcher(kernel.Method, config, [from, to]);
        else ((Action<KernelConfig, ArrayView<TIn>, ArrayView<TOut>>)roundings.GetOrAdd(kernel.Method, _ => accelerator.LoadStreamKernel(kernel)))(config, from, to);
        return to;
    }

    MemoryBuffer1D<TE, Stride1D.Dense> Grow<TE>(ref MemoryBuffer1D<TE, Stride1D.Dense>? buffer, long extent) where TE : unmanaged
    {
        if (buffer is not null && buffer.Length >= extent) return buffer;
        // A GEMM queued earlier may still read the old buffer.
        accelerator.Synchronize();
        buffer?.Dispose();
        return buffer = accelerator.Allocate1D<TE>(extent);
    }

    /// <summary>The rounding kernels (fp32 out, then bf16 out), for the PTX audit and the simulator's tests.</summary>
    internal static System.Reflection.MethodInfo RoundToBf16Method => new Action<ArrayView<float>, ArrayView<float>>(RoundToBf16).Method;

    /// <inheritdoc cref="RoundToBf16Method"/>
    internal static System.Reflection.MethodInfo NarrowToBf16Method => new Action<ArrayView<float>, ArrayView<ushort>>(NarrowToBf16).Method;

    /// <summary>The kernel that widens a kept bf16 copy for the tiled kernel, for the simulator's tests.</summary>
    internal static System.Reflection.MethodInfo WidenBf16Method => new Action<ArrayView<ushort>, ArrayView<float>>(WidenBf16).Method;

    /// <summary>dst[i] = src[i] rounded to bf16, as an fp32 (one thread per element).</summary>
    static void RoundToBf16(ArrayView<float> src, ArrayView<float> dst)
    {
        int i = Grid.GlobalIndex.X;
        if (i < src.IntLength) dst[i] = Interop.IntAsFloat(Bf16.RoundBits(Interop.FloatAsInt(src[i])));
    }

    /// <summary>dst[i] = src[i] rounded to bf16, its 16 bits (one thread per element).</summary>
    static void NarrowToBf16(ArrayView<float> src, ArrayView<ushort> dst)
    {
        int i = Grid.GlobalIndex.X;
        if (i < src.IntLength) dst[i] = (ushort)(Bf16.RoundBits(Interop.FloatAsInt(src[i])) >> 16);
    }

    /// <summary>dst[i] = the fp32 the bf16 src[i] stands for (one thread per element).</summary>
    static void WidenBf16(ArrayView<ushort> src, ArrayView<float> dst)
    {
        int i = Grid.GlobalIndex.X;
        if (i < src.IntLength) dst[i] = Interop.IntAsFloat((uint)src[i] << 16);
    }

    static void CheckExtent(long length, int rows, int cols, int ld, string name)
    {
        if (length < (long)(rows - 1) * ld + cols)
            throw new ArgumentException($"View holds {length} elements; a {rows}×{cols} matrix with stride {ld} needs {(long)(rows - 1) * ld + cols}.", name);
    }

    /// <summary>Created on first use; a failure (no libcublas, driver error…) is remembered and the tiled kernel used.</summary>
    CuBlasLibrary? Blas
    {
        get
        {
            if (blasTried) return blas;
            lock (blasLock)
            {
                if (!blasTried && accelerator is CudaAccelerator cuda)
                {
                    try
                    {
                        blas = CuBlasLibrary.TryCreate(cuda, out var error);
                        CuBlasError = error;
                        if (blas is not null && allowTf32) blas.AllowTf32 = true;
                    }
                    catch (Exception e) // a driver error while creating the handle
                    {
                        CuBlasError = $"{e.GetType().Name}: {e.Message}";
                    }
                }
                blasTried = true;
                return blas;
            }
        }
    }

    /// <summary>
    /// cuBLAS is column-major. A row-major matrix with stride ld is the column-major transpose with the same ld,
    /// so C = op(A)·op(B) is computed as Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands and m with n, keep the flags.
    /// </summary>
    static void MultiplyCuBlas<T>(CuBlasLibrary blas, bool transA, bool transB, int m, int n, int k, T alpha,
        ArrayView<T> a, int lda, ArrayView<T> b, int ldb, T beta, ArrayView<T> c, int ldc)
        where T : unmanaged, INumber<T> =>
        blas.Gemm(transB, transA, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc);

    void MultiplyTiled<T>(bool transA, bool transB, int m, int n, int k, T alpha, ArrayView<T> a, int lda,
        ArrayView<T> b, int ldb, T beta, ArrayView<T> c, int ldc) where T : unmanaged, INumber<T>
    {
        var args = new TiledArgs<T>
        {
            M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc,
            TransA = transA ? 1 : 0, TransB = transB ? 1 : 0,
            // alpha = 0 must not read A or B (a NaN there would poison C): run the loop zero times.
            KEffective = alpha == T.Zero ? 0 : k,
            BetaIsZero = beta == T.Zero ? 1 : 0,
            Alpha = alpha, Beta = beta,
        };
        // Kernel parameters must be valid views even when unused (k = 0 may come with empty A and B).
        if (a.Length == 0) a = c;
        if (b.Length == 0) b = c;
        int tile = MaxTile;
        while (tile > 1 && tile * tile > maxGroup) tile /= 2;
        var config = new KernelConfig(new Index2D((n + tile - 1) / tile, (m + tile - 1) / tile), new Index2D(tile, tile));
        if (launcher is not null)
        {
            launcher(TiledKernelMethod<T>(), config, [a, b, c, args]);
            return;
        }
        var kernel = (Action<KernelConfig, ArrayView<T>, ArrayView<T>, ArrayView<T>, TiledArgs<T>>)kernels.GetOrAdd(
            typeof(T), _ => accelerator.LoadStreamKernel<ArrayView<T>, ArrayView<T>, ArrayView<T>, TiledArgs<T>>(TiledKernel));
        kernel(config, a, b, c, args);
    }

    /// <summary>The tiled kernel for elements of <typeparamref name="T"/>, for the PTX audit.</summary>
    internal static System.Reflection.MethodInfo TiledKernelMethod<T>() where T : unmanaged, INumber<T> =>
        new Action<ArrayView<T>, ArrayView<T>, ArrayView<T>, TiledArgs<T>>(TiledKernel).Method;

    /// <summary>Scalars of one tiled launch. Flags are ints: bools in kernel structs are not portable across backends.</summary>
    internal struct TiledArgs<T> where T : unmanaged
    {
        public int M, N, K, KEffective, Lda, Ldb, Ldc, TransA, TransB, BetaIsZero;
        public T Alpha, Beta;
    }

    /// <summary>
    /// One group computes a tile×tile block of C (thread x → column, y → row). Each step stages a tile-deep
    /// slice of op(A) and op(B) in shared memory; the thread roles in the global loads follow the storage
    /// order so neighbouring threads read neighbouring addresses for every transpose combination.
    /// </summary>
    static void TiledKernel<T>(ArrayView<T> a, ArrayView<T> b, ArrayView<T> c, TiledArgs<T> p)
        where T : unmanaged, INumber<T>
    {
        var tileA = SharedMemory.Allocate<T>(MaxTile * TileStride); // [row][kk] of op(A)
        var tileB = SharedMemory.Allocate<T>(MaxTile * TileStride); // [kk][col] of op(B)
        int tile = Group.DimX, tx = Group.IdxX, ty = Group.IdxY;
        int row0 = Grid.IdxY * tile, col0 = Grid.IdxX * tile;

        T sum = T.Zero;
        for (int t = 0; t < p.KEffective; t += tile)
        {
            // op(A)(r, kk): A[r, kk] at r*lda + kk, or A stored k×m at kk*lda + r.
            int ar = p.TransA == 0 ? ty : tx, ak = p.TransA == 0 ? tx : ty;
            int gr = row0 + ar, gk = t + ak;
            long ai = p.TransA == 0 ? (long)gr * p.Lda + gk : (long)gk * p.Lda + gr;
            tileA[ar * TileStride + ak] = gr < p.M && gk < p.K ? a[ai] : T.Zero;

            // op(B)(kk, j): B[kk, j] at kk*ldb + j, or B stored n×k at j*ldb + kk.
            int bk = p.TransB == 0 ? ty : tx, bj = p.TransB == 0 ? tx : ty;
            int hk = t + bk, gj = col0 + bj;
            long bi = p.TransB == 0 ? (long)hk * p.Ldb + gj : (long)gj * p.Ldb + hk;
            tileB[bk * TileStride + bj] = hk < p.K && gj < p.N ? b[bi] : T.Zero;

            Group.Barrier();
            for (int kk = 0; kk < tile; kk++)
                sum += tileA[ty * TileStride + kk] * tileB[kk * TileStride + tx];
            Group.Barrier();
        }

        int row = row0 + ty, col = col0 + tx;
        if (row < p.M && col < p.N)
        {
            long ci = (long)row * p.Ldc + col;
            T result = p.Alpha * sum;
            if (p.BetaIsZero == 0) result += p.Beta * c[ci];
            c[ci] = result;
        }
    }

    public void Dispose()
    {
        foreach (var buffer in rounded) buffer?.Dispose();
        foreach (var buffer in narrowed) buffer?.Dispose();
        lock (blasLock)
        {
            blas?.Dispose();
            blas = null;
            blasTried = true;
        }
    }
}
