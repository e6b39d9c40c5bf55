namespace GateLoop.Runtime;

/// <summary>The result of an evaluation: mean cross-entropy in nats, bits per character, predicted positions.</summary>
public sealed record EvalResult(double Loss, double Bpc, long Tokens);

/// <summary>
/// Loss over a whole split: consecutive windows of seq+1 bytes with stride seq (the tail that does not fill a
/// window is dropped), so every position after the first is predicted exactly once.
/// </summary>
public static class Evaluation
{
    /// <summary>Evaluates <paramref name="data"/> in batches of <paramref name="batch"/> windows.</summary>
    /// <exception cref="UserInputException">The data is shorter than one window, or the loss is not finite.</exception>
    public static EvalResult Run(TransformerModel<float> model, ReadOnlySpan<byte> data, int seq, int batch = 8,
        Action<long, long>? progress = null)
    {
        long windows = (data.Length - 1) / seq;
        if (windows <= 0)
            throw new UserInputException($"data shorter than one window: {data.Length:N0} bytes, a window needs seq+1 = {seq + 1:N0}; use a smaller Evaluation.Run(seq)");
        double total = 0;
        var tokens = new int[batch * (seq + 1)];
        for (long w = 0; w < windows; w += batch)
        {
            int rows = (int)Math.Min(batch, windows - w);
            for (int r = 0; r < rows; r++)
            {
                var window = data.Slice((int)((w + r) * seq), seq + 1);
                for (int i = 0; i <= seq; i++) tokens[r * (seq + 1) + i] = window[i];
            }
            total += model.Forward(tokens.AsSpan(0, rows * (seq + 1)), rows, seq) * rows * seq;
            progress?.Invoke(w + rows, windows);
        }
        long count = windows * seq;
        double loss = total / count;
        if (!double.IsFinite(loss))
            throw new UserInputException($"the loss over these {count:N0} positions is not finite ({loss}): the model's weights overflow on this text; use an earlier checkpoint");
        return new EvalResult(loss, loss / Math.Log(2), count);
    }
}
