using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>One quantity computed on a device and on the host backend: how far apart they are, and how far they may be.</summary>
/// <param name="Section">What was checked: scalar math, primitives, or a model's name.</param>
/// <param name="Name">The probe, primitive, buffer or tensor.</param>
/// <param name="Error">Relative error of the device's values against the host's (see <see cref="DeviceCheck.RelativeError(ReadOnlySpan{double}, ReadOnlySpan{double})"/>).</param>
/// <param name="Tolerance">The largest error float rounding explains.</param>
/// <param name="Meaning">What a buffer's name stands for (from its model's memory plan); null where the name says it.</param>
public sealed record CheckResult(string Section, string Name, double Error, double Tolerance, string? Meaning = null)
{
    /// <summary>Whether the error is within the tolerance (a NaN error never is).</summary>
    public bool Passed => Error <= Tolerance;

    /// <summary>The error as a fraction of the tolerance: 0 for none, above 1 when failed, infinite for NaN or any error past a zero tolerance.</summary>
    public double OfTolerance => Error == 0 ? 0 : Tolerance > 0 && !double.IsNaN(Error) ? Error / Tolerance : double.PositiveInfinity;
}

/// <summary>
/// The device against the host backend on small shapes: scalar math, the GEMM and copy primitives, and whole
/// models with the same weights and tokens, buffer by buffer. The host backend is verified against independent
/// references in double; a device that disagrees with it (a miscompiled kernel, a broken library) is caught here
/// before it trains garbage.
/// </summary>
/// <remarks>
/// Tolerances are relative L2 errors, ‖device − host‖ / ‖host‖. Forward values (activations, logits, loss) pass
/// through a few layers of float GEMMs summed in another order (cuBLAS or the tiled kernel against the host's
/// blocked SIMD loops): each rounding is 6e-8 relative and sums of k terms drift by about √k of them, so 1e-4
/// leaves a margin of ~100 over what the tiny models show. Gradients add the reverse path and sums over every row,
/// and some tensors' gradients nearly cancel (LayerNorm's), so they get 1e-3. A miscompiled kernel shows errors of
/// 1e-1 to 1 (the two ILGPU faults found on an H200 gave 1.0 and 0.92).
/// </remarks>
public static class DeviceCheck
{
    /// <summary>Tolerance for forward values: activations, logits, loss, a layer's output.</summary>
    public const double ForwardTolerance = 1e-4;

    /// <summary>Tolerance for backward values: gradient buffers and parameter gradients.</summary>
    public const double GradientTolerance = 1e-3;

    /// <summary>Tolerance for single GEMMs, column sums and an optimizer step on identical inputs.</summary>
    public const double PrimitiveTolerance = 1e-5;

    /// <summary>
    /// ‖device − host‖₂ / ‖host‖₂ (the absolute norm when the host's is zero); infinities that agree count as equal,
    /// a NaN on either side as infinitely far.
    /// </summary>
    public static double RelativeError(ReadOnlySpan<double> device, ReadOnlySpan<double> host)
    {
        if (device.Length != host.Length) return double.PositiveInfinity;
        double diff = 0, norm = 0;
        for (int i = 0; i < host.Length; i++)
        {
            double d = device[i], h = host[i];
            if (double.IsNaN(d) || double.IsNaN(h)) return double.PositiveInfinity;
            if (double.IsInfinity(h) || double.IsInfinity(d))
            {
                if (d != h) return double.PositiveInfinity;
                continue;
            }
            diff += (d - h) * (d - h);
            norm += h * h;
        }
        return norm > 0 ? Math.Sqrt(diff / norm) : Math.Sqrt(diff);
    }

    static double[] Doubles(ReadOnlySpan<float> values)
    {
        var result = new double[values.Length];
        for (int i = 0; i < values.Length; i++) result[i] = values[i];
        return result;
    }

    static double RelativeError(ReadOnlySpan<float> device, ReadOnlySpan<float> host) => RelativeError(Doubles(device), Doubles(host));

    static float[] Read(ArrayView<float> view)
    {
        var host = new float[view.Length];
        view.CopyToCPU(host);
        return host;
    }

    static float[] Uniform(Rng rng, long length, double scale = 1)
    {
        var values = new float[length];
        for (long i = 0; i < length; i++) values[i] = (float)((2 * rng.NextDouble() - 1) * scale);
        return values;
    }

    /// <summary>Scalar math in a kernel on <paramref name="device"/> against .NET, per <see cref="ProbeKernels.Probes"/>.</summary>
    public static IReadOnlyList<CheckResult> Scalars(Device device)
    {
        var rng = new Rng(1);
        // Signs, zero, values either side of the ones the kernels meet, and the edges of exp's float range.
        float[] fixedX = [-2.5f, -1, -0.3f, 0, 0.3f, 1, 2.5f, 7, 1e-3f, -1e-3f, 80, -80, 0.5f, -0.5f, 1.5f, -1.5f];
        float[] x = [.. fixedX, .. Uniform(rng, 48, 20)];
        float[] y = [1, -1, 2, -3, 0.5f, -0.5f, 4, -4, .. Uniform(rng, x.Length - 8, 5).Select(v => v == 0 ? 1 : v)];
        using var xs = device.Allocate<float>(x.Length);
        using var ys = device.Allocate<float>(y.Length);
        using var output = device.Allocate<float>(ProbeKernels.Probes.Length * x.Length);
        xs.View.CopyFromCPU(x);
        ys.View.CopyFromCPU(y);
        device.Launch(ProbeKernels.Scalar, ProbeKernels.Host.Scalar, (int)output.Length, xs.View.AsContiguous(), ys.View.AsContiguous(), output.View.AsContiguous());
        var result = Read(output.View);
        var rows = new List<CheckResult>();
        for (int p = 0; p < ProbeKernels.Probes.Length; p++)
        {
            var (name, host, tolerance) = ProbeKernels.Probes[p];
            double worst = 0;
            for (int i = 0; i < x.Length; i++)
            {
                double expected = host(x[i], y[i]), got = result[p * x.Length + i];
                double error = double.IsNaN(got) != double.IsNaN(expected) ? double.PositiveInfinity
                    : double.IsInfinity(expected) || double.IsNaN(expected) ? (got.Equals(expected) ? 0 : double.PositiveInfinity)
                    : Math.Abs(got - expected) / Math.Max(Math.Abs(expected), 1);
                // A float result cannot be closer to the double than its own rounding.
                if (double.IsFinite(expected)) error = Math.Max(0, error - Math.Abs((float)expected - expected) / Math.Max(Math.Abs(expected), 1));
                worst = Math.Max(worst, error);
            }
            rows.Add(new("scalar math", name, worst, tolerance));
        }
        return rows;
    }

    /// <summary>GEMM in every transpose with β 0 and 1, column sums and copies on <paramref name="device"/> against loops in double.</summary>
    public static IReadOnlyList<CheckResult> Primitives(Device device)
    {
        var rows = new List<CheckResult>();
        var rng = new Rng(2);
        // Sizes that fill no tile or vector evenly.
        const int m = 37, n = 29, k = 45;
        foreach (bool transA in new[] { false, true })
        foreach (bool transB in new[] { false, true })
        foreach (float beta in new[] { 0f, 1f })
        {
            float[] a = Uniform(rng, m * k), b = Uniform(rng, k * n), c = Uniform(rng, m * n);
            using var da = device.Allocate<float>(a.Length);
            using var db = device.Allocate<float>(b.Length);
            using var dc = device.Allocate<float>(c.Length);
            da.View.CopyFromCPU(a);
            db.View.CopyFromCPU(b);
            dc.View.CopyFromCPU(c);
            device.Gemm(transA, transB, m, n, k, 0.75f, da.View, db.View, beta, dc.View);
            var expected = new double[m * n];
            for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                    sum += (double)a[transA ? p * m + i : i * k + p] * b[transB ? j * k + p : p * n + j];
                expected[i * n + j] = 0.75 * sum + beta * c[i * n + j];
            }
            rows.Add(new("primitives", $"GEMM {(transA ? "Aᵀ" : "A")}·{(transB ? "Bᵀ" : "B")}, β {beta}", RelativeError(Doubles(Read(dc.View)), expected), PrimitiveTolerance));
        }

        const int sumRows = 70, columns = 37;
        float[] matrix = Uniform(rng, sumRows * columns), start = Uniform(rng, columns);
        using var dm = device.Allocate<float>(matrix.Length);
        using var dst = device.Allocate<float>(columns);
        dm.View.CopyFromCPU(matrix);
        dst.View.CopyFromCPU(start);
        device.ColumnSum(sumRows, columns, dm.View, dst.View, 0.5f);
        var sums = new double[columns];
        for (int j = 0; j < columns; j++)
        {
            sums[j] = start[j];
            for (int r = 0; r < sumRows; r++) sums[j] += 0.5 * matrix[r * columns + j];
        }
        rows.Add(new("primitives", "column sums", RelativeError(Doubles(Read(dst.View)), sums), PrimitiveTolerance));

        // Device-to-device copies of a sub-view, and zeroing: exact.
        using var copy = device.Allocate<float>(matrix.Length);
        dm.View.SubView(columns, 2 * columns).CopyTo(copy.View.SubView(3, 2 * columns));
        var copied = Read(copy.View);
        var expectedCopy = new float[matrix.Length];
        Array.Copy(matrix, columns, expectedCopy, 3, 2 * columns);
        rows.Add(new("primitives", "copy between buffers", RelativeError(copied, expectedCopy), 0));
        dm.MemSetToZero();
        rows.Add(new("primitives", "zeroing", RelativeError(Read(dm.View), new float[matrix.Length]), 0));
        return rows;
    }

    /// <summary>The shape of the model check: two sequences, longer than a chunk of the GPU's chunked scans (32).</summary>
    public const int ModelBatch = 2, ModelSeq = 40;

    /// <summary>
    /// <paramref name="onDevice"/> against <paramref name="onHost"/>, a model of the same class on the host backend,
    /// with the device model's weights and <paramref name="seed"/>'s tokens: the loss, every named buffer of the
    /// activation plan after forward and backward (inputs, logits, activations, gradient buffers), every parameter's
    /// gradient, one Adam step from identical gradients, and the logits of recurrent generation. The device model's
    /// weights are left as they were; its gradients and activations are not.
    /// </summary>
    public static IReadOnlyList<CheckResult> Model(string section, TransformerModel<float> onDevice, TransformerModel<float> onHost, int seed)
    {
        if (onDevice.GetType() != onHost.GetType())
            throw new ArgumentException($"the models differ: {onDevice.GetType().Name} and {onHost.GetType().Name}", nameof(onHost));
        var rows = new List<CheckResult>();
        var weights = onDevice.ReadWeights();
        onHost.WriteWeights(weights);
        var rng = new Rng((ulong)seed);
        var tokens = new int[ModelBatch * (ModelSeq + 1)];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.NextInt(onHost.Vocabulary);

        var losses = new double[2];
        foreach (var (model, slot) in new[] { (onDevice, 0), (onHost, 1) })
        {
            model.ZeroGradients();
            losses[slot] = model.Forward(tokens, ModelBatch, ModelSeq);
            model.Backward();
        }
        rows.Add(new(section, "loss", Math.Abs(losses[0] - losses[1]) / Math.Abs(losses[1]), ForwardTolerance));
        rows.AddRange(Buffers(section, onDevice.PlannedBuffers!, onHost.PlannedBuffers!));
        rows.AddRange(Gradients(section, onDevice, onHost));

        // The optimizer on identical gradients, so only its kernels can differ.
        onDevice.WriteGradients(onHost.ReadGradients());
        using (var deviceAdam = new Adam(onDevice, new AdamOptions(LearningRate: 1e-3)))
        using (var hostAdam = new Adam(onHost, new AdamOptions(LearningRate: 1e-3)))
        {
            deviceAdam.Update();
            hostAdam.Update();
            rows.Add(new(section, "weights after an Adam step", RelativeError(onDevice.ReadWeights(), onHost.ReadWeights()), PrimitiveTolerance));
            rows.Add(new(section, "gradient norm (Adam)", Math.Abs(deviceAdam.ReadGradientNorm() - hostAdam.ReadGradientNorm()) / hostAdam.ReadGradientNorm(), PrimitiveTolerance));
        }
        onDevice.WriteWeights(weights);
        onHost.WriteWeights(weights);

        // Generation: a prompt in one pass, then single steps through the carried state.
        var prompt = tokens.AsSpan(0, ModelBatch * 12).ToArray();
        var outputs = new List<float[]>[] { [], [] };
        foreach (var (model, slot) in new[] { (onDevice, 0), (onHost, 1) })
        {
            using var session = model.StartGeneration(ModelBatch);
            outputs[slot].Add(session.Continue(prompt, 12));
            for (int step = 0; step < 3; step++) outputs[slot].Add(session.Step(tokens.AsSpan(ModelBatch * (12 + step), ModelBatch)));
        }
        rows.Add(new(section, "generation logits (prompt, then 3 steps)",
            RelativeError(outputs[0].SelectMany(o => o).ToArray(), outputs[1].SelectMany(o => o).ToArray()), ForwardTolerance));
        return rows;
    }

    /// <summary>The sequence length of the layer check: beyond two chunks of a layer's chunked scans (64).</summary>
    public const int LayerSeq = 150;

    /// <summary>
    /// <paramref name="onDevice"/> against <paramref name="onHost"/>, a layer of the same class on the host backend,
    /// with the device layer's weights and <paramref name="seed"/>'s input and output gradient: the output, ∂L/∂x,
    /// every named buffer and every parameter's gradient.
    /// </summary>
    public static IReadOnlyList<CheckResult> Layer(string section, SimpleGateLoopLayer<float> onDevice, SimpleGateLoopLayer<float> onHost, int seed)
    {
        if (onDevice.GetType() != onHost.GetType())
            throw new ArgumentException($"the layers differ: {onDevice.GetType().Name} and {onHost.GetType().Name}", nameof(onHost));
        onHost.WriteWeights(onDevice.ReadWeights());
        var rng = new Rng((ulong)seed);
        long length = (long)LayerSeq * onHost.Width;
        float[] x = Uniform(rng, length), dy = Uniform(rng, length);
        var outputs = new (float[] Y, float[] Dx)[2];
        foreach (var (layer, slot) in new[] { (onDevice, 0), (onHost, 1) })
        {
            using var dx = layer.Device.Allocate<float>(length);
            using var dyBuffer = layer.Device.Allocate<float>(length);
            using var xBuffer = layer.Device.Allocate<float>(length);
            using var y = layer.Device.Allocate<float>(length);
            xBuffer.View.CopyFromCPU(x);
            dyBuffer.View.CopyFromCPU(dy);
            layer.ZeroGradients();
            layer.Forward(xBuffer.View, y.View, 1, LayerSeq);
            layer.Backward(dyBuffer.View, dx.View);
            outputs[slot] = (Read(y.View), Read(dx.View));
        }
        var rows = new List<CheckResult>
        {
            new(section, "output", RelativeError(outputs[0].Y, outputs[1].Y), ForwardTolerance),
            new(section, "input gradient", RelativeError(outputs[0].Dx, outputs[1].Dx), GradientTolerance),
        };
        foreach (var (device, host) in onDevice.PlannedBuffers.Zip(onHost.PlannedBuffers)) rows.AddRange(Buffers(section, device, host));
        rows.AddRange(Gradients(section, onDevice, onHost));
        return rows;
    }

    // Forward values are compared at the forward tolerance; gradient buffers (names starting with D, or "… gradients") at the backward one.
    static IEnumerable<CheckResult> Buffers(string section, Workspace device, Workspace host)
    {
        if (device.Named.Count != host.Named.Count)
            throw new InvalidOperationException($"the device planned {device.Named.Count} buffers, the host {host.Named.Count}");
        foreach (var (d, h) in device.Named.Zip(host.Named))
        {
            bool gradient = d.Name.Length > 1 && d.Name[0] == 'D' && char.IsUpper(d.Name[1]) || d.Name.Contains("gradient");
            yield return new(section, d.Name, RelativeError(Values(d.Buffer, d.Offset, d.Length), Values(h.Buffer, h.Offset, h.Length)),
                gradient ? GradientTolerance : ForwardTolerance, d.Meaning);
        }
    }

    static double[] Values(MemoryBuffer buffer, long offset, long length) => buffer switch
    {
        MemoryBuffer1D<float, Stride1D.Dense> f => Doubles(Read(f.View.SubView(offset, length))),
        MemoryBuffer1D<int, Stride1D.Dense> i => ReadInts(i.View.SubView(offset, length)),
        _ => throw new InvalidOperationException($"no comparison for a buffer of {buffer.ElementSize} bytes per element"),
    };

    static double[] ReadInts(ArrayView<int> view)
    {
        var host = new int[view.Length];
        view.CopyToCPU(host);
        return host.Select(v => (double)v).ToArray();
    }

    static IEnumerable<CheckResult> Gradients(string section, Module<float> device, Module<float> host)
    {
        float[] d = device.ReadGradients(), h = host.ReadGradients();
        foreach (var p in host.Parameters)
            yield return new(section, "∂" + p.Name, RelativeError(d.AsSpan((int)p.Offset, (int)p.Length), h.AsSpan((int)p.Offset, (int)p.Length)), GradientTolerance);
    }
}
