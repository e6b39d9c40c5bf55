namespace GateLoop.Runtime;

/// <summary>
/// The forward and backward passes of one training step over its micro-batches, adding into the gradients and the
/// loss total (each rank's share scaled by 1/ranks, so the sum over ranks is the global batch's mean). On a GPU with
/// memory for it they run folded, as one pass over all the micro-batches' rows: the same mean loss and gradients, up
/// to the order of float sums, from a quarter of the launches at the seed's accumulation of 4, each with four times
/// the threads. The host runs them one after another, since a pass there gains nothing from more rows and
/// accumulation exists to bound the memory.
/// </summary>
public sealed class MicroBatches
{
    readonly TransformerModel<float> model;
    readonly int batch, count, seq, ranks;
    readonly int[]? folded;

    /// <param name="model">The model trained.</param>
    /// <param name="batch">Sequences per micro-batch on this rank.</param>
    /// <param name="count">Micro-batches per step.</param>
    /// <param name="seq">Predicted positions per sequence.</param>
    /// <param name="ranks">Processes whose losses and gradients are summed.</param>
    public MicroBatches(TransformerModel<float> model, int batch, int count, int seq, int ranks)
    {
        (this.model, this.batch, this.count, this.seq, this.ranks) = (model, batch, count, seq, ranks);
        // Folded only where the larger plan leaves half the device's memory for the rest (weights, moments, the
        // validation's plan).
        if (count > 1 && !model.Device.IsHost && model.PlanBytes(batch * count, seq) <= model.Device.MemoryBytes / 2)
            folded = new int[count * batch * (seq + 1)];
    }

    /// <summary>Whether the micro-batches run as one pass.</summary>
    public bool Folded => folded is not null;

    /// <summary>
    /// Runs the passes of one step. <paramref name="tokens"/> gives micro-batch i's rows on this rank (batch ×
    /// (seq + 1) tokens), called for i = 0, 1, … in order; <paramref name="lastBackward"/> is called just before the
    /// step's last backward starts (to arm the gradients' all-reduce).
    /// </summary>
    public void Run(Func<int, ReadOnlyMemory<int>> tokens, Action lastBackward)
    {
        double scale = 1.0 / (count * ranks);
        if (folded is null)
        {
            for (int i = 0; i < count; i++)
            {
                model.ForwardAccumulate(tokens(i).Span, batch, seq, gradScale: scale, lossWeight: scale);
                if (i == count - 1) lastBackward();
                model.Backward();
            }
            return;
        }
        int rows = batch * (seq + 1);
        for (int i = 0; i < count; i++) tokens(i).Span.CopyTo(folded.AsSpan(i * rows, rows));
        // The mean over count micro-batches of equal size is the mean over their rows, so the scale is 1/ranks.
        model.ForwardAccumulate(folded, batch * count, seq, gradScale: 1.0 / ranks, lossWeight: 1.0 / ranks);
        lastBackward();
        model.Backward();
    }
}
