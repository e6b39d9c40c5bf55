using System.Numerics;
using ILGPU;

namespace GateLoop.Runtime;

/// <summary>
/// Everything a model plans for one (batch, sequence length): the token rows, the logits and their gradient, the
/// per-row loss and the generated class's activations. The generated schedules take it as their argument, so they
/// read the shape they run at from it and from nowhere else.
/// </summary>
/// <typeparam name="T">The model's element type.</typeparam>
public sealed class ModelPlan<T> where T : unmanaged, IFloatingPoint<T>
{
    internal ModelPlan(Device device, int batch, int seq, bool bf16, int vocabulary, Func<Workspace, int, int, bool, object> activations)
    {
        (Batch, Seq, KeepsBf16) = (batch, seq, bf16);
        Workspace = new Workspace(device);
        Inputs = Workspace.Take<int>(Rows, "inputs");
        Targets = Workspace.Take<int>(Rows, "targets");
        Logits = Workspace.Take<T>((long)Rows * vocabulary, "logits");
        LogitGrads = Workspace.Take<T>((long)Rows * vocabulary, "logit gradients");
        LossRows = Workspace.Take<T>(Rows, "loss rows");
        HostLoss = new T[Rows];
        Activations = activations(Workspace, batch, seq, bf16);
    }

    /// <summary>Whether the plan keeps the activations only matrix products read in bf16 (<see cref="GemmInput{T}"/>): a plan for bf16 products.</summary>
    public bool KeepsBf16 { get; }

    /// <summary>Sequences.</summary>
    public int Batch { get; }

    /// <summary>Positions per sequence.</summary>
    public int Seq { get; }

    /// <summary>Batch × sequence length: the number of token rows.</summary>
    public int Rows => Batch * Seq;

    /// <summary>Input tokens [Rows].</summary>
    public ArrayView<int> Inputs { get; }

    /// <summary>Target tokens [Rows] (inputs shifted by one).</summary>
    public ArrayView<int> Targets { get; }

    /// <summary>Logits [Rows × Vocabulary].</summary>
    public ArrayView<T> Logits { get; }

    /// <summary>Gradient of the scaled loss with respect to the logits [Rows × Vocabulary].</summary>
    public ArrayView<T> LogitGrads { get; }

    /// <summary>Per-row cross-entropy [Rows].</summary>
    public ArrayView<T> LossRows { get; }

    /// <summary>The generated class's activations for this shape (its own type, which it casts back to).</summary>
    public object Activations { get; }

    /// <summary>The host's copy of <see cref="LossRows"/>, reused by every read.</summary>
    internal T[] HostLoss { get; }

    /// <summary>Every buffer of the plan, for the memory report and the device check.</summary>
    internal Workspace Workspace { get; }
}
