using System.Numerics;
using GateLoop.Runtime;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// HostGemm and IlgpuGemm against a naive triple loop in double. Padding of A and B (columns past the logical
/// matrix, inside the leading dimension) holds NaN, so any read outside the matrix shows up in C; padding of C
/// holds a sentinel that must survive; beta = 0 runs on a NaN-filled C, which must be overwritten.
/// </summary>
public sealed unsafe class GemmTests(GemmTests.CpuAccelerators cpu) : IClassFixture<GemmTests.CpuAccelerators>
{
    /// <summary>
    /// ILGPU CPU accelerators shared by the tests (creating one is not free): the default device, whose groups
    /// hold at most 16 threads (so IlgpuGemm uses 4×4 tiles), and one emulating an NVIDIA GPU (16×16 tiles,
    /// as on CUDA).
    /// </summary>
    public sealed class CpuAccelerators : IDisposable
    {
        readonly Context defaultContext = Context.Create(b => b.CPU());
        readonly Context nvidiaContext = Context.Create(b => b.CPU(CPUDeviceKind.Nvidia));

        public CpuAccelerators()
        {
            Small = defaultContext.CreateCPUAccelerator(0);
            Wide = nvidiaContext.CreateCPUAccelerator(0);
            SmallGemm = new IlgpuGemm(Small);
            WideGemm = new IlgpuGemm(Wide);
        }

        public Accelerator Small { get; }
        public Accelerator Wide { get; }
        internal IlgpuGemm SmallGemm { get; }
        internal IlgpuGemm WideGemm { get; }

        public void Dispose()
        {
            SmallGemm.Dispose();
            WideGemm.Dispose();
            Small.Dispose();
            Wide.Dispose();
            defaultContext.Dispose();
            nvidiaContext.Dispose();
        }
    }

    const double Sentinel = 12345;

    static readonly (double Alpha, double Beta)[] Scalars = [(1.5, 0), (1, 1), (-0.75, 0.5)];

    /// <summary>m, n, k, padding of the leading dimensions. Host blocks: MR 6, NC 256, KC 512 (float) / 256 (double).</summary>
    static readonly (int M, int N, int K, int Pad)[] HostShapes =
    [
        (1, 1, 1, 0),
        (37, 19, 45, 0),
        (37, 19, 45, 3),
        (5, 3, 1100, 1),     // k spans three KC blocks (five for double)
        (300, 260, 270, 5),  // ragged edges, parallel, more than one NC chunk
        (40, 530, 600, 1),   // two KC blocks for float, three NC chunks
        (8, 700, 400, 2),    // few rows: parallel work split along columns
        (13, 40, 0, 2),      // k = 0: C = beta·C
        (1, 700, 400, 1),    // one row, large: the matrix–vector path split between cores
    ];

    static readonly (int M, int N, int K, int Pad)[] DeviceShapes = [(17, 13, 21, 2), (4, 33, 16, 0), (3, 5, 0, 1)];

    public static TheoryData<bool, bool, int, int, int, int> HostCases() => Cases(HostShapes);
    public static TheoryData<bool, bool, int, int, int, int> DeviceCases() => Cases(DeviceShapes);

    static TheoryData<bool, bool, int, int, int, int> Cases((int M, int N, int K, int Pad)[] shapes)
    {
        var data = new TheoryData<bool, bool, int, int, int, int>();
        foreach (var (m, n, k, pad) in shapes)
            foreach (bool transA in new[] { false, true })
                foreach (bool transB in new[] { false, true })
                    data.Add(transA, transB, m, n, k, pad);
        return data;
    }

    [Theory, MemberData(nameof(HostCases))]
    public void HostFloat(bool transA, bool transB, int m, int n, int k, int pad) =>
        CheckHost<float>(new Problem<float>(transA, transB, m, n, k, pad));

    [Theory, MemberData(nameof(HostCases))]
    public void HostDouble(bool transA, bool transB, int m, int n, int k, int pad) =>
        CheckHost<double>(new Problem<double>(transA, transB, m, n, k, pad));

    /// <summary>
    /// bf16 inputs: the product of A and B rounded to bf16, summed in fp32, against the double sum of the rounded values;
    /// and farther from the unrounded product than the fp32 GEMM's rounding, so the test fails if nothing is rounded.
    /// </summary>
    [Theory, MemberData(nameof(HostCases))]
    public void HostBf16Inputs(bool transA, bool transB, int m, int n, int k, int pad) =>
        CheckHost(new Problem<float>(transA, transB, m, n, k, pad, bf16Inputs: true));

    [Theory, MemberData(nameof(DeviceCases))]
    public void IlgpuCpuBf16Inputs(bool transA, bool transB, int m, int n, int k, int pad)
    {
        var problem = new Problem<float>(transA, transB, m, n, k, pad, bf16Inputs: true);
        CheckIlgpu(problem, cpu.Small, cpu.SmallGemm);
        CheckIlgpu(problem, cpu.Wide, cpu.WideGemm);
    }

    [Fact]
    public void Bf16InputsOfDoublesAreRefused()
    {
        Assert.Throws<NotSupportedException>(() =>
            HostGemm.Multiply<double>(false, false, 1, 1, 1, 1, null, 1, null, 1, 0, null, 1, bf16Inputs: true));
        using var buffer = cpu.Small.Allocate1D<double>(1);
        ArrayView<double> view = buffer.View;
        Assert.Throws<NotSupportedException>(() =>
            cpu.SmallGemm.Multiply(false, false, 1, 1, 1, 1, view, 1, view, 1, 0, view, 1, bf16Inputs: true));
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(5, 37, 45)]     // edges of the 4 × 4 tiles and of the row blocks, a tail past the last vector
    [InlineData(9, 700, 400)]   // parallel: columns split between cores
    [InlineData(64, 30, 128)]
    public void RowsTimesTransposedIsTheProductAndEachRowIsItsProductAlone(int m, int n, int k)
    {
        RowByRow<float>(m, n, k);
        RowByRow<double>(m, n, k);
    }

    static void RowByRow<T>(int m, int n, int k) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var problem = new Problem<T>(false, true, m, n, k, pad: 0);
        foreach (double beta in new[] { 0.0, 1.0 })
        {
            var c0 = problem.NewC(beta);
            var c = (T[])c0.Clone();
            fixed (T* a = problem.A, b = problem.B, pc = c)
                HostGemm.RowsTimesTransposed(m, n, k, a, b, T.CreateChecked(beta), pc);
            problem.AssertClose(c, problem.Expected(1, beta, c0), $"{problem} beta={beta}");
            // Each row of the product is bit for bit that row's product alone.
            for (int i = 0; i < m; i++)
            {
                var alone = c0.AsSpan(i * n, n).ToArray();
                fixed (T* a = problem.A, b = problem.B, pc = alone)
                    HostGemm.RowsTimesTransposed(1, n, k, a + i * k, b, T.CreateChecked(beta), pc);
                Assert.Equal(alone, c.AsSpan(i * n, n).ToArray());
            }
        }
    }

    [Theory, MemberData(nameof(DeviceCases))]
    public void IlgpuCpuFloat(bool transA, bool transB, int m, int n, int k, int pad)
    {
        var problem = new Problem<float>(transA, transB, m, n, k, pad);
        CheckIlgpu(problem, cpu.Small, cpu.SmallGemm);
        CheckIlgpu(problem, cpu.Wide, cpu.WideGemm);
    }

    [Theory, MemberData(nameof(DeviceCases))]
    public void IlgpuCpuDouble(bool transA, bool transB, int m, int n, int k, int pad)
    {
        var problem = new Problem<double>(transA, transB, m, n, k, pad);
        CheckIlgpu(problem, cpu.Small, cpu.SmallGemm);
        CheckIlgpu(problem, cpu.Wide, cpu.WideGemm);
    }

    [Fact]
    public void IlgpuCpuUsesTiledKernel() => Assert.Equal("ilgpu-tiled", cpu.SmallGemm.Backend);

    [Fact]
    public void AlphaZeroDoesNotReadAOrB()
    {
        var problem = new Problem<float>(false, true, 9, 7, 5, 1);
        Array.Fill(problem.A, float.NaN);
        Array.Fill(problem.B, float.NaN);
        var c = problem.NewC(0.5);
        var expected = problem.Expected(0, 0.5, c);
        fixed (float* pa = problem.A, pb = problem.B, pc = c)
            HostGemm.Multiply(false, true, 9, 7, 5, 0f, pa, problem.Lda, pb, problem.Ldb, 0.5f, pc, problem.Ldc);
        problem.AssertClose(c, expected, "host");

        c = problem.NewC(0.5);
        expected = problem.Expected(0, 0.5, c);
        RunIlgpu(problem, cpu.Small, cpu.SmallGemm, 0f, 0.5f, c);
        problem.AssertClose(c, expected, "ilgpu");
    }

    [Fact]
    public void UnsupportedTypeThrows()
    {
        Assert.Throws<NotSupportedException>(() =>
            HostGemm.Multiply<int>(false, false, 1, 1, 1, 1, null, 1, null, 1, 0, null, 1));
        using var buffer = cpu.Small.Allocate1D<int>(1);
        ArrayView<int> view = buffer.View;
        Assert.Throws<NotSupportedException>(() =>
            cpu.SmallGemm.Multiply(false, false, 1, 1, 1, 1, view, 1, view, 1, 0, view, 1));
    }

    static void CheckHost<T>(Problem<T> p) where T : unmanaged, IFloatingPointIeee754<T>
    {
        foreach (var (alpha, beta) in Scalars)
        {
            var c = p.NewC(beta);
            var expected = p.Expected(alpha, beta, c);
            fixed (T* pa = p.A, pb = p.B, pc = c)
                HostGemm.Multiply(p.TransA, p.TransB, p.M, p.N, p.K, T.CreateChecked(alpha), pa, p.Lda, pb, p.Ldb,
                    T.CreateChecked(beta), pc, p.Ldc, p.Bf16Inputs);
            p.AssertClose(c, expected, $"host {p} alpha={alpha} beta={beta}");
            p.AssertRoundingShows(c, alpha, beta);
        }
    }

    static void CheckIlgpu<T>(Problem<T> p, Accelerator accelerator, IlgpuGemm gemm)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        foreach (var (alpha, beta) in Scalars)
        {
            var c = p.NewC(beta);
            var expected = p.Expected(alpha, beta, c);
            RunIlgpu(p, accelerator, gemm, T.CreateChecked(alpha), T.CreateChecked(beta), c);
            p.AssertClose(c, expected, $"ilgpu ({accelerator.MaxNumThreadsPerGroup} threads/group) {p} alpha={alpha} beta={beta}");
            p.AssertRoundingShows(c, alpha, beta);
        }
    }

    static void RunIlgpu<T>(Problem<T> p, Accelerator accelerator, IlgpuGemm gemm, T alpha, T beta, T[] c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // ILGPU cannot allocate zero-length buffers; with k = 0 A and B are empty, so give them one element.
        using var da = accelerator.Allocate1D(p.A.Length == 0 ? new T[1] : p.A);
        using var db = accelerator.Allocate1D(p.B.Length == 0 ? new T[1] : p.B);
        using var dc = accelerator.Allocate1D(c);
        gemm.Multiply(p.TransA, p.TransB, p.M, p.N, p.K, alpha, (ArrayView<T>)da.View, p.Lda, (ArrayView<T>)db.View, p.Ldb, beta, dc.View, p.Ldc, p.Bf16Inputs);
        accelerator.Synchronize();
        dc.View.CopyToCPU(c);
    }

    /// <summary>
    /// Random row-major operands with padded leading dimensions, and Σ op(A)·op(B) in double; with bf16 inputs, of the
    /// operands rounded to bf16 (the unrounded sum kept to show the rounding mattered).
    /// </summary>
    internal sealed class Problem<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        readonly Random rng;
        readonly double[] dot, abs; // per element of C: Σ_p a·b and Σ_p |a·b|
        readonly double[] unrounded; // Σ_p a·b of the operands as stored

        public Problem(bool transA, bool transB, int m, int n, int k, int pad, bool bf16Inputs = false)
        {
            (TransA, TransB, M, N, K, Bf16Inputs) = (transA, transB, m, n, k, bf16Inputs);
            rng = new Random(HashCode.Combine(transA, transB, m, n, k, pad));
            int aRows = transA ? k : m, aCols = transA ? m : k;
            int bRows = transB ? n : k, bCols = transB ? k : n;
            (Lda, Ldb, Ldc) = (Math.Max(1, aCols + pad), Math.Max(1, bCols + pad), n + pad);
            A = Matrix(aRows, aCols, Lda);
            B = Matrix(bRows, bCols, Ldb);

            // Reference products, computed once for all (alpha, beta) pairs.
            (dot, abs) = Products(bf16Inputs);
            unrounded = bf16Inputs ? Products(false).Dot : dot;
        }

        (double[] Dot, double[] Abs) Products(bool round)
        {
            int m = M, n = N, k = K;
            double Value(T v) => round ? Bf16.Round(float.CreateChecked(v)) : double.CreateChecked(v);
            var opA = new double[m * k];   // row-major m×k
            var opBt = new double[n * k];  // row-major n×k, i.e. op(B) transposed
            for (int i = 0; i < m; i++)
                for (int p = 0; p < k; p++)
                    opA[i * k + p] = Value(TransA ? A[p * Lda + i] : A[i * Lda + p]);
            for (int j = 0; j < n; j++)
                for (int p = 0; p < k; p++)
                    opBt[j * k + p] = Value(TransB ? B[j * Ldb + p] : B[p * Ldb + j]);
            var dot = new double[m * n];
            var abs = new double[m * n];
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0, sa = 0;
                    for (int p = 0; p < k; p++)
                    {
                        double t = opA[i * k + p] * opBt[j * k + p];
                        s += t;
                        sa += Math.Abs(t);
                    }
                    (dot[i * n + j], abs[i * n + j]) = (s, sa);
                }
            return (dot, abs);
        }

        public bool Bf16Inputs { get; }

        public bool TransA { get; }
        public bool TransB { get; }
        public int M { get; }
        public int N { get; }
        public int K { get; }
        public int Lda { get; }
        public int Ldb { get; }
        public int Ldc { get; }
        public T[] A { get; }
        public T[] B { get; }

        public override string ToString() =>
            $"{typeof(T).Name}{(Bf16Inputs ? " (bf16 inputs)" : "")} tA={TransA} tB={TransB} {M}x{N}x{K} lda={Lda} ldb={Ldb} ldc={Ldc}";

        /// <summary>
        /// With bf16 inputs and some products, C is far nearer the product of the rounded operands than that of the
        /// stored ones: what a GEMM that forgot to round would fail. Summed over C, since one element's rounding
        /// errors can cancel (about 2⁻⁹/√K of its |a·b| sum, near fp32's own error for some elements), and a fixed
        /// bound on the worst element failed by chance for some random operands.
        /// </summary>
        public void AssertRoundingShows(T[] c, double alpha, double beta)
        {
            // With beta = 0 C is the product alone (each problem runs once so).
            if (!Bf16Inputs || K == 0 || alpha == 0 || beta != 0) return;
            double toRounded = 0, toStored = 0;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++)
                {
                    double v = double.CreateChecked(c[i * Ldc + j]);
                    toRounded += Math.Abs(v - alpha * dot[i * N + j]);
                    toStored += Math.Abs(v - alpha * unrounded[i * N + j]);
                }
            Assert.True(toRounded < toStored / 4,
                $"{this}: C is {toRounded:G3} from the rounded operands' product and {toStored:G3} from the stored ones'; the inputs were not rounded to bf16");
        }

        T[] Matrix(int rows, int cols, int ld)
        {
            var data = new T[rows * ld];
            Array.Fill(data, T.NaN);
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                    data[i * ld + j] = T.CreateChecked(rng.NextDouble() * 2 - 1);
            return data;
        }

        /// <summary>A fresh C: random, or NaN when beta = 0 (its contents must be ignored); padding = sentinel.</summary>
        public T[] NewC(double beta)
        {
            var c = new T[M * Ldc];
            Array.Fill(c, T.CreateChecked(Sentinel));
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++)
                    c[i * Ldc + j] = beta == 0 ? T.NaN : T.CreateChecked(rng.NextDouble() * 2 - 1);
            return c;
        }

        /// <summary>Expected C and, per element, the sum of |terms| that rounding errors scale with.</summary>
        public (double[] Value, double[] Magnitude) Expected(double alpha, double beta, T[] c0)
        {
            var value = new double[M * N];
            var magnitude = new double[M * N];
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++)
                {
                    double old = beta == 0 ? 0 : beta * double.CreateChecked(c0[i * Ldc + j]);
                    value[i * N + j] = alpha * dot[i * N + j] + old;
                    magnitude[i * N + j] = Math.Abs(alpha) * abs[i * N + j] + Math.Abs(old);
                }
            return (value, magnitude);
        }

        public void AssertClose(T[] c, (double[] Value, double[] Magnitude) expected, string what)
        {
            double tolerance = typeof(T) == typeof(float) ? 1e-5 * Math.Sqrt(Math.Max(K, 1)) : 1e-12;
            for (int i = 0; i < M; i++)
            {
                for (int j = 0; j < N; j++)
                {
                    double got = double.CreateChecked(c[i * Ldc + j]), want = expected.Value[i * N + j];
                    double allowed = tolerance * expected.Magnitude[i * N + j] + 1e-300;
                    if (!(Math.Abs(got - want) <= allowed)) // also fails on NaN
                        Assert.Fail($"{what}: C[{i},{j}] = {got}, expected {want} (allowed error {allowed:G3})");
                }
                for (int j = N; j < Ldc; j++)
                    if (double.CreateChecked(c[i * Ldc + j]) != Sentinel)
                        Assert.Fail($"{what}: padding C[{i},{j}] was written");
            }
        }
    }
}
