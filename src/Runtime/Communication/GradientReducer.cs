using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>
/// Sums a model's gradients over every rank of a data-parallel job. With a bucket size, the last backward of a step
/// (<see cref="Arm"/>) starts an all-reduce whenever the gradients it has finished (<see cref="TransformerModel{T}.GradientsReady"/>:
/// the head, then layer by layer) reach a bucket, so the reduction runs on the communicator's thread while the backward
/// goes on; <see cref="Finish"/> waits for the rest. Without one, all gradients are reduced at once after the backward.
/// On the host backend the gradients are reduced where they lie; a GPU's are copied to host memory and back.
/// </summary>
public sealed unsafe class GradientReducer : IDisposable
{
    readonly TransformerModel<float> model;
    readonly Communicator world;
    readonly long bucket;
    readonly float[]? staging;
    readonly List<(long From, long To, Collective Operation)> started = [];
    long pending; // gradients at and above this offset are final and not yet started; ParameterCount when none are
    bool armed;

    /// <summary>Reduces <paramref name="model"/>'s gradients over <paramref name="world"/>.</summary>
    /// <param name="model">The model whose <see cref="Module{T}.Gradients"/> are summed.</param>
    /// <param name="world">The ranks; for a world of one, nothing is done.</param>
    /// <param name="bucketBytes">Bytes of gradients per all-reduce during the backward; 0 reduces all of them after it.</param>
    public GradientReducer(TransformerModel<float> model, Communicator world, long bucketBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bucketBytes);
        this.model = model;
        this.world = world;
        bucket = Math.Max(1, bucketBytes / sizeof(float));
        Overlapped = bucketBytes > 0;
        pending = model.ParameterCount;
        if (world.Size == 1) return;
        if (!model.Device.IsHost) staging = GC.AllocateArray<float>((int)model.ParameterCount, pinned: true);
        if (Overlapped) model.GradientsReady = Ready;
    }

    /// <summary>Whether reductions start during the backward.</summary>
    public bool Overlapped { get; }

    /// <summary>Seconds the last step's all-reduces took on the communicator's thread, together.</summary>
    public double ReduceSeconds { get; private set; }

    /// <summary>Seconds the last <see cref="Finish"/> waited: the part of the reduction the backward did not hide.</summary>
    public double WaitSeconds { get; private set; }

    /// <summary>The next backward finishes the step's gradients: reduce them as they complete.</summary>
    public void Arm() => armed = Overlapped && world.Size > 1;

    void Ready(long from)
    {
        if (!armed || pending - from < bucket && from > 0) return;
        Start(from, pending);
        pending = from;
    }

    void Start(long from, long to)
    {
        if (from == to) return;
        var gradients = model.Gradients.SubView(from, to - from);
        if (staging is null)
        {
            started.Add((from, to, world.StartAllReduceSum(ArrayViewExtensions.LoadEffectiveAddressAsPtr(gradients), to - from)));
            return;
        }
        // A GPU's kernels may still be writing these gradients; the copy waits for them.
        model.Device.Synchronize();
        gradients.CopyToCPU(staging.AsSpan((int)from, (int)(to - from)));
        fixed (float* host = &staging[from]) started.Add((from, to, world.StartAllReduceSum((nint)host, to - from)));
    }

    /// <summary>Returns when <see cref="Module{T}.Gradients"/> holds the sum over every rank.</summary>
    public void Finish()
    {
        armed = false;
        if (world.Size == 1) return;
        var clock = Stopwatch.StartNew();
        Start(0, pending);
        pending = model.ParameterCount;
        foreach (var (_, _, operation) in started) operation.Wait();
        WaitSeconds = clock.Elapsed.TotalSeconds;
        ReduceSeconds = started.Sum(s => s.Operation.Seconds);
        if (staging is not null)
            foreach (var (from, to, _) in started) model.Gradients.SubView(from, to - from).CopyFromCPU(staging.AsSpan((int)from, (int)(to - from)));
        started.Clear();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (model.GradientsReady == Ready) model.GradientsReady = null;
    }
}
