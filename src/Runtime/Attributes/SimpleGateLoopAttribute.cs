namespace GateLoop;

/// <summary>
/// Declares a SimpleGateLoop layer on a <c>partial</c> class: the seed's <c>SimpleGateLoopLayer</c>, a token mixer
/// with one real gate per channel, <c>[q | kv | a] = RMSNorm(x)·Wᵀ</c>, <c>S_t = σ(a_t)·S_{t−1} + kv_t</c>,
/// <c>out = q ⊙ S</c>. The GateLoop source generator compiles it into a class deriving from
/// <c>GateLoop.Runtime.SimpleGateLoopLayer&lt;T&gt;</c> whose kernels have <see cref="Dim"/> as a compile-time
/// constant. Property names mirror the seed's keyword arguments (<c>dim</c>, <c>prenorm</c>, <c>post_ln</c>,
/// <c>reverse</c>, <c>use_heinsen</c>).
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class SimpleGateLoopAttribute : Attribute
{
    /// <summary>Channels per position (required).</summary>
    public int Dim { get; set; }

    /// <summary>Normalize the input with RMSNorm (<c>norm.gamma</c>) before the projection.</summary>
    public bool PreNorm { get; set; } = true;

    /// <summary>LayerNorm(Dim) on the output (<c>maybe_post_ln.weight</c> / <c>.bias</c>, eps 1e-5).</summary>
    public bool PostLayerNorm { get; set; }

    /// <summary>Run the recurrence from the last position to the first (flip, mix, flip back). Such a layer cannot take a cache.</summary>
    public bool Reverse { get; set; }

    /// <summary>
    /// Compute the forward scan in log space (Heinsen 2023, the seed's <c>use_heinsen</c>) instead of the plain
    /// recurrence; the backward pass is the same. It is the same function and agrees with the plain scan on
    /// well-conditioned input, but it is less accurate: its relative error grows with the sequence length (the
    /// cumulative log-gate a*_t is summed, then differenced, so each term is off by about |a*_t|·ε — 1.7e-3 after
    /// 65,536 positions in float where the plain scan is exact to 3e-8), and when kv of opposite signs nearly cancel
    /// its error stays relative to the cancelled terms rather than to the state. The plain scan is the default.
    /// </summary>
    public bool Heinsen { get; set; }
}
