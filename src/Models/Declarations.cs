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
