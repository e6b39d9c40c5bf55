using System;
using System.Collections.Generic;

namespace GateLoop.Numerics.Tests.Reference;

/// <summary>
/// The shape of a GateLoop transformer as the double-precision reference sees it.
/// <paramref name="Heads"/> (H) and <paramref name="DimInner"/> (I) are already resolved;
/// each head has P = I / H channels.
/// </summary>
public sealed record ReferenceConfig(
    int NumTokens,
    int Dim,
    int Depth,
    int Heads,
    int DimInner,
    int FeedForwardMult,
    bool SwishGating,
    bool PostLayerNorm,
    bool SubLayerNorm,
    bool AblateComplex,
    bool AblateStateTransition,
    bool UseGateLoopedAttn = true,
    bool RotaryEmbedding = false,
    bool DataDependentRelPos = false,
    bool SoftmaxNormalize = true,
    bool FeedForwardReluSquared = false,
    bool SimpleGateLoopBlocks = false)
{
    /// <summary>P = I / H, the channels per head.</summary>
    public int HeadDim => DimInner / Heads;

    /// <summary>Dim · FeedForwardMult, the feed-forward hidden width.</summary>
    public int FeedForwardDim => Dim * FeedForwardMult;

    /// <summary><c>to_out.weight</c> exists iff I ≠ Dim or swish gating is on (always, with a bias, for attention).</summary>
    public bool HasOutputProjection => !UseGateLoopedAttn || DimInner != Dim || SwishGating;

    /// <summary>Throws if the sizes are not a valid model.</summary>
    public void Validate()
    {
        if (NumTokens <= 0 || Dim <= 0 || Depth <= 0 || Heads <= 0 || DimInner <= 0 || FeedForwardMult <= 0)
            throw new ArgumentException($"All sizes must be positive: {this}");
        if (DimInner % Heads != 0)
            throw new ArgumentException($"DimInner ({DimInner}) must be divisible by Heads ({Heads}).");
    }

    /// <summary>Every tensor, with its PyTorch state_dict name and shape.</summary>
    public IEnumerable<(string Name, int[] Shape)> Parameters()
    {
        foreach (var spec in ParameterSpecs())
            yield return (spec.Name, spec.Shape);
    }

    /// <summary>How a tensor is initialized by <see cref="ReferenceTransformer.RandomParameters"/>.</summary>
    internal enum ParameterKind
    {
        Embedding,
        LinearWeight,
        LinearBias,
        NormScale,
        NormBias,
        RotaryFrequencies,
    }

    internal readonly record struct ParameterSpec(string Name, int[] Shape, ParameterKind Kind, int FanIn);

    internal IEnumerable<ParameterSpec> ParameterSpecs()
    {
        Validate();
        int d = Dim, i = DimInner, h = Heads, f = FeedForwardDim;

        yield return new("token_emb.weight", [NumTokens, d], ParameterKind.Embedding, 0);

        for (int layer = 0; layer < Depth; layer++)
        {
            // A hybrid's layer is [SimpleGateLoop block, mixer block, feed-forward block].
            int first = SimpleGateLoopBlocks ? 1 : 0;
            string mixer = $"layers.{layer}.{first}";
            string ff = $"layers.{layer}.{first + 1}";
            if (SimpleGateLoopBlocks)
            {
                yield return new($"layers.{layer}.0.fn.to_qkva.0.weight", [3 * d, d], ParameterKind.LinearWeight, d);
                foreach (var norm in BlockNorm($"layers.{layer}.0"))
                    yield return norm;
            }

            if (!UseGateLoopedAttn)
            {
                // The seed's CausalFullAttention (rotary frequencies are a frozen parameter of its state_dict).
                if (RotaryEmbedding)
                    yield return new($"{mixer}.fn.rotary_emb.freqs", [HeadDim / 2], ParameterKind.RotaryFrequencies, 0);
                yield return new($"{mixer}.fn.to_qkv.0.weight", [3 * i, d], ParameterKind.LinearWeight, d);
                if (DataDependentRelPos)
                    yield return new($"{mixer}.fn.to_a.0.weight", [i, d], ParameterKind.LinearWeight, d);
                if (SwishGating)
                    yield return new($"{mixer}.fn.to_gates.0.weight", [i, d], ParameterKind.LinearWeight, d);
                yield return new($"{mixer}.fn.to_out.1.weight", [d, i], ParameterKind.LinearWeight, i);
                yield return new($"{mixer}.fn.to_out.1.bias", [d], ParameterKind.LinearBias, i);
                foreach (var norm in BlockNorm(mixer))
                    yield return norm;
                foreach (var t in FeedForwardSpecs(ff, d, f))
                    yield return t;
                continue;
            }
            yield return new($"{mixer}.fn.to_qkv.weight", [3 * i, d], ParameterKind.LinearWeight, d);
            yield return new($"{mixer}.fn.to_a.0.weight", [2 * h, d], ParameterKind.LinearWeight, d);
            yield return new($"{mixer}.fn.to_a.0.bias", [2 * h], ParameterKind.LinearBias, d);
            if (SubLayerNorm)
            {
                yield return new($"{mixer}.fn.maybe_sub_ln.weight", [i], ParameterKind.NormScale, 0);
                yield return new($"{mixer}.fn.maybe_sub_ln.bias", [i], ParameterKind.NormBias, 0);
            }
            if (SwishGating)
                yield return new($"{mixer}.fn.to_gates.0.weight", [i, d], ParameterKind.LinearWeight, d);
            if (HasOutputProjection)
                yield return new($"{mixer}.fn.to_out.weight", [d, i], ParameterKind.LinearWeight, i);
            foreach (var norm in BlockNorm(mixer))
                yield return norm;

            foreach (var t in FeedForwardSpecs(ff, d, f))
                yield return t;
        }

        if (PostLayerNorm)
        {
            yield return new("to_logits.weight", [NumTokens, d], ParameterKind.LinearWeight, d);
        }
        else
        {
            yield return new("to_logits.0.gamma", [d], ParameterKind.NormScale, 0);
            yield return new("to_logits.1.weight", [NumTokens, d], ParameterKind.LinearWeight, d);
        }
    }

    private IEnumerable<ParameterSpec> FeedForwardSpecs(string ff, int d, int f)
    {
        yield return new($"{ff}.fn.0.weight", [f, d], ParameterKind.LinearWeight, d);
        yield return new($"{ff}.fn.0.bias", [f], ParameterKind.LinearBias, d);
        yield return new($"{ff}.fn.2.weight", [d, f], ParameterKind.LinearWeight, f);
        yield return new($"{ff}.fn.2.bias", [d], ParameterKind.LinearBias, f);
        foreach (var norm in BlockNorm(ff))
            yield return norm;
    }

    private IEnumerable<ParameterSpec> BlockNorm(string block)
    {
        if (PostLayerNorm)
        {
            yield return new($"{block}.norm.weight", [Dim], ParameterKind.NormScale, 0);
            yield return new($"{block}.norm.bias", [Dim], ParameterKind.NormBias, 0);
        }
        else
        {
            yield return new($"{block}.norm.gamma", [Dim], ParameterKind.NormScale, 0);
        }
    }
}
