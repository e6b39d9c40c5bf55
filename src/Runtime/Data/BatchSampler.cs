namespace GateLoop.Runtime;

/// <summary>
/// Draws training batches as the seed does: each row is a window of <c>seq + 1</c> consecutive bytes starting at a
/// uniformly random offset of the split (inputs are the first <c>seq</c>, targets the last <c>seq</c>).
/// </summary>
public sealed class BatchSampler
{
    readonly ReadOnlyMemory<byte> data;
    readonly Rng rng;

    /// <summary>Creates a sampler over one split.</summary>
    /// <param name="data">The split's bytes.</param>
    /// <param name="splitName">The split's name for messages, e.g. <c>train</c>.</param>
    /// <param name="batchSize">Rows per batch.</param>
    /// <param name="seqLen">Predicted positions per row; a row holds <paramref name="seqLen"/> + 1 bytes.</param>
    /// <param name="rng">The random stream that picks the windows; the caller saves its state to resume.</param>
    /// <exception cref="UserInputException">The split is shorter than one window.</exception>
    public BatchSampler(ReadOnlyMemory<byte> data, string splitName, int batchSize, int seqLen, Rng rng)
    {
        ArgumentNullException.ThrowIfNull(splitName);
        ArgumentNullException.ThrowIfNull(rng);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seqLen);
        if (data.Length < (long)seqLen + 1)
            throw new UserInputException(
                $"data shorter than one window of BatchSampler(seqLen) {seqLen}: the {splitName} split has {data.Length:N0} bytes, a window needs seq+1 = {seqLen + 1L:N0}; " +
                "use a smaller BatchSampler(seqLen) or a bigger file");
        this.data = data;
        this.rng = rng;
        BatchSize = batchSize;
        SeqLen = seqLen;
    }

    /// <summary>Rows per batch.</summary>
    public int BatchSize { get; }

    /// <summary>Predicted positions per row.</summary>
    public int SeqLen { get; }

    /// <summary>Bytes per row: <see cref="SeqLen"/> + 1.</summary>
    public int WindowLength => SeqLen + 1;

    /// <summary>
    /// Fills <paramref name="tokens"/> (row-major, <see cref="BatchSize"/> × <see cref="WindowLength"/>) with
    /// byte values 0..255 of fresh random windows; draws one number from the random stream per row.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="tokens"/> has the wrong length.</exception>
    public void Fill(Span<int> tokens)
    {
        var window = WindowLength;
        if (tokens.Length != (long)BatchSize * window)
            throw new ArgumentException($"expected {BatchSize} × {window} tokens, got {tokens.Length}", nameof(tokens));
        var bytes = data.Span;
        for (var row = 0; row < BatchSize; row++)
        {
            // Every start in [0, len − seq − 1] keeps the whole window inside the split.
            var start = rng.NextInt(bytes.Length - SeqLen);
            var source = bytes.Slice(start, window);
            var target = tokens.Slice(row * window, window);
            for (var i = 0; i < window; i++)
                target[i] = source[i];
        }
    }
}
