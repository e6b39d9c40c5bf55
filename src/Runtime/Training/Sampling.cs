namespace GateLoop.Runtime;

/// <summary>The seed's sampling: keep the top ⌈(1 − threshold)·vocab⌉ logits, then Gumbel-max at a temperature.</summary>
public static class Sampling
{
    /// <summary>Draws one token from <paramref name="logits"/>.</summary>
    /// <param name="logits">One row of logits.</param>
    /// <param name="temperature">Divides the logits; near 0 approaches greedy decoding.</param>
    /// <param name="topKThreshold">0.9 keeps the top 10% of the vocabulary.</param>
    /// <param name="rng">The random stream.</param>
    /// <exception cref="UserInputException">Every logit is NaN.</exception>
    public static int Sample(ReadOnlySpan<float> logits, double temperature, double topKThreshold, Rng rng)
    {
        int k = Math.Max(1, (int)Math.Ceiling((1 - topKThreshold) * logits.Length));
        // The k-th largest logit is the cut; ties at the cut stay in, as torch.topk keeps exactly k but any of them.
        var sorted = logits.ToArray();
        Array.Sort(sorted);
        float cut = sorted[^k];
        int best = -1;
        double bestScore = double.NegativeInfinity, t = Math.Max(temperature, 1e-10);
        int kept = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            if (logits[i] < cut || kept == k) continue;
            kept++;
            double u = Math.Max(rng.NextDouble(), 1e-20);
            double score = logits[i] / t - Math.Log(-Math.Log(u));
            if (score > bestScore)
            {
                bestScore = score;
                best = i;
            }
        }
        // Only NaN logits leave no candidate; a token drawn from them would be noise.
        if (best < 0)
            throw new UserInputException("the model's logits are not finite (NaN) here, so no token can be drawn: its weights overflow on this text; use an earlier checkpoint");
        return best;
    }

    /// <summary>
    /// Continues <paramref name="prompt"/> by <paramref name="length"/> tokens with the recurrent path: the prompt is
    /// processed in parallel passes (see <see cref="GenerationSession{T}.Continue"/>), then each new token costs one
    /// step. <paramref name="emit"/> receives each token as it is drawn.
    /// </summary>
    /// <exception cref="UserInputException">The prompt is empty, or the logits are not finite (nothing is emitted for that position).</exception>
    public static void Generate(TransformerModel<float> model, ReadOnlySpan<int> prompt, int length, double temperature,
        double topKThreshold, Rng rng, Action<int> emit, CancellationToken cancel = default)
    {
        if (prompt.Length == 0) throw new UserInputException("the prompt is empty; give at least one byte to start from");
        using var session = model.StartGeneration(1);
        float[] logits = session.Continue(prompt, prompt.Length);
        for (int i = 0; i < length && !cancel.IsCancellationRequested; i++)
        {
            int next = Sample(logits, temperature, topKThreshold, rng);
            emit(next);
            if (i + 1 < length) logits = session.Step([next]);
        }
    }
}
