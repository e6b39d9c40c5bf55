using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// SIMD host range entries (float) that generated models call in place of the scalar twins where those dominate
/// the host's time, since the JIT does not vectorize the scalar kernels: <see cref="Map{TOp}(int, int, ArrayView{float}, ArrayView{float})"/>
/// and <see cref="MapRows{TOp}"/> run the lane structs generated from the elementwise formulas ops write once
/// (activations, gating, a bias over rows) and <see cref="MapPairs{TOp}"/> those over complex pairs (the state
/// transition), with the lane math they call (<see cref="Exp{TV}"/>); the norms' rows are generated whole
/// (<c>LaneRow</c>). The formulas run in registers of any width (<see cref="ILaneVector{TV}"/>), the widest this
/// machine has (<see cref="LaneBits"/>). The rest is what is not one formula per element: the scans, the column
/// reductions. Each computes the kernel's formula lane by lane (same approximations, so the cpu/ilgpu-cpu agreement
/// tests hold the two together); complex pairs stay interleaved, with a lane swap to meet the partner.
/// </summary>
public static unsafe class HostSimd
{
    /// <summary>
    /// The width of the lane formulas' registers in bits: the widest this machine accelerates (512, 256 or 128), or
    /// <c>GATELOOP_LANE_BITS</c> where set, which runs a width the processor lacks in software so that one machine
    /// tests them all. Read once, at start-up.
    /// </summary>
    public static int LaneBits { get; } = Environment.GetEnvironmentVariable("GATELOOP_LANE_BITS") switch
    {
        null or "" => Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : 128,
        "128" => 128,
        "256" => 256,
        "512" => 512,
        var other => throw new UserInputException($"GATELOOP_LANE_BITS must be 128, 256 or 512, or unset for the widest this machine accelerates; got '{other}'"),
    };

    static readonly Vector256<float> One = Vector256<float>.One,
        // Real lanes (even) keep, imaginary lanes (odd) drop.
        RealLanes = Vector256.Create(1f, 0, 1, 0, 1, 0, 1, 0);

    static readonly Vector256<int> SwapPairs = Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6),
        RealParts = Vector256.Create(0, 0, 2, 2, 4, 4, 6, 6), ImaginaryParts = Vector256.Create(1, 1, 3, 3, 5, 5, 7, 7),
        EvenLanes = Vector256.Create(0, 2, 4, 6, 0, 2, 4, 6), Spread = Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3);

    static readonly Vector256<float> MinusPlus = Vector256.Create(-1f, 1, -1, 1, -1, 1, -1, 1), PlusMinus = -MinusPlus;

    // The scans and column sums below keep 256-bit registers: they walk groups of 8 channels, which every width
    // they take (a multiple of 8) divides into.
    const int Lanes = 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Sigmoid(Vector256<float> x) => One / (One + Exp(new LaneVector256(-x)).Value);

    /// <summary>
    /// e^x within 2 ulp for x in [−87.3, 88.4] (clamped outside, where float underflows or overflows anyway):
    /// x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by its degree-7 Taylor polynomial (truncation below 1e-8), 2^n
    /// written into the exponent bits. The same bits at every width. Vector256.Exp is several times slower here
    /// (it widens to double).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Exp<TV>(TV x) where TV : struct, ILaneVector<TV>
    {
        x = TV.Min(TV.Max(x, TV.Create(-87.33f)), TV.Create(88.37f));
        var n = TV.Round(x * TV.Create(1.44269504f));
        var r = TV.FusedMultiplyAdd(-n, TV.Create(1.42860677e-6f), TV.FusedMultiplyAdd(-n, TV.Create(0.693145751953125f), x));
        var p = TV.FusedMultiplyAdd(TV.Create(1f / 5040), r, TV.Create(1f / 720));
        p = TV.FusedMultiplyAdd(p, r, TV.Create(1f / 120));
        p = TV.FusedMultiplyAdd(p, r, TV.Create(1f / 24));
        p = TV.FusedMultiplyAdd(p, r, TV.Create(1f / 6));
        p = TV.FusedMultiplyAdd(p, r, TV.Create(1f / 2));
        p = TV.FusedMultiplyAdd(p, r, TV.Create(1f));
        p = TV.FusedMultiplyAdd(p, r, TV.Create(1f));
        return p * TV.Pow2(n);
    }

    /// <summary>
    /// For complex pairs from…to−1, stored interleaved: x = <typeparamref name="TOp"/> of a, the row of pairs
    /// <paramref name="row"/> that every row of <paramref name="pairsPerRow"/> pairs shares (read as zeros when that
    /// is 0), and c (zeros when empty), four pairs to a register: the host entries of the kernels an op writes as
    /// lane formulas over pairs.
    /// </summary>
    public static void MapPairs<TOp>(int from, int to, int pairsPerRow, ArrayView<float> a, ArrayView<float> row, ArrayView<float> c,
        ArrayView<float> x) where TOp : ILaneOp
    {
        float* pa = Pointer(a), pc = c.Length == 0 ? null : Pointer(c), px = Pointer(x);
        float* pr = pairsPerRow > 0 ? Pointer(row) : null;
        for (int i = 2 * from, end = 2 * to; i < end;)
        {
            int width = pairsPerRow > 0 ? 2 * pairsPerRow : end, k = i % width, n = Math.Min(end - i, width - k);
            Lanewise<TOp>(n, pa + i, pr is null ? null : pr + k, pc is null ? null : pc + i, px + i, null);
            i += n;
        }
    }

    /// <summary>
    /// For indices from…to−1, x (and y) = <typeparamref name="TOp"/> of a, b (and c) lane by lane: the host entries
    /// of the kernels an op writes as lane formulas (its lane struct, generated beside the kernel).
    /// </summary>
    public static void Map<TOp>(int from, int to, ArrayView<float> a, ArrayView<float> x) where TOp : ILaneOp =>
        Lanewise<TOp>(to - from, Pointer(a) + from, null, null, Pointer(x) + from, null);

    /// <inheritdoc cref="Map{TOp}(int, int, ArrayView{float}, ArrayView{float})"/>
    public static void Map<TOp>(int from, int to, ArrayView<float> a, ArrayView<float> b, ArrayView<float> x) where TOp : ILaneOp =>
        Lanewise<TOp>(to - from, Pointer(a) + from, Pointer(b) + from, null, Pointer(x) + from, null);

    /// <inheritdoc cref="Map{TOp}(int, int, ArrayView{float}, ArrayView{float})"/>
    public static void Map<TOp>(int from, int to, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> x, ArrayView<float> y)
        where TOp : ILaneOp =>
        Lanewise<TOp>(to - from, Pointer(a) + from, Pointer(b) + from, Pointer(c) + from, Pointer(x) + from, Pointer(y) + from);

    /// <summary>
    /// For flat indices from…to−1 of a matrix with rows of <paramref name="width"/>, x = <typeparamref name="TOp"/> of a
    /// and the one row <paramref name="row"/> every row shares, row by row so that it is read as contiguous vectors.
    /// </summary>
    public static void MapRows<TOp>(int from, int to, int width, ArrayView<float> a, ArrayView<float> row, ArrayView<float> x) where TOp : ILaneOp
    {
        float* pa = Pointer(a), pr = Pointer(row), px = Pointer(x);
        for (int i = from; i < to;)
        {
            int c = i % width, n = Math.Min(to - i, width - c);
            Lanewise<TOp>(n, pa + i, pr + c, null, px + i, null);
            i += n;
        }
    }

    /// <summary>
    /// A lane operation as a struct with static members, so the JIT specializes and inlines each loop. Inputs a, b,
    /// c; outputs x, y.
    /// </summary>
    public interface ILaneOp
    {
        /// <summary>The outputs of one register of lanes, at any width.</summary>
        static abstract (TV X, TV Y) Apply<TV>(TV a, TV b, TV c) where TV : struct, ILaneVector<TV>;
    }

    /// <summary>
    /// Applies TOp to n lanes of a, b and c (a null input reads zeros), writing its results to x and y (null: not
    /// written), in registers of <see cref="LaneBits"/>; the tail shorter than a register goes through padded
    /// copies, so every element is computed alike.
    /// </summary>
    static void Lanewise<TOp>(int n, float* a, float* b, float* c, float* x, float* y) where TOp : ILaneOp
    {
        if (LaneBits == 512) Lanewise<TOp, LaneVector512>(n, a, b, c, x, y);
        else if (LaneBits == 256) Lanewise<TOp, LaneVector256>(n, a, b, c, x, y);
        else Lanewise<TOp, LaneVector128>(n, a, b, c, x, y);
    }

    static void Lanewise<TOp, TV>(int n, float* a, float* b, float* c, float* x, float* y) where TOp : ILaneOp where TV : struct, ILaneVector<TV>
    {
        int k = 0, count = TV.Count;
        for (; k + count <= n; k += count)
        {
            var (rx, ry) = TOp.Apply(Load<TV>(a, k), Load<TV>(b, k), Load<TV>(c, k));
            rx.Store(x + k);
            if (y is not null) ry.Store(y + k);
        }
        if (k == n) return;
        const int Widest = 16;
        float* ta = stackalloc float[Widest], tb = stackalloc float[Widest], tc = stackalloc float[Widest];
        float* tx = stackalloc float[Widest], ty = stackalloc float[Widest];
        for (int j = 0; j < count; j++)
        {
            bool inside = k + j < n;
            ta[j] = inside && a is not null ? a[k + j] : 0;
            tb[j] = inside && b is not null ? b[k + j] : 0;
            tc[j] = inside && c is not null ? c[k + j] : 0;
        }
        var (qx, qy) = TOp.Apply(TV.Load(ta), TV.Load(tb), TV.Load(tc));
        qx.Store(tx);
        qy.Store(ty);
        for (int j = 0; k + j < n; j++)
        {
            x[k + j] = tx[j];
            if (y is not null) y[k + j] = ty[j];
        }
    }

    // Complex numbers four to a register, interleaved (re, im): x·y, conj(x)·y, the real parts of two registers
    // as one, and four reals placed on the real parts (imaginary parts 0). The scans use the kernels' order of
    // operations, so host and ILGPU results agree exactly.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Times(Vector256<float> x, Vector256<float> y) =>
        Vector256.Shuffle(x, RealParts) * y + Vector256.Shuffle(x, ImaginaryParts) * Vector256.Shuffle(y, SwapPairs) * MinusPlus;

    // add + conj(x)·y, summed in the kernel's order so the results match it to the last bit.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> ConjugateTimes(Vector256<float> x, Vector256<float> y, Vector256<float> add) =>
        add + Vector256.Shuffle(x, RealParts) * y + Vector256.Shuffle(x, ImaginaryParts) * Vector256.Shuffle(y, SwapPairs) * PlusMinus;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Reals(Vector256<float> low, Vector256<float> high) =>
        Vector256.Create(Vector256.Shuffle(low, EvenLanes).GetLower(), Vector256.Shuffle(high, EvenLanes).GetLower());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> OnReals(Vector128<float> values) =>
        Vector256.Shuffle(Vector256.Create(values, values), Spread) * RealLanes;

    // Rows a step apart are a page or more apart, where the hardware prefetchers stop; so the scans ask for the
    // rows they will reach a few steps on, a cache line per 16 lanes.
    const int PrefetchRows = 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Prefetch(float* p)
    {
        if (Sse.IsSupported) Sse.Prefetch0(p);
    }

    /// <summary>Channels per run of the SIMD scans: time outside, the run's groups of 8 inside (whole cache lines per row).</summary>
    const int ScanRun = 64;

    /// <summary>
    /// The max-heads gate-loop scan (complex transition) for lanes from…to−1, whole groups of 8 channels of one
    /// sequence (<paramref name="width"/> channels per row, a multiple of 8). Runs of up to 64 channels walk the
    /// sequence together, each group's 8 complex states in two registers between steps kept in a stack buffer.
    /// Same arithmetic as the kernel's ScanForward: S = a·S + k·v, o = q·Re S, every S stored, the last in carry
    /// (which also holds the first).
    /// </summary>
    public static void ChannelScanForward(int from, int to, int seq, int width, ArrayView<float> qkv, ArrayView<float> a,
        ArrayView<float> o, ArrayView<float> states, ArrayView<float> carry)
    {
        float* pq = Pointer(qkv), pa = Pointer(a), po = Pointer(o), ps = Pointer(states), pc = Pointer(carry);
        for (int first = from, end; first < to; first = end)
        {
            int b = first / width, c0 = first % width;
            end = Math.Min(Math.Min(to, (b + 1) * width), first + ScanRun);
            float* carried = pc + 2L * first; // the run's states live in carry between steps
            for (int t = 0; t < seq; t++)
            {
                long row = (long)b * seq + t;
                for (int c = c0, j = 0; c < c0 + end - first; c += Lanes, j += 2 * Lanes)
                {
                    long pair = (row * width + c) * 2;
                    float* q = pq + row * 3 * width + c;
                    if (t + PrefetchRows < seq && (j & 31) == 0)
                    {
                        float* coming = q + PrefetchRows * 3L * width;
                        Prefetch(coming);
                        Prefetch(coming + width);
                        Prefetch(coming + 2 * width);
                        Prefetch(pa + pair + PrefetchRows * 2L * width);
                        Prefetch(pa + pair + PrefetchRows * 2L * width + 16);
                    }
                    var kv = Vector256.Load(q + width) * Vector256.Load(q + 2 * width);
                    var low = Times(Vector256.Load(pa + pair), Vector256.Load(carried + j)) + OnReals(kv.GetLower());
                    var high = Times(Vector256.Load(pa + pair + Lanes), Vector256.Load(carried + j + Lanes)) + OnReals(kv.GetUpper());
                    low.Store(carried + j);
                    high.Store(carried + j + Lanes);
                    low.Store(ps + pair);
                    high.Store(ps + pair + Lanes);
                    (Vector256.Load(q) * Reals(low, high)).Store(po + row * width + c);
                }
            }
        }
    }

    /// <summary>
    /// The reverse of <see cref="ChannelScanForward"/> (ScanBackward's arithmetic, sequences started from zero):
    /// Ĝ = q·dO + conj(a_next)·Ĝ; dq = Re(S)·dO, dk = Re(Ĝ)·v, dv = Re(Ĝ)·k, da = conj(S_prev)·Ĝ. Ĝ and a_next of
    /// a run live in a stack buffer between steps.
    /// </summary>
    public static void ChannelScanBackward(int from, int to, int seq, int width, ArrayView<float> qkv, ArrayView<float> a,
        ArrayView<float> states, ArrayView<float> dO, ArrayView<float> dQkv, ArrayView<float> da)
    {
        float* pq = Pointer(qkv), pa = Pointer(a), ps = Pointer(states), pdo = Pointer(dO), pdq = Pointer(dQkv), pda = Pointer(da);
        float* g = stackalloc float[2 * ScanRun], next = stackalloc float[2 * ScanRun];
        for (int first = from, end; first < to; first = end)
        {
            int b = first / width, c0 = first % width;
            end = Math.Min(Math.Min(to, (b + 1) * width), first + ScanRun);
            new Span<float>(g, 2 * ScanRun).Clear();
            new Span<float>(next, 2 * ScanRun).Clear();
            for (int t = seq - 1; t >= 0; t--)
            {
                long row = (long)b * seq + t;
                for (int c = c0, j = 0; c < c0 + end - first; c += Lanes, j += 2 * Lanes)
                {
                    long pair = (row * width + c) * 2, offset = row * 3 * width + c;
                    float* q = pq + offset, dq = pdq + offset;
                    if (t >= PrefetchRows && (j & 31) == 0)
                    {
                        float* coming = q - PrefetchRows * 3L * width;
                        Prefetch(coming);
                        Prefetch(coming + width);
                        Prefetch(coming + 2 * width);
                        Prefetch(pa + pair - PrefetchRows * 2L * width);
                        Prefetch(pa + pair - PrefetchRows * 2L * width + 16);
                        Prefetch(ps + pair - (PrefetchRows + 1) * 2L * width);
                        Prefetch(ps + pair - (PrefetchRows + 1) * 2L * width + 16);
                        Prefetch(pdo + (row - PrefetchRows) * width + c);
                    }
                    var dout = Vector256.Load(pdo + row * width + c);
                    var qdo = Vector256.Load(q) * dout;
                    var low = ConjugateTimes(Vector256.Load(next + j), Vector256.Load(g + j), OnReals(qdo.GetLower()));
                    var high = ConjugateTimes(Vector256.Load(next + j + Lanes), Vector256.Load(g + j + Lanes), OnReals(qdo.GetUpper()));
                    low.Store(g + j);
                    high.Store(g + j + Lanes);
                    (Reals(Vector256.Load(ps + pair), Vector256.Load(ps + pair + Lanes)) * dout).Store(dq);
                    var re = Reals(low, high);
                    (re * Vector256.Load(q + 2 * width)).Store(dq + width);
                    (re * Vector256.Load(q + width)).Store(dq + 2 * width);
                    Vector256<float> previousLow = default, previousHigh = default;
                    if (t > 0)
                    {
                        previousLow = Vector256.Load(ps + pair - 2 * width);
                        previousHigh = Vector256.Load(ps + pair - 2 * width + Lanes);
                    }
                    ConjugateTimes(previousLow, low, default).Store(pda + pair);
                    ConjugateTimes(previousHigh, high, default).Store(pda + pair + Lanes);
                    Vector256.Load(pa + pair).Store(next + j);
                    Vector256.Load(pa + pair + Lanes).Store(next + j + Lanes);
                }
            }
        }
    }

    /// <summary>
    /// The SimpleGateLoop scan (plain, not log-space) for lanes from…to−1, whole groups of 8 channels of one
    /// sequence, runs of 64 channels walking the sequence together (from its end when <paramref name="reverse"/>):
    /// a = σ(logit), S = a·S + kv, o = q·S, z left as [q | S | a], the last S in state and Π a multiplied into gate.
    /// </summary>
    public static void SimpleScanForward(int from, int to, int seq, int width, bool reverse, ArrayView<float> z,
        ArrayView<float> initial, ArrayView<float> o, ArrayView<float> gate, ArrayView<float> state)
    {
        float* pz = Pointer(z), pi = Pointer(initial), po = Pointer(o), pg = Pointer(gate), pst = Pointer(state);
        float* run = stackalloc float[2 * ScanRun];
        for (int first = from, end; first < to; first = end)
        {
            int b = first / width, c0 = first % width;
            end = Math.Min(Math.Min(to, (b + 1) * width), first + ScanRun);
            int count = end - first;
            for (int j = 0; j < count; j += Lanes)
            {
                Vector256.Load(pi + first + j).Store(run + 2 * j);
                Vector256.Load(pg + first + j).Store(run + 2 * j + Lanes);
            }
            for (int t = 0; t < seq; t++)
            {
                long row = (long)b * seq + (reverse ? seq - 1 - t : t);
                long ahead = (reverse ? -PrefetchRows : PrefetchRows) * 3L * width;
                for (int j = 0; j < count; j += Lanes)
                {
                    float* k = pz + row * 3 * width + c0 + j;
                    if (t + PrefetchRows < seq && (j & 15) == 0)
                    {
                        Prefetch(k + ahead);
                        Prefetch(k + ahead + width);
                        Prefetch(k + ahead + 2 * width);
                    }
                    var a = Sigmoid(Vector256.Load(k + 2 * width));
                    var sNew = a * Vector256.Load(run + 2 * j) + Vector256.Load(k + width);
                    sNew.Store(run + 2 * j);
                    (Vector256.Load(run + 2 * j + Lanes) * a).Store(run + 2 * j + Lanes);
                    sNew.Store(k + width);
                    a.Store(k + 2 * width);
                    (Vector256.Load(k) * sNew).Store(po + row * width + c0 + j);
                }
            }
            for (int j = 0; j < count; j += Lanes)
            {
                Vector256.Load(run + 2 * j).Store(pst + first + j);
                Vector256.Load(run + 2 * j + Lanes).Store(pg + first + j);
            }
        }
    }

    /// <summary>
    /// The reverse of <see cref="SimpleScanForward"/> over z as it left it: Ĝ = dO·q + a_next·Ĝ; dq = dO·S, dkv = Ĝ,
    /// d(logit) = Ĝ·S_prev·a·(1 − a), S_prev being initial at the first step; dZ is overwritten.
    /// </summary>
    public static void SimpleScanBackward(int from, int to, int seq, int width, bool reverse, ArrayView<float> z,
        ArrayView<float> initial, ArrayView<float> dO, ArrayView<float> dZ)
    {
        float* pz = Pointer(z), pi = Pointer(initial), pdo = Pointer(dO), pdz = Pointer(dZ);
        float* run = stackalloc float[2 * ScanRun];
        long before = reverse ? 3L * width : -3L * width; // the row the forward visited one step earlier
        for (int first = from, end; first < to; first = end)
        {
            int b = first / width, c0 = first % width;
            end = Math.Min(Math.Min(to, (b + 1) * width), first + ScanRun);
            int count = end - first;
            new Span<float>(run, 2 * ScanRun).Clear();
            for (int t = seq - 1; t >= 0; t--)
            {
                long row = (long)b * seq + (reverse ? seq - 1 - t : t);
                long ahead = (reverse ? PrefetchRows : -PrefetchRows) * 3L * width;
                for (int j = 0; j < count; j += Lanes)
                {
                    long offset = row * 3 * width + c0 + j;
                    float* k = pz + offset, dk = pdz + offset;
                    if (t >= PrefetchRows && (j & 15) == 0)
                    {
                        Prefetch(k + ahead);
                        Prefetch(k + ahead + width);
                        Prefetch(k + ahead + 2 * width);
                        Prefetch(pdo + (row + (reverse ? PrefetchRows : -PrefetchRows)) * width + c0 + j);
                    }
                    var d = Vector256.Load(pdo + row * width + c0 + j);
                    var a = Vector256.Load(k + 2 * width);
                    var previous = t > 0 ? Vector256.Load(k + before + width) : Vector256.Load(pi + first + j);
                    var g = d * Vector256.Load(k) + Vector256.Load(run + 2 * j + Lanes) * Vector256.Load(run + 2 * j);
                    g.Store(run + 2 * j);
                    a.Store(run + 2 * j + Lanes);
                    (d * Vector256.Load(k + width)).Store(dk);
                    g.Store(dk + width);
                    (g * previous * a * (One - a)).Store(dk + 2 * width);
                }
            }
        }
    }

    /// <summary>
    /// The first level of LayerNorm's parameter gradients for columns from…to−1 (whole groups of 8) of rows
    /// firstRow…endRow−1 of <paramref name="width"/>: partials[d] = Σ_r dy·x̂, partials[width + d] = Σ_r dy, rows
    /// outside and runs of 64 columns inside, each column summed in row order as the kernel does.
    /// </summary>
    public static void LayerNormParameterPartials(int from, int to, long firstRow, long endRow, int width, ArrayView<float> x,
        ArrayView<float> stats, ArrayView<float> dy, ArrayView<float> partials)
    {
        float* px = Pointer(x), ps = Pointer(stats), pdy = Pointer(dy), pw = Pointer(partials), pb = pw + width;
        float* sums = stackalloc float[2 * ScanRun];
        for (int first = from; first < to; first += ScanRun)
        {
            int count = Math.Min(to - first, ScanRun);
            new Span<float>(sums, 2 * ScanRun).Clear();
            for (long r = firstRow; r < endRow; r++)
            {
                Vector256<float> mean = Vector256.Create(ps[2 * r]), rstd = Vector256.Create(ps[2 * r + 1]);
                for (int j = 0; j < count; j += Lanes)
                {
                    long i = r * width + first + j;
                    var g = Vector256.Load(pdy + i);
                    (Vector256.Load(sums + 2 * j) + g * (Vector256.Load(px + i) - mean) * rstd).Store(sums + 2 * j);
                    (Vector256.Load(sums + 2 * j + Lanes) + g).Store(sums + 2 * j + Lanes);
                }
            }
            for (int j = 0; j < count; j += Lanes)
            {
                Vector256.Load(sums + 2 * j).Store(pw + first + j);
                Vector256.Load(sums + 2 * j + Lanes).Store(pb + first + j);
            }
        }
    }

    /// <summary>
    /// The first level of RMSNorm's γ gradient for columns from…to−1 (whole groups of 8) of rows firstRow…endRow−1:
    /// partials[d] = Σ_r dy·x·invNorm, each column summed in row order.
    /// </summary>
    public static void RmsNormGammaPartials(int from, int to, long firstRow, long endRow, int width, ArrayView<float> x,
        ArrayView<float> invNorm, ArrayView<float> dy, ArrayView<float> partials)
    {
        float* px = Pointer(x), pn = Pointer(invNorm), pdy = Pointer(dy), pd = Pointer(partials);
        float* sums = stackalloc float[ScanRun];
        for (int first = from; first < to; first += ScanRun)
        {
            int count = Math.Min(to - first, ScanRun);
            new Span<float>(sums, ScanRun).Clear();
            for (long r = firstRow; r < endRow; r++)
            {
                var inv = Vector256.Create(pn[r]);
                for (int j = 0; j < count; j += Lanes)
                {
                    long i = r * width + first + j;
                    (Vector256.Load(sums + j) + Vector256.Load(pdy + i) * Vector256.Load(px + i) * inv).Store(sums + j);
                }
            }
            for (int j = 0; j < count; j += Lanes) Vector256.Load(sums + j).Store(pd + first + j);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static TV Load<TV>(float* p, int k) where TV : struct, ILaneVector<TV> => p is null ? default : TV.Load(p + k);

    static float* Pointer(ArrayView<float> view) => (float*)view.LoadEffectiveAddressAsPtr();
}
