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
        double topKThreshold, Rng rng, Action<int> emit, CancellationToken cancel = default) =>
        Generate(model, prompt, length, temperature, topKThreshold, [rng], (_, token) => emit(token), cancel);

    /// <summary>
    /// Continues <paramref name="prompt"/> in one stream per element of <paramref name="rngs"/>, all stepped together
    /// through one <see cref="GenerationSession{T}"/>: every step reads each weight matrix once for all the streams
    /// (one product over their rows). Stream i draws from rngs[i] alone, so where a row's logits do not depend on
    /// the rows beside it (<see cref="InferenceWeights{T}.RowByRow"/> on the host) it draws what a run of its own with
    /// that generator would. <paramref name="emit"/> receives (stream, token) as each is drawn, the streams in order.
    /// </summary>
    /// <exception cref="UserInputException">The prompt is empty, or the logits are not finite (nothing is emitted for that position).</exception>
    public static void Generate(TransformerModel<float> model, ReadOnlySpan<int> prompt, int length, double temperature,
        double topKThreshold, IReadOnlyList<Rng> rngs, Action<int, int> emit, CancellationToken cancel = default)
    {
        if (prompt.Length == 0) throw new UserInputException("the prompt is empty; give at least one byte to start from");
        int streams = rngs.Count, vocabulary = model.Vocabulary;
        using var session = model.StartGeneration(streams);
        var prompts = new int[streams * prompt.Length];
        for (int b = 0; b < streams; b++) prompt.CopyTo(prompts.AsSpan(b * prompt.Length));
        float[] logits = session.Continue(prompts, prompt.Length);
        var next = new int[streams];
        for (int i = 0; i < length && !cancel.IsCancellationRequested; i++)
        {
            for (int b = 0; b < streams; b++)
            {
                next[b] = Sample(logits.AsSpan(b * vocabulary, vocabulary), temperature, topKThreshold, rngs[b]);
                emit(b, next[b]);
            }
            if (i + 1 < length) logits = session.Step(next);
        }
    }
}
