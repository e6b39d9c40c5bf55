using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GateLoop.Runtime;

/// <summary>
/// Row-major GEMM on the host (cblas semantics with CblasRowMajor): C[m×n] = alpha·op(A)·op(B) + beta·C.
/// </summary>
/// <remarks>
/// GotoBLAS/BLIS structure. op(B) is packed once per call into NR-wide column panels (k-major inside each
/// KC block), so the micro-kernel reads B contiguously whatever transB is. Work items are blocks of rows of C
/// (and, when m is small, groups of column panels); each item packs its rows of alpha·op(A) into MR-tall
/// row panels per KC block and runs the MR×NR micro-kernel with an A panel (MR×KC, L1-resident) against
/// the B panels of an NC-wide chunk (KC×NC, L2-resident). Packing pads edges with zeros; edge tiles of C go
/// through a small scratch tile so the kernel never needs masks.
/// </remarks>
internal static unsafe class HostGemm
{
    /// <summary>Rows of the register tile: 6 rows × 2 vectors = 12 accumulators fits 16 and 32 register files.</summary>
    const int MR = 6;

    /// <summary>
    /// Depth KC of a packed block, in bytes: 512 floats or 256 doubles. An A panel (MR×KC, 12 KiB) stays in L1,
    /// and C is read and written once per block (512 floats measured a few % faster than 256).
    /// </summary>
    const int KcBytes = 2048;

    /// <summary>Bytes of a packed B chunk (KC×NC) meant to stay in L2 while an item's A panels sweep it.</summary>
    const int BChunkBytes = 512 * 1024;

    /// <summary>Below this many multiply-adds the fork/join cost of Parallel.For outweighs a second core.</summary>
    const long ParallelThreshold = 1L << 21;

    /// <summary>Work items per worker: enough to even out ragged blocks, few enough to keep packing amortized.</summary>
    const int ItemsPerWorker = 4;

    /// <summary>
    /// C = alpha·op(A)·op(B) + beta·C over packed views (leading dimension = stored columns), read as host memory; with
    /// <paramref name="bf16Inputs"/>, from A and B rounded to bf16 (see the pointer overload). An operand kept in bf16
    /// is read as the fp32 values its copy stands for, which rounding to bf16 leaves as they are.
    /// </summary>
    public static void Multiply<T>(bool transA, bool transB, int m, int n, int k, T alpha, GemmInput<T> a,
        GemmInput<T> b, T beta, ILGPU.ArrayView<T> c, bool bf16Inputs = false) where T : unmanaged, INumber<T>
    {
        float[]? wideA = Widened(a), wideB = Widened(b);
        try
        {
            fixed (float* pa = wideA, pb = wideB)
                Multiply(transA, transB, m, n, k, alpha, pa is null ? Pointer(a.Values) : (T*)pa, transA ? m : k,
                    pb is null ? Pointer(b.Values) : (T*)pb, transB ? k : n, beta, Pointer(c), n, bf16Inputs);
        }
        finally
        {
            if (wideA is not null) System.Buffers.ArrayPool<float>.Shared.Return(wideA);
            if (wideB is not null) System.Buffers.ArrayPool<float>.Shared.Return(wideB);
        }
    }

    static T* Pointer<T>(ILGPU.ArrayView<T> view) where T : unmanaged => (T*)ILGPU.Runtime.ArrayViewExtensions.LoadEffectiveAddressAsPtr(view);

    // The fp32 values of an operand's bf16 copy (only floats are kept in bf16), in a pooled array; null when it has none.
    static float[]? Widened<T>(GemmInput<T> x) where T : unmanaged
    {
        if (!x.KeptInBf16) return null;
        var wide = System.Buffers.ArrayPool<float>.Shared.Rent(checked((int)x.Bf16.Length));
        ushort* bits = Pointer(x.Bf16);
        for (int i = 0; i < x.Bf16.Length; i++) wide[i] = Bf16.ToSingle(bits[i]);
        return wide;
    }

    /// <summary>
    /// C = alpha·op(A)·op(B) + beta·C with row-major storage. op(A) is m×k: A is stored m×k (row stride lda), or
    /// k×m when <paramref name="transA"/>. op(B) is k×n: B is stored k×n (ldb), or n×k when
    /// <paramref name="transB"/>. beta = 0 overwrites C without reading it; k = 0 or alpha = 0 gives C = beta·C.
    /// With <paramref name="bf16Inputs"/> (float only) every element of A and B is rounded to bf16 as it is packed,
    /// and the products and sums stay fp32: a product of two bf16 values is exact in fp32, so this is what a GPU's
    /// bf16 GEMM with fp32 accumulation computes, up to the order of the sums (alpha scales the rounded A).
    /// </summary>
    /// <exception cref="NotSupportedException">T is neither float nor double, or bf16 inputs are asked of double.</exception>
    public static void Multiply<T>(bool transA, bool transB, int m, int n, int k, T alpha, T* a, int lda, T* b,
        int ldb, T beta, T* c, int ldc, bool bf16Inputs = false) where T : unmanaged, INumber<T>
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double))
            throw new NotSupportedException($"HostGemm supports float and double, not {typeof(T).FullName}.");
        if (bf16Inputs && typeof(T) != typeof(float))
            throw new NotSupportedException($"bf16 inputs are rounded from float, not {typeof(T).FullName}.");
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == T.Zero)
        {
            // BLAS convention: A and B are not read, so NaNs in them do not leak into C.
            ScaleC(m, n, beta, c, ldc);
            return;
        }

        // One row of A (a generation step) is a matrix-vector product: packing B would cost more than the product.
        // (bf16 inputs are rounded as they are packed, so they take the packed path at any m.)
        if (m == 1 && !transA && !bf16Inputs)
        {
            RowTimesMatrix(transB, n, k, alpha, a, b, ldb, beta, c);
            return;
        }

        // The widest vector the hardware runs natively; the kernel code is shared through ISimd.
        var job = new Job<T>(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        if (bf16Inputs) Run<T, Bf16Inputs<T>>(job);
        else Run<T, StoredInputs<T>>(job);
    }

    static void Run<T, TR>(Job<T> job) where T : unmanaged, INumber<T> where TR : struct, IGemmInputs<T>
    {
        switch (HostTier.Current)
        {
            case SimdTier.Avx512: Run<T, Vector512<T>, Simd512<T>, TR>(job); break;
            case SimdTier.Avx2: Run<T, Vector256<T>, Simd256<T>, TR>(job); break;
            default: Run<T, Vector128<T>, Simd128<T>, TR>(job); break;
        }
    }

    /// <summary>How packing reads an element of A or B: as stored, or rounded to bf16. A type parameter, so each is its own loop.</summary>
    interface IGemmInputs<T> where T : unmanaged
    {
        /// <summary>Whether <see cref="Read"/> changes values (the vector copy of B is then not taken).</summary>
        static abstract bool Rounds { get; }

        static abstract T Read(T value);
    }

    readonly struct StoredInputs<T> : IGemmInputs<T> where T : unmanaged
    {
        public static bool Rounds => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Read(T value) => value;
    }

    readonly struct Bf16Inputs<T> : IGemmInputs<T> where T : unmanaged
    {
        public static bool Rounds => true;

        // T is float here (Multiply refuses the others).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static T Read(T value)
        {
            float rounded = Bf16.Round(Unsafe.As<T, float>(ref value));
            return Unsafe.As<float, T>(ref rounded);
        }
    }

    /// <summary>c = alpha·a·op(B) + beta·c for one row a: dot products with B's rows (transB) or a sum of B's rows.</summary>
    /// <summary>
    /// Below this many multiply-adds a matrix–vector product stays on one core: it streams the matrix once, so
    /// a second core pays off as soon as the matrix outgrows the cache (about 1 MB of floats) and adds bandwidth.
    /// </summary>
    const long GemvParallelThreshold = 1L << 18;

    // y = alpha·x·op(B) + beta·y for one row x: output columns split between the cores when B is large.
    static void RowTimesMatrix<T>(bool transB, int n, int k, T alpha, T* a, T* b, int ldb, T beta, T* c)
        where T : unmanaged, INumber<T>
    {
        int parts = (long)n * k < GemvParallelThreshold ? 1 : Math.Min(n, Environment.ProcessorCount * 2);
        if (parts == 1)
        {
            RowTimesColumns(transB, 0, n, k, alpha, a, b, ldb, beta, c);
            return;
        }
        Parallel.For(0, parts, part =>
            RowTimesColumns(transB, (int)((long)n * part / parts), (int)((long)n * (part + 1) / parts), k, alpha, a, b, ldb, beta, c));
    }

    // Columns j0…j1−1 of y = alpha·x·op(B) + beta·y.
    static void RowTimesColumns<T>(bool transB, int j0, int j1, int k, T alpha, T* a, T* b, int ldb, T beta, T* c)
        where T : unmanaged, INumber<T>
    {
        var x = new ReadOnlySpan<T>(a, k);
        var y = new Span<T>(c + j0, j1 - j0);
        if (transB)
        {
            for (int j = j0; j < j1; j++)
            {
                T dot = System.Numerics.Tensors.TensorPrimitives.Dot(x, new ReadOnlySpan<T>(b + (long)j * ldb, k));
                y[j - j0] = alpha * dot + (beta == T.Zero ? T.Zero : beta * y[j - j0]);
            }
            return;
        }
        if (beta == T.Zero) y.Clear();
        else if (beta != T.One) System.Numerics.Tensors.TensorPrimitives.Multiply(y, beta, y);
        for (int p = 0; p < k; p++)
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(new ReadOnlySpan<T>(b + (long)p * ldb + j0, j1 - j0), alpha * x[p], y, y);
    }

    /// <summary>
    /// c[m×n] = a[m×k]·bᵀ + beta·c, b stored n×k (a Linear's weight), in register tiles over blocks of b's rows: every
    /// element is computed by the same sequence of operations whatever m and its place in a tile, so a row's result does
    /// not depend on the rows beside it (bit for bit), and b is read from memory once for all the rows.
    /// </summary>
    public static void RowsTimesTransposed<T>(int m, int n, int k, T* a, T* b, T beta, T* c) where T : unmanaged, INumber<T>
    {
        if (m == 0 || n == 0) return;
        int parts = (long)m * n * k < GemvParallelThreshold ? 1 : Math.Min(n, Environment.ProcessorCount * 2);
        if (parts == 1)
        {
            RowsTimesRows(m, 0, n, k, a, b, beta, c, n);
            return;
        }
        Parallel.For(0, parts, part =>
            RowsTimesRows(m, (int)((long)n * part / parts), (int)((long)n * (part + 1) / parts), k, a, b, beta, c, n));
    }

    /// <summary>Rows of b a block of <see cref="RowsTimesRows{T}"/> takes: 16 rows of 512 floats are 32 KiB.</summary>
    const int RowBlock = 16;

    // Columns j0…j1−1 of the m rows of c = a·bᵀ + beta·c (c's rows ldc apart), in the widest vectors the CPU runs.
    static void RowsTimesRows<T>(int m, int j0, int j1, int k, T* a, T* b, T beta, T* c, int ldc)
        where T : unmanaged, INumber<T>
    {
        switch (HostTier.Current)
        {
            case SimdTier.Avx512: RowsTimesRows<T, Vector512<T>, Simd512<T>>(m, j0, j1, k, a, b, beta, c, ldc); break;
            case SimdTier.Avx2: RowsTimesRows<T, Vector256<T>, Simd256<T>>(m, j0, j1, k, a, b, beta, c, ldc); break;
            default: RowsTimesRows<T, Vector128<T>, Simd128<T>>(m, j0, j1, k, a, b, beta, c, ldc); break;
        }
    }

    // Tiles of 4 rows of a × 4 rows of b (1 × 8 or 1 × 4 for the last rows of a, single dot products for the last of b) over a
    // block of b's rows. Every element, whatever tile computes it, is the same sequence: vector lanes multiply-added
    // over k, the lanes summed in one order, the tail added. So a row's result does not depend on m.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RowsTimesRows<T, TV, TS>(int m, int j0, int j1, int k, T* a, T* b, T beta, T* c, int ldc)
        where T : unmanaged, INumber<T> where TV : struct where TS : struct, ISimd<T, TV>
    {
        for (int block = j0; block < j1; block += RowBlock)
        {
            int end = Math.Min(block + RowBlock, j1);
            for (int i = 0; i < m; i += 4)
            {
                int rows = Math.Min(4, m - i);
                int j = block;
                if (rows < 4)
                    for (; j + 8 <= end; j += 8)
                        for (int r = 0; r < rows; r++)
                            Tile1x8<T, TV, TS>(k, a + (long)(i + r) * k, b + (long)j * k, beta, c + (long)(i + r) * ldc + j);
                for (; j + 4 <= end; j += 4)
                {
                    if (rows == 4) Tile4x4<T, TV, TS>(k, a + (long)i * k, b + (long)j * k, beta, c + (long)i * ldc + j, ldc);
                    else
                        for (int r = 0; r < rows; r++)
                            Tile1x4<T, TV, TS>(k, a + (long)(i + r) * k, b + (long)j * k, beta, c + (long)(i + r) * ldc + j);
                }
                for (; j < end; j++)
                    for (int r = 0; r < rows; r++)
                    {
                        T* x = a + (long)(i + r) * k, w = b + (long)j * k;
                        TV acc = TS.Zero;
                        int p = 0;
                        for (; p + TS.Count <= k; p += TS.Count) acc = TS.MulAdd(TS.Load(x + p), TS.Load(w + p), acc);
                        Put<T, TV, TS>(acc, x, w, p, k, beta, c + (long)(i + r) * ldc + j);
                    }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile4x4<T, TV, TS>(int k, T* x, T* w, T beta, T* c, int ldc)
        where T : unmanaged, INumber<T> where TV : struct where TS : struct, ISimd<T, TV>
    {
        T* x1 = x + k, x2 = x + 2 * k, x3 = x + 3 * k, w1 = w + k, w2 = w + 2 * k, w3 = w + 3 * k;
        TV c00 = TS.Zero, c01 = TS.Zero, c02 = TS.Zero, c03 = TS.Zero, c10 = TS.Zero, c11 = TS.Zero, c12 = TS.Zero, c13 = TS.Zero;
        TV c20 = TS.Zero, c21 = TS.Zero, c22 = TS.Zero, c23 = TS.Zero, c30 = TS.Zero, c31 = TS.Zero, c32 = TS.Zero, c33 = TS.Zero;
        int p = 0;
        for (; p + TS.Count <= k; p += TS.Count)
        {
            TV b0 = TS.Load(w + p), b1 = TS.Load(w1 + p), b2 = TS.Load(w2 + p), b3 = TS.Load(w3 + p);
            TV a0 = TS.Load(x + p);
            c00 = TS.MulAdd(a0, b0, c00); c01 = TS.MulAdd(a0, b1, c01); c02 = TS.MulAdd(a0, b2, c02); c03 = TS.MulAdd(a0, b3, c03);
            a0 = TS.Load(x1 + p);
            c10 = TS.MulAdd(a0, b0, c10); c11 = TS.MulAdd(a0, b1, c11); c12 = TS.MulAdd(a0, b2, c12); c13 = TS.MulAdd(a0, b3, c13);
            a0 = TS.Load(x2 + p);
            c20 = TS.MulAdd(a0, b0, c20); c21 = TS.MulAdd(a0, b1, c21); c22 = TS.MulAdd(a0, b2, c22); c23 = TS.MulAdd(a0, b3, c23);
            a0 = TS.Load(x3 + p);
            c30 = TS.MulAdd(a0, b0, c30); c31 = TS.MulAdd(a0, b1, c31); c32 = TS.MulAdd(a0, b2, c32); c33 = TS.MulAdd(a0, b3, c33);
        }
        Put<T, TV, TS>(c00, x, w, p, k, beta, c); Put<T, TV, TS>(c01, x, w1, p, k, beta, c + 1); Put<T, TV, TS>(c02, x, w2, p, k, beta, c + 2); Put<T, TV, TS>(c03, x, w3, p, k, beta, c + 3);
        c += ldc;
        Put<T, TV, TS>(c10, x1, w, p, k, beta, c); Put<T, TV, TS>(c11, x1, w1, p, k, beta, c + 1); Put<T, TV, TS>(c12, x1, w2, p, k, beta, c + 2); Put<T, TV, TS>(c13, x1, w3, p, k, beta, c + 3);
        c += ldc;
        Put<T, TV, TS>(c20, x2, w, p, k, beta, c); Put<T, TV, TS>(c21, x2, w1, p, k, beta, c + 1); Put<T, TV, TS>(c22, x2, w2, p, k, beta, c + 2); Put<T, TV, TS>(c23, x2, w3, p, k, beta, c + 3);
        c += ldc;
        Put<T, TV, TS>(c30, x3, w, p, k, beta, c); Put<T, TV, TS>(c31, x3, w1, p, k, beta, c + 1); Put<T, TV, TS>(c32, x3, w2, p, k, beta, c + 2); Put<T, TV, TS>(c33, x3, w3, p, k, beta, c + 3);
    }

    // One row of a against eight of b: eight chains of multiply-adds and eight streams of b keep a one-row product
    // (generation without a server) at the memory's speed.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile1x8<T, TV, TS>(int k, T* x, T* w, T beta, T* c)
        where T : unmanaged, INumber<T> where TV : struct where TS : struct, ISimd<T, TV>
    {
        T* w1 = w + k, w2 = w + 2 * k, w3 = w + 3 * k, w4 = w + 4 * k, w5 = w + 5 * k, w6 = w + 6 * k, w7 = w + 7 * k;
        TV c0 = TS.Zero, c1 = TS.Zero, c2 = TS.Zero, c3 = TS.Zero, c4 = TS.Zero, c5 = TS.Zero, c6 = TS.Zero, c7 = TS.Zero;
        int p = 0;
        for (; p + TS.Count <= k; p += TS.Count)
        {
            TV a0 = TS.Load(x + p);
            c0 = TS.MulAdd(a0, TS.Load(w + p), c0); c1 = TS.MulAdd(a0, TS.Load(w1 + p), c1);
            c2 = TS.MulAdd(a0, TS.Load(w2 + p), c2); c3 = TS.MulAdd(a0, TS.Load(w3 + p), c3);
            c4 = TS.MulAdd(a0, TS.Load(w4 + p), c4); c5 = TS.MulAdd(a0, TS.Load(w5 + p), c5);
            c6 = TS.MulAdd(a0, TS.Load(w6 + p), c6); c7 = TS.MulAdd(a0, TS.Load(w7 + p), c7);
        }
        Put<T, TV, TS>(c0, x, w, p, k, beta, c); Put<T, TV, TS>(c1, x, w1, p, k, beta, c + 1);
        Put<T, TV, TS>(c2, x, w2, p, k, beta, c + 2); Put<T, TV, TS>(c3, x, w3, p, k, beta, c + 3);
        Put<T, TV, TS>(c4, x, w4, p, k, beta, c + 4); Put<T, TV, TS>(c5, x, w5, p, k, beta, c + 5);
        Put<T, TV, TS>(c6, x, w6, p, k, beta, c + 6); Put<T, TV, TS>(c7, x, w7, p, k, beta, c + 7);
    }

    // One row of a against four of b (the last rows of a, past the 4 × 4 tiles).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile1x4<T, TV, TS>(int k, T* x, T* w, T beta, T* c)
        where T : unmanaged, INumber<T> where TV : struct where TS : struct, ISimd<T, TV>
    {
        T* w1 = w + k, w2 = w + 2 * k, w3 = w + 3 * k;
        TV c0 = TS.Zero, c1 = TS.Zero, c2 = TS.Zero, c3 = TS.Zero;
        int p = 0;
        for (; p + TS.Count <= k; p += TS.Count)
        {
            TV a0 = TS.Load(x + p);
            c0 = TS.MulAdd(a0, TS.Load(w + p), c0); c1 = TS.MulAdd(a0, TS.Load(w1 + p), c1);
            c2 = TS.MulAdd(a0, TS.Load(w2 + p), c2); c3 = TS.MulAdd(a0, TS.Load(w3 + p), c3);
        }
        Put<T, TV, TS>(c0, x, w, p, k, beta, c); Put<T, TV, TS>(c1, x, w1, p, k, beta, c + 1);
        Put<T, TV, TS>(c2, x, w2, p, k, beta, c + 2); Put<T, TV, TS>(c3, x, w3, p, k, beta, c + 3);
    }

    // The end of one element: its lanes summed, then the products past the last whole vector, then beta·c.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Put<T, TV, TS>(TV acc, T* x, T* w, int p, int k, T beta, T* c)
        where T : unmanaged, INumber<T> where TV : struct where TS : struct, ISimd<T, TV>
    {
        // The lanes summed in registers (the same shuffles for every element); a sum through memory costs more than the dot.
        T sum = typeof(TV) == typeof(Vector512<T>) ? Vector512.Sum(Unsafe.As<TV, Vector512<T>>(ref acc))
            : typeof(TV) == typeof(Vector256<T>) ? Vector256.Sum(Unsafe.As<TV, Vector256<T>>(ref acc))
            : Vector128.Sum(Unsafe.As<TV, Vector128<T>>(ref acc));
        for (; p < k; p++) sum += x[p] * w[p];
        *c = sum + (beta == T.Zero ? T.Zero : beta * *c);
    }

    static void Validate(bool transA, bool transB, int m, int n, int k, int lda, int ldb, int ldc)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfLessThan(lda, Math.Max(1, transA ? m : k));
        ArgumentOutOfRangeException.ThrowIfLessThan(ldb, Math.Max(1, transB ? k : n));
        ArgumentOutOfRangeException.ThrowIfLessThan(ldc, Math.Max(1, n));
    }

    /// <summary>C = beta·C, where beta = 0 clears C even if it held NaN.</summary>
    static void ScaleC<T>(int m, int n, T beta, T* c, int ldc) where T : unmanaged, INumber<T>
    {
        if (beta == T.One) return;
        for (int i = 0; i < m; i++)
        {
            var row = new Span<T>(c + (long)i * ldc, n);
            if (beta == T.Zero) row.Clear();
            else for (int j = 0; j < n; j++) row[j] *= beta;
        }
    }

    /// <summary>The arguments of one call, passed by value to the worker delegates.</summary>
    readonly struct Job<T>(bool transA, bool transB, int m, int n, int k, T alpha, T* a, int lda, T* b, int ldb,
        T beta, T* c, int ldc) where T : unmanaged
    {
        public readonly bool TransA = transA, TransB = transB;
        public readonly int M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc;
        public readonly T Alpha = alpha, Beta = beta;
        public readonly T* A = a, B = b, C = c;
    }

    /// <summary>The geometry shared by all work items of one call.</summary>
    readonly struct Plan
    {
        public readonly int NR, KC, NPanels, NPad, NcPanels, RowBlocks, ColGroups, MPanels;

        public Plan(int m, int n, int nr, int elementSize, int workers)
        {
            NR = nr;
            KC = KcBytes / elementSize;
            NPanels = (n + nr - 1) / nr;
            NPad = NPanels * nr;
            NcPanels = Math.Max(1, BChunkBytes / (KC * elementSize) / nr);
            MPanels = (m + MR - 1) / MR;
            int target = workers * ItemsPerWorker;
            RowBlocks = Math.Min(MPanels, target);
            // Few rows (e.g. m = 8): split the columns too so every worker gets something to do.
            ColGroups = workers > 1 ? Math.Clamp((target + RowBlocks - 1) / RowBlocks, 1, NPanels) : 1;
            if (workers == 1) RowBlocks = 1;
        }

        public int Items => RowBlocks * ColGroups;

        /// <summary>Row panels [start, end) of a row block: panels are dealt as evenly as possible.</summary>
        public (int Start, int End) RowPanels(int block) =>
            ((int)((long)block * MPanels / RowBlocks), (int)((long)(block + 1) * MPanels / RowBlocks));

        public (int Start, int End) ColPanels(int group) =>
            ((int)((long)group * NPanels / ColGroups), (int)((long)(group + 1) * NPanels / ColGroups));
    }

    static void Run<T, TV, TS, TR>(Job<T> job) where T : unmanaged, INumber<T> where TV : struct
        where TS : struct, ISimd<T, TV> where TR : struct, IGemmInputs<T>
    {
        long work = (long)job.M * job.N * job.K;
        int workers = work < ParallelThreshold ? 1 : Environment.ProcessorCount;
        var plan = new Plan(job.M, job.N, 2 * TS.Count, sizeof(T), workers);

        var bScratch = Scratch<T>.RentB((long)job.K * plan.NPad);
        try
        {
            T* bp = bScratch.Pointer;
            if (workers == 1)
            {
                PackB<T, TV, TS, TR>(job, plan, bp, 0, plan.NPanels);
                var aScratch = Scratch<T>.RentA(AScratchLength(job, plan));
                try { for (int item = 0; item < plan.Items; item++) RunItem<T, TV, TS, TR>(job, plan, bp, aScratch.Pointer, item); }
                finally { Scratch<T>.ReturnA(aScratch); }
                return;
            }

            var options = new ParallelOptions { MaxDegreeOfParallelism = workers };
            nint bpAddress = (nint)bp;
            Parallel.For(0, workers, options, w =>
            {
                var (start, end) = (w * plan.NPanels / workers, (w + 1) * plan.NPanels / workers);
                PackB<T, TV, TS, TR>(job, plan, (T*)bpAddress, start, end);
            });
            Parallel.For(0, plan.Items, options, () => Scratch<T>.RentA(AScratchLength(job, plan)),
                (item, _, aScratch) =>
                {
                    RunItem<T, TV, TS, TR>(job, plan, (T*)bpAddress, aScratch.Pointer, item);
                    return aScratch;
                },
                Scratch<T>.ReturnA);
        }
        finally { Scratch<T>.ReturnB(bScratch); }
    }

    static long AScratchLength<T>(Job<T> job, Plan plan) where T : unmanaged
    {
        int maxPanels = (plan.MPanels + plan.RowBlocks - 1) / plan.RowBlocks;
        return (long)maxPanels * MR * Math.Min(plan.KC, job.K);
    }

    /// <summary>One row block × column group of C, over all of k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RunItem<T, TV, TS, TR>(Job<T> job, Plan plan, T* bPacked, T* aPacked, int item)
        where T : unmanaged, INumber<T> where TV : struct where TS : struct, ISimd<T, TV> where TR : struct, IGemmInputs<T>
    {
        var (rp0, rp1) = plan.RowPanels(item / plan.ColGroups);
        var (cp0, cp1) = plan.ColPanels(item % plan.ColGroups);
        if (rp0 == rp1 || cp0 == cp1) return;
        int nr = plan.NR;
        T* tile = stackalloc T[MR * 2 * Vector512<byte>.Count]; // ≥ MR×NR for every ISA; edge tiles land here

        for (int p0 = 0; p0 < job.K; p0 += plan.KC)
        {
            int kc = Math.Min(plan.KC, job.K - p0);
            PackA<T, TR>(job, aPacked, rp0 * MR, rp1 * MR, p0, kc);
            // The first block applies beta; later ones accumulate onto what the first wrote.
            bool overwrite = p0 == 0 && job.Beta == T.Zero;
            T beta = p0 == 0 ? job.Beta : T.One;
            T* bBlock = bPacked + (long)p0 * plan.NPad;

            for (int jc = cp0; jc < cp1; jc += plan.NcPanels)
            {
                int jcEnd = Math.Min(cp1, jc + plan.NcPanels);
                for (int ip = rp0; ip < rp1; ip++)
                {
                    T* ap = aPacked + (long)(ip - rp0) * MR * kc;
                    int i0 = ip * MR, rows = Math.Min(MR, job.M - i0);
                    for (int jp = jc; jp < jcEnd; jp++)
                    {
                        T* bp = bBlock + (long)jp * nr * kc;
                        int j0 = jp * nr, cols = Math.Min(nr, job.N - j0);
                        T* cp = job.C + (long)i0 * job.Ldc + j0;
                        if (rows == MR && cols == nr)
                            Kernel<T, TV, TS>(kc, ap, bp, cp, job.Ldc, beta, overwrite);
                        else
                        {
                            Kernel<T, TV, TS>(kc, ap, bp, tile, nr, T.Zero, overwrite: true);
                            MergeTile(tile, nr, cp, job.Ldc, rows, cols, beta, overwrite);
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// Packs rows [i0, i1) × depth [p0, p0+kc) of alpha·op(A) into MR-tall panels, each stored k-major
    /// (MR consecutive values per k) so the kernel broadcasts them in order. Rows past m are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackA<T, TR>(Job<T> job, T* dst, int i0, int i1, int p0, int kc) where T : unmanaged, INumber<T> where TR : struct, IGemmInputs<T>
    {
        T alpha = job.Alpha;
        long lda = job.Lda;
        for (int ib = i0; ib < i1; ib += MR, dst += MR * kc)
        {
            int rows = Math.Min(MR, job.M - ib);
            if (rows < MR)
            {
                // Last, ragged panel: element by element, zero-padded.
                for (int p = 0; p < kc; p++)
                    for (int r = 0; r < MR; r++)
                        dst[p * MR + r] = r >= rows ? T.Zero
                            : alpha * TR.Read(job.TransA ? job.A[(p0 + p) * lda + ib + r] : job.A[(ib + r) * lda + p0 + p]);
            }
            else if (job.TransA)
            {
                // A is k×m: the MR values for one k are contiguous.
                T* src = job.A + p0 * lda + ib;
                T* d = dst;
                for (int p = 0; p < kc; p++, src += lda, d += MR)
                {
                    d[0] = alpha * TR.Read(src[0]); d[1] = alpha * TR.Read(src[1]); d[2] = alpha * TR.Read(src[2]);
                    d[3] = alpha * TR.Read(src[3]); d[4] = alpha * TR.Read(src[4]); d[5] = alpha * TR.Read(src[5]);
                }
            }
            else
            {
                // A is m×k: walk the MR rows side by side (each one sequential) and interleave them.
                T* s0 = job.A + ib * lda + p0;
                T* s1 = s0 + lda, s2 = s1 + lda, s3 = s2 + lda, s4 = s3 + lda, s5 = s4 + lda;
                T* d = dst;
                for (int p = 0; p < kc; p++, d += MR)
                {
                    d[0] = alpha * TR.Read(s0[p]); d[1] = alpha * TR.Read(s1[p]); d[2] = alpha * TR.Read(s2[p]);
                    d[3] = alpha * TR.Read(s3[p]); d[4] = alpha * TR.Read(s4[p]); d[5] = alpha * TR.Read(s5[p]);
                }
            }
        }
    }

    /// <summary>
    /// Packs column panels [jp0, jp1) of op(B) for all of k: KC block by KC block, each panel kc×NR k-major.
    /// Columns past n are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackB<T, TV, TS, TR>(Job<T> job, Plan plan, T* packed, int jp0, int jp1)
        where T : unmanaged, INumber<T> where TV : struct where TS : struct, ISimd<T, TV> where TR : struct, IGemmInputs<T>
    {
        int nr = plan.NR;
        for (int p0 = 0; p0 < job.K; p0 += plan.KC)
        {
            int kc = Math.Min(plan.KC, job.K - p0);
            for (int jp = jp0; jp < jp1; jp++)
            {
                T* dst = packed + (long)p0 * plan.NPad + (long)jp * nr * kc;
                int j0 = jp * nr, cols = Math.Min(nr, job.N - j0);
                if (!job.TransB)
                {
                    // B is k×n: each k contributes a contiguous run of NR values (two vectors).
                    T* src = job.B + (long)p0 * job.Ldb + j0;
                    for (int p = 0; p < kc; p++, src += job.Ldb, dst += nr)
                    {
                        if (cols == nr && !TR.Rounds)
                        {
                            TS.Store(dst, TS.Load(src));
                            TS.Store(dst + TS.Count, TS.Load(src + TS.Count));
                        }
                        else
                        {
                            int j = 0;
                            for (; j < cols; j++) dst[j] = TR.Read(src[j]);
                            for (; j < nr; j++) dst[j] = T.Zero;
                        }
                    }
                }
                else
                {
                    // B is n×k: column j of op(B) is row j of B. Read rows sequentially and scatter with stride
                    // NR, a slab of depth at a time so the written lines stay in L1.
                    const int Slab = 64;
                    for (int ps = 0; ps < kc; ps += Slab)
                    {
                        int pe = Math.Min(kc, ps + Slab);
                        for (int j = 0; j < nr; j++)
                        {
                            T* d = dst + j;
                            if (j < cols)
                            {
                                T* src = job.B + (long)(j0 + j) * job.Ldb + p0;
                                for (int p = ps; p < pe; p++) d[p * nr] = TR.Read(src[p]);
                            }
                            else
                                for (int p = ps; p < pe; p++) d[p * nr] = T.Zero;
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// MR×NR register tile: acc = Σ_p a[p,·] ⊗ b[p,·] over packed panels, then C = acc (overwrite) or
    /// C = acc + beta·C. NR is two vectors, so each broadcast of A feeds two FMAs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel<T, TV, TS>(int kc, T* a, T* b, T* c, int ldc, T beta, bool overwrite)
        where T : unmanaged where TV : struct where TS : struct, ISimd<T, TV>
    {
        int w = TS.Count;
        TV c00 = TS.Zero, c01 = TS.Zero, c10 = TS.Zero, c11 = TS.Zero, c20 = TS.Zero, c21 = TS.Zero;
        TV c30 = TS.Zero, c31 = TS.Zero, c40 = TS.Zero, c41 = TS.Zero, c50 = TS.Zero, c51 = TS.Zero;
        for (int p = 0; p < kc; p++, a += MR, b += 2 * w)
        {
            TV b0 = TS.Load(b), b1 = TS.Load(b + w);
            TV av = TS.Broadcast(a);
            c00 = TS.MulAdd(av, b0, c00); c01 = TS.MulAdd(av, b1, c01);
            av = TS.Broadcast(a + 1);
            c10 = TS.MulAdd(av, b0, c10); c11 = TS.MulAdd(av, b1, c11);
            av = TS.Broadcast(a + 2);
            c20 = TS.MulAdd(av, b0, c20); c21 = TS.MulAdd(av, b1, c21);
            av = TS.Broadcast(a + 3);
            c30 = TS.MulAdd(av, b0, c30); c31 = TS.MulAdd(av, b1, c31);
            av = TS.Broadcast(a + 4);
            c40 = TS.MulAdd(av, b0, c40); c41 = TS.MulAdd(av, b1, c41);
            av = TS.Broadcast(a + 5);
            c50 = TS.MulAdd(av, b0, c50); c51 = TS.MulAdd(av, b1, c51);
        }

        TV bv = TS.Broadcast(&beta);
        long ld = ldc;
        Update<T, TV, TS>(c, c00, c01, bv, overwrite);
        Update<T, TV, TS>(c + ld, c10, c11, bv, overwrite);
        Update<T, TV, TS>(c + 2 * ld, c20, c21, bv, overwrite);
        Update<T, TV, TS>(c + 3 * ld, c30, c31, bv, overwrite);
        Update<T, TV, TS>(c + 4 * ld, c40, c41, bv, overwrite);
        Update<T, TV, TS>(c + 5 * ld, c50, c51, bv, overwrite);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Update<T, TV, TS>(T* c, TV lo, TV hi, TV beta, bool overwrite)
        where T : unmanaged where TV : struct where TS : struct, ISimd<T, TV>
    {
        if (!overwrite)
        {
            lo = TS.MulAdd(beta, TS.Load(c), lo);
            hi = TS.MulAdd(beta, TS.Load(c + TS.Count), hi);
        }
        TS.Store(c, lo);
        TS.Store(c + TS.Count, hi);
    }

    /// <summary>Writes the valid rows × cols of a scratch tile into C (same rule as the kernel's store).</summary>
    static void MergeTile<T>(T* tile, int nr, T* c, int ldc, int rows, int cols, T beta, bool overwrite)
        where T : unmanaged, INumber<T>
    {
        for (int r = 0; r < rows; r++)
        {
            T* src = tile + r * nr, dst = c + (long)r * ldc;
            for (int j = 0; j < cols; j++) dst[j] = overwrite ? src[j] : src[j] + beta * dst[j];
        }
    }

    /// <summary>
    /// Per-thread packing buffers, reused across calls (pinned, 64-byte aligned). A buffer is taken out of its
    /// slot while in use, so a re-entrant call on the same thread simply allocates a fresh one.
    /// </summary>
    sealed class Scratch<T> where T : unmanaged
    {
        [ThreadStatic] static Scratch<T>? cachedA;
        [ThreadStatic] static Scratch<T>? cachedB;

        readonly T[] array;

        Scratch(long length)
        {
            if (length > Array.MaxLength - 64) throw new OutOfMemoryException("GEMM packing buffer too large.");
            array = GC.AllocateUninitializedArray<T>((int)length + 64 / sizeof(T), pinned: true);
            nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
            Pointer = (T*)((start + 63) & ~(nint)63);
            Length = length;
        }

        public T* Pointer { get; }
        public long Length { get; }

        public static Scratch<T> RentA(long length) => Take(ref cachedA, length);
        public static Scratch<T> RentB(long length) => Take(ref cachedB, length);
        public static void ReturnA(Scratch<T> s) => cachedA = s;
        public static void ReturnB(Scratch<T> s) => cachedB = s;

        static Scratch<T> Take(ref Scratch<T>? slot, long length)
        {
            var s = slot;
            slot = null;
            return s is not null && s.Length >= length ? s : new Scratch<T>(Math.Max(length, 4096));
        }
    }
}
