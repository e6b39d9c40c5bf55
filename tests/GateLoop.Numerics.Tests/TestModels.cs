using GateLoop.Numerics.Tests.Reference;
using GateLoop.Tests.Shared;

namespace GateLoop.Numerics.Tests;

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
        new(nameof(PostReluSquared), new(11, 8, 2, 8, 8, 4, SwishGating: true, PostLayerNorm: true, SubLayerNorm: false, AblateComplex: false, AblateStateTransition: false,
            FeedForwardReluSquared: true), 0.8, d => new PostReluSquared(d)),
        new(nameof(PreHybrid), new(11, 8, 2, 2, 8, 4, SwishGating: true, PostLayerNorm: false, SubLayerNorm: false, AblateComplex: false, AblateStateTransition: false,
            UseGateLoopedAttn: false, SimpleGateLoopBlocks: true), 0.9, d => new PreHybrid(d)),
        new(nameof(PostHybrid), new(11, 8, 2, 2, 8, 4, SwishGating: false, PostLayerNorm: true, SubLayerNorm: false, AblateComplex: false, AblateStateTransition: false,
            UseGateLoopedAttn: false, RotaryEmbedding: true, SimpleGateLoopBlocks: true), 0.9, d => new PostHybrid(d)),
    ];

    public static TheoryData<string> Names() => new(All.Select(c => c.Name));

    public static Case Get(string name) => All.Single(c => c.Name == name);
}
