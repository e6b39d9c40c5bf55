namespace GateLoop.Models;

/// <summary>The default model: shaped like the seed's train.py (max heads, post-norm) at a CPU-friendly width.</summary>
[GateLoopTransformer(NumTokens = 256, Dim = 128, Depth = 4, PostLayerNorm = true)]
public partial class GateLoopSmall;

/// <summary>The seed's enwik8 configuration: Dim 512, Depth 6, 512 heads (one per channel), post-norm.</summary>
[GateLoopTransformer(NumTokens = 256, Dim = 512, Depth = 6, GateLoopHeads = 512, PostLayerNorm = true)]
public partial class Enwik8GateLoop;

/// <summary>A tiny model for smoke tests and quick experiments: Dim 64, Depth 2, max heads, post-norm.</summary>
[GateLoopTransformer(NumTokens = 256, Dim = 64, Depth = 2, PostLayerNorm = true)]
public partial class GateLoopTiny;

/// <summary>
/// The softmax-attention baseline at the default model's size and parameter budget: Dim 128, Depth 4, 6 heads of 30
/// with rotary embeddings, post-norm.
/// </summary>
[GateLoopTransformer(NumTokens = 256, Dim = 128, Depth = 4, PostLayerNorm = true, UseGateLoopedAttn = false, Heads = 6, DimHead = 30,
    RotaryEmbedding = true)]
public partial class AttentionSmall;

/// <summary>The seed's softmax-attention baseline: Dim 512, Depth 6, 8 heads of 64 with rotary embeddings, post-norm.</summary>
[GateLoopTransformer(NumTokens = 256, Dim = 512, Depth = 6, PostLayerNorm = true, UseGateLoopedAttn = false, Heads = 8, DimHead = 64,
    RotaryEmbedding = true)]
public partial class Enwik8Attention;

/// <summary>A SimpleGateLoop token mixer at the seed's width, for long sequences: Dim 512, pre-norm, plain scan.</summary>
[SimpleGateLoop(Dim = 512)]
public partial class LongContextMixer;

/// <summary>
/// The hybrid the seed's author pointed to: the attention baseline with a SimpleGateLoop block at the start of every
/// layer, at gateloop-small's parameter budget (Dim 128, Depth 4, 4 heads of 26, rotary, post-norm).
/// </summary>
[GateLoopTransformer(NumTokens = 256, Dim = 128, Depth = 4, PostLayerNorm = true, UseGateLoopedAttn = false, Heads = 4, DimHead = 26,
    RotaryEmbedding = true, SimpleGateLoopBlocks = true)]
public partial class HybridSmall;
