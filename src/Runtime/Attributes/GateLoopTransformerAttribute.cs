namespace GateLoop;

/// <summary>
/// Declares a GateLoop transformer language model on a <c>partial</c> class. The GateLoop source
/// generator turns the declaration into specialized forward, backward and scan kernels whose sizes
/// are compile-time constants. Property names mirror the reference PyTorch keyword arguments.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class GateLoopTransformerAttribute : Attribute
{
    /// <summary>Vocabulary size (256 for bytes).</summary>
    public int NumTokens { get; set; }

    /// <summary>Model width.</summary>
    public int Dim { get; set; }

    /// <summary>Number of [mixer, feed-forward] layer pairs.</summary>
    public int Depth { get; set; }

    /// <summary>Gate-loop heads; 0 means one head per inner channel ("max heads").</summary>
    public int GateLoopHeads { get; set; }

    /// <summary>Inner width of the gate-looped attention; 0 means <see cref="Dim"/>.</summary>
    public int DimGateLoopedAttn { get; set; }

    /// <summary>Hidden width of the feed-forward block as a multiple of <see cref="Dim"/>.</summary>
    public int FeedForwardMult { get; set; } = 4;

    /// <summary>The feed-forward activation is relu(x)² (Primer; x-transformers' <c>ff_relu_squared</c>) instead of the exact GELU.</summary>
    public bool FeedForwardReluSquared { get; set; }

    /// <summary>Multiply the mixer output by silu(x·Wgᵀ) before the output projection.</summary>
    public bool AttnAddSwishGating { get; set; } = true;

    /// <summary>Post-norm blocks, LayerNorm(x + f(x)), instead of pre-norm x + f(RMSNorm(x)).</summary>
    public bool PostLayerNorm { get; set; }

    /// <summary>LayerNorm over the merged heads of the gate-looped attention.</summary>
    public bool SubLayerNorm { get; set; }

    /// <summary>Fraction of the gradient that reaches the state-transition projection.</summary>
    public double FracGradientStateTransition { get; set; } = 0.9;

    /// <summary>Drop the imaginary part of the state transition (real gates only).</summary>
    public bool AblateComplex { get; set; }

    /// <summary>Replace the state transition by 1 (a plain cumulative sum).</summary>
    public bool AblateStateTransition { get; set; }

    /// <summary>Recompute the scan states in the backward pass instead of storing them per layer.</summary>
    public bool CheckpointGateLoopedAttn { get; set; } = true;

    /// <summary>Gate-looped attention as the token mixer; false selects the causal softmax-attention baseline.</summary>
    public bool UseGateLoopedAttn { get; set; } = true;

    /// <summary>Attention heads of the softmax-attention baseline.</summary>
    public int Heads { get; set; } = 8;

    /// <summary>Width of each attention head of the baseline.</summary>
    public int DimHead { get; set; } = 64;

    /// <summary>Rotary position embedding (θ = 10000, adjacent pairs) on the baseline's queries and keys.</summary>
    public bool RotaryEmbedding { get; set; }

    /// <summary>
    /// The seed's data-dependent relative positions for the baseline: queries and keys scaled by the real part of
    /// a cumulative product of complex gates (and its inverse).
    /// </summary>
    public bool DataDependentRelPos { get; set; }

    /// <summary>Softmax over the causal scores; when not set, it is on unless <see cref="DataDependentRelPos"/> is.</summary>
    public bool AttnSoftmaxNormalize { get; set; }

    /// <summary>
    /// A hybrid (softmax attention only): every layer begins with a SimpleGateLoop block, the seed's
    /// SimpleGateLoopLayer (without its own norm) inside the layer's pre- or post-norm residual wrapper.
    /// </summary>
    public bool SimpleGateLoopBlocks { get; set; }
}
