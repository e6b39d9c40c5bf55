namespace GateLoop.Tests.Shared;

// Tiny declarations covering every branch of the generator: norms, head layouts, gating, sub-LN, ablations,
// checkpointing, the attention baseline. Compiled into the numerics tests in double precision (finite
// differences then resolve gradients to ~1e-9) and into the runtime tests in float (device agreement).

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

/// <summary>Post-norm, max heads, the squared-ReLU feed-forward.</summary>
[GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 2, PostLayerNorm = true, FeedForwardReluSquared = true, FracGradientStateTransition = 0.8)]
public partial class PostReluSquared;

/// <summary>The hybrid: pre-norm attention, 2 heads of 4, with a SimpleGateLoop block in every layer.</summary>
[GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 2, UseGateLoopedAttn = false, Heads = 2, DimHead = 4, SimpleGateLoopBlocks = true)]
public partial class PreHybrid;

/// <summary>The hybrid, post-norm, rotary, no gating.</summary>
[GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 2, UseGateLoopedAttn = false, Heads = 2, DimHead = 4, PostLayerNorm = true,
    RotaryEmbedding = true, AttnAddSwishGating = false, SimpleGateLoopBlocks = true)]
public partial class PostHybrid;
