using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>Adam hyper-parameters (PyTorch semantics); weight decay above 0 makes it AdamW.</summary>
/// <param name="LearningRate">Step size.</param>
/// <param name="Beta1">First-moment decay.</param>
/// <param name="Beta2">Second-moment decay.</param>
/// <param name="Epsilon">Added to √v̂.</param>
/// <param name="WeightDecay">Decoupled weight decay (AdamW), applied to tensors of two or more dimensions only.</param>
/// <param name="ClipNorm">Global gradient-norm limit; 0 disables clipping.</param>
public sealed record AdamOptions(
    double LearningRate = 1e-4, double Beta1 = 0.9, double Beta2 = 0.99, double Epsilon = 1e-8,
    double WeightDecay = 0, double ClipNorm = 0.5);

/// <summary>
/// Adam/AdamW with global-norm clipping, entirely on the device: the gradient norm is reduced in two kernels
/// and the clip factor stays in device memory, so a step needs no host round-trip. Moments live in two flat
/// buffers laid out like the parameters.
/// </summary>
public sealed class Adam : IDisposable
{
    readonly Device device;
    readonly Module<float> model;
    readonly MemoryBuffer1D<float, Stride1D.Dense> m, v, partials, scale;
    readonly (long Offset, long Length, bool Decay)[] ranges;

    /// <summary>Creates zeroed moments for <paramref name="model"/> (a whole model or a single layer).</summary>
    public Adam(Module<float> model, AdamOptions options)
    {
        this.model = model;
        device = model.Device;
        Options = options;
        m = device.Allocate<float>(model.ParameterCount);
        v = device.Allocate<float>(model.ParameterCount);
        partials = device.Allocate<float>(Chunks);
        scale = device.Allocate<float>(2);
        ranges = Ranges(model.Parameters, options.WeightDecay != 0);
    }

    /// <summary>The hyper-parameters.</summary>
    public AdamOptions Options { get; }

    /// <summary>Completed steps (drives the bias correction).</summary>
    public long Step { get; set; }

    int Chunks => (int)((model.ParameterCount + AdamKernels.Chunk - 1) / AdamKernels.Chunk);

    /// <summary>The first and second moments, for checkpoints.</summary>
    public ArrayView<float> FirstMoment => m.View;

    /// <inheritdoc cref="FirstMoment"/>
    public ArrayView<float> SecondMoment => v.View;

    // Contiguous runs of tensors that share the decay rule, so each runs as one launch: without weight decay, one
    // launch for the whole model.
    static (long, long, bool)[] Ranges(IReadOnlyList<ParameterInfo> parameters, bool decays)
    {
        var runs = new List<(long Offset, long Length, bool Decay)>();
        foreach (var p in parameters.OrderBy(p => p.Offset))
        {
            bool decay = decays && p.Shape.Length >= 2;
            if (runs.Count > 0 && runs[^1].Decay == decay && runs[^1].Offset + runs[^1].Length == p.Offset)
                runs[^1] = (runs[^1].Offset, runs[^1].Length + p.Length, decay);
            else runs.Add((p.Offset, p.Length, decay));
        }
        return [.. runs];
    }

    /// <summary>
    /// Clips the accumulated gradients to <see cref="AdamOptions.ClipNorm"/> and applies one update. The
    /// gradient norm before clipping is left on the device; read it with <see cref="ReadGradientNorm"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model's weights are held in reduced precision (<see cref="InferenceWeights{T}.UseWeights"/>).</exception>
    public void Update()
    {
        // A step changes the fp32 weights only; reduced copies made for inference would silently fall behind.
        if (model.Inference.Format != WeightFormat.Fp32)
            throw new InvalidOperationException($"the weights are held in {model.Inference.Format} for inference; train on fp32 weights (load them again)");
        Step++;
        var o = Options;
        var g = model.Gradients.SubView(0, model.ParameterCount);
        device.Launch(AdamKernels.SquaredNormPartials, AdamKernels.Host.SquaredNormPartials, Chunks, g, partials.View.AsContiguous());
        device.Launch(AdamKernels.ClipScale, AdamKernels.Host.ClipScale, 1, partials.View.AsContiguous(), (float)o.ClipNorm, scale.View.AsContiguous());
        float c1 = (float)(1 / (1 - Math.Pow(o.Beta1, Step))), c2 = (float)(1 / (1 - Math.Pow(o.Beta2, Step)));
        foreach (var (offset, length, decay) in ranges)
        {
            var h = new AdamStepParameters((float)o.LearningRate, (float)o.Beta1, (float)o.Beta2, (float)o.Epsilon,
                decay ? (float)o.WeightDecay : 0f, c1, c2);
            device.Launch(AdamKernels.AdamStep, AdamKernels.Host.AdamStep, (int)length, model.Weights.SubView(offset, length), g.SubView(offset, length),
                m.View.AsContiguous().SubView(offset, length), v.View.AsContiguous().SubView(offset, length), scale.View.AsContiguous(), h);
        }
    }

    /// <summary>The global gradient norm (before clipping) of the last <see cref="Update"/>.</summary>
    public double ReadGradientNorm()
    {
        var host = new float[2];
        scale.View.AsContiguous().CopyToCPU(host);
        return host[1];
    }

    /// <summary>Per-step scalars of the update, passed by value to the kernel.</summary>
    public readonly record struct AdamStepParameters(
        float LearningRate, float Beta1, float Beta2, float Epsilon, float WeightDecay, float Correction1, float Correction2);

    /// <inheritdoc />
    public void Dispose()
    {
        m.Dispose();
        v.Dispose();
        partials.Dispose();
        scale.Dispose();
    }
}

/// <summary>The optimizer's kernels; the generator adds their host twins (<c>AdamKernels.Host</c>).</summary>
[HostTwins]
static partial class AdamKernels
{
    /// <summary>Gradient elements per partial sum of the norm.</summary>
    public const int Chunk = 4096;

    /// <summary>partials[c] = Σ g² over chunk c.</summary>
    public static void SquaredNormPartials(Index1D chunk, ArrayView<float> g, ArrayView<float> partials)
    {
        long start = (long)chunk.X * Chunk, end = Math.Min(start + Chunk, g.Length);
        float sum = 0;
        for (long i = start; i < end; i++) sum += g[i] * g[i];
        partials[chunk] = sum;
    }

    /// <summary>scale[0] = min(1, max/(‖g‖ + 1e-6)) as PyTorch's clip_grad_norm_; scale[1] = ‖g‖.</summary>
    public static void ClipScale(Index1D index, ArrayView<float> partials, float maxNorm, ArrayView<float> scale)
    {
        double sum = 0;
        for (long i = 0; i < partials.Length; i++) sum += partials[i];
        float norm = (float)Math.Sqrt(sum);
        float ratio = maxNorm / (norm + 1e-6f);
        scale[0] = maxNorm > 0 ? (ratio > 1f ? 1f : ratio) : 1f; // a select, not Min: a NaN norm must stay NaN (GL0030)
        scale[1] = norm;
    }

    /// <summary>One AdamW update of element i with the clipped gradient g·scale[0].</summary>
    public static void AdamStep(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v,
        ArrayView<float> scale, Adam.AdamStepParameters h)
    {
        float grad = g[i] * scale[0];
        float mi = h.Beta1 * m[i] + (1 - h.Beta1) * grad;
        float vi = h.Beta2 * v[i] + (1 - h.Beta2) * grad * grad;
        m[i] = mi;
        v[i] = vi;
        float pi = p[i] * (1 - h.LearningRate * h.WeightDecay);
        p[i] = pi - h.LearningRate * (mi * h.Correction1) / (MathF.Sqrt(vi * h.Correction2) + h.Epsilon);
    }
}
