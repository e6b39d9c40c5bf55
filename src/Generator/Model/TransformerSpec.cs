using System.Linq;

namespace GateLoop.Generator.Model
{
    /// <summary>
    /// Everything the emitter needs about one declared GateLoop transformer, resolved and validated, holding no
    /// Roslyn symbols so the incremental pipeline can compare specs by value.
    /// </summary>
    internal sealed record TransformerSpec(
        TypeLocation Type,
        int NumTokens,
        int Dim,
        int Depth,
        int Heads,
        int DimInner,
        int FeedForwardMult,
        bool SwishGating,
        bool PostLayerNorm,
        bool SubLayerNorm,
        double FracGradientStateTransition,
        bool AblateComplex,
        bool AblateStateTransition,
        bool CheckpointGateLoopedAttn,
        bool UseGateLoopedAttn = true,
        bool RotaryEmbedding = false,
        bool DataDependentRelPos = false,
        bool SoftmaxNormalize = true,
        bool FeedForwardReluSquared = false,
        bool SimpleGateLoopBlocks = false)
    {
        /// <summary>The baseline's relative-position scaling runs unless the state transition is ablated (as in the seed).</summary>
        public bool RelPos => !UseGateLoopedAttn && DataDependentRelPos && !AblateStateTransition;

        public int HeadDim => DimInner / Heads;
        public int Hidden => Dim * FeedForwardMult;
        public bool MaxHeads => HeadDim == 1;

        /// <summary>
        /// The output projection exists when the inner width differs from Dim or gating is on (as in the seed); the
        /// attention baseline always has one, with a bias.
        /// </summary>
        public bool HasOutProjection => !UseGateLoopedAttn || DimInner != Dim || SwishGating;
    }

    /// <summary>Where the partial class lives: namespace, enclosing types and its own declaration.</summary>
    internal sealed record TypeLocation(string? Namespace, EquatableArray<string> ContainingTypes, string Name)
    {
        // Hint names allow no '@', which escapes keyword identifiers.
        public string HintName =>
            ((Namespace is null ? "" : Namespace + ".") + string.Concat(ContainingTypes.Select(t => t.Split(' ').Last() + ".")) + Name).Replace("@", "");
    }
}
