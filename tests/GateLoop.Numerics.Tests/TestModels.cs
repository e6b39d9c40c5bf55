using GateLoop.Numerics.Tests.Reference;

namespace GateLoop.Numerics.Tests;

// Tiny declarations covering every branch of the generator: norms, head layouts, gating, sub-LN, ablations,
// checkpointing. This project compiles them in double precision (GateLoopPrecision), so finite differences
// resolve gradients to ~1e-9.

/// <summary>Pre-norm, max heads (P = 1), swish gating, checkpointed scan.</summary>
[GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 2, FracGradientStateTransition = 0.7)]
public partial class PreMaxHeads;

/// <summary>Pre-norm, 6 heads of 2 over an inner width of 12, sub-LayerNorm, no gating, stored states.</summary>
[GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 2, DimGateLoopedAttn = 12, GateLoopHeads = 6, SubLayerNorm = true,
    AttnAddSwishGating = false, CheckpointGateLoopedAttn = false)]
public partial class PreHeadsSubNorm;

/// <summary>Post-norm, 2 heads of 4, gating and sub-LayerNorm, stored states.</summary>
[GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 2, GateLoopHeads = 2, SubLayerNorm = true, PostLayerNorm = true,
    CheckpointGateLoopedAttn = false)]
public partial class PostHeadsGated;

/// <summary>Post-norm, no gating and no output projection, both ablations.</summary>
[GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 2, PostLayerNorm = true, AttnAddSwishGating = false,
    AblateComplex = true, AblateStateTransition = true)]
public partial class PostAblated;

/// <summary>Pre-norm, max heads, no gating and no output projection, real gates only (AblateComplex).</summary>
[GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 1, AttnAddSwishGating = false, AblateComplex = true)]
public partial class PreRealGates;

/// <summary>Softmax-attention baseline, pre-norm, rotary, gating, 2 heads of 4.</summary>
[GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 2, UseGateLoopedAttn = false, Heads = 2, DimHead = 4, RotaryEmbedding = true,
    FracGradientStateTransition = 0.7)]
public partial class AttnRotary;

/// <summary>Attention baseline, post-norm, data-dependent relative positions (so no softmax by default), no gating.</summary>
[GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 2, UseGateLoopedAttn = false, Heads = 2, DimHead = 6, DataDependentRelPos = true,
    PostLayerNorm = true, AttnAddSwishGating = false, FracGradientStateTransition = 0.6)]
public partial class AttnRelPos;

/// <summary>Attention baseline with relative positions and softmax, rotary, real gates only.</summary>
[GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 1, UseGateLoopedAttn = false, Heads = 1, DimHead = 8, DataDependentRelPos = true,
    AttnSoftmaxNormalize = true, RotaryEmbedding = true, AblateComplex = true)]
public partial class AttnRelPosSoftmax;

/// <summary>Each test model with the reference configuration that describes the same network.</summary>
public static class TestModels
{
    public sealed record Case(string Name, ReferenceConfig Config, double Frac, Func<Runtime.Device, Runtime.TransformerModel<double>> Create)
    {
        public override string ToString() => Name;
    }

    public static readonly Case[] All =
    [
        new(nameof(PreMaxHeads), new(11, 8, 2, 8, 8, 4, SwishGating: true, PostLayerNorm: false, SubLayerNorm: false, AblateComplex: false, AblateStateTransition: false), 0.7, d => new PreMaxHeads(d)),
        new(nameof(PreHeadsSubNorm), new(11, 8, 2, 6, 12, 4, SwishGating: false, PostLayerNorm: false, SubLayerNorm: true, AblateComplex: false, AblateStateTransition: false), 0.9, d => new PreHeadsSubNorm(d)),
        new(nameof(PostHeadsGated), new(11, 8, 2, 2, 8, 4, SwishGating: true, PostLayerNorm: true, SubLayerNorm: true, AblateComplex: false, AblateStateTransition: false), 0.9, d => new PostHeadsGated(d)),
        new(nameof(PostAblated), new(11, 8, 2, 8, 8, 4, SwishGating: false, PostLayerNorm: true, SubLayerNorm: false, AblateComplex: true, AblateStateTransition: true), 0.9, d => new PostAblated(d)),
        new(nameof(PreRealGates), new(11, 8, 1, 8, 8, 4, SwishGating: false, PostLayerNorm: false, SubLayerNorm: false, AblateComplex: true, AblateStateTransition: false), 0.9, d => new PreRealGates(d)),
        new(nameof(AttnRotary), new(11, 8, 2, 2, 8, 4, SwishGating: true, PostLayerNorm: false, SubLayerNorm: false, AblateComplex: false, AblateStateTransition: false,
            UseGateLoopedAttn: false, RotaryEmbedding: true), 0.7, d => new AttnRotary(d)),
        new(nameof(AttnRelPos), new(11, 8, 2, 2, 12, 4, SwishGating: false, PostLayerNorm: true, SubLayerNorm: false, AblateComplex: false, AblateStateTransition: false,
            UseGateLoopedAttn: false, DataDependentRelPos: true, SoftmaxNormalize: false), 0.6, d => new AttnRelPos(d)),
        new(nameof(AttnRelPosSoftmax), new(11, 8, 1, 1, 8, 4, SwishGating: true, PostLayerNorm: false, SubLayerNorm: false, AblateComplex: true, AblateStateTransition: false,
            UseGateLoopedAttn: false, RotaryEmbedding: true, DataDependentRelPos: true, SoftmaxNormalize: true), 0.9, d => new AttnRelPosSoftmax(d)),
    ];

    public static TheoryData<string> Names() => new(All.Select(c => c.Name));

    public static Case Get(string name) => All.Single(c => c.Name == name);
}
