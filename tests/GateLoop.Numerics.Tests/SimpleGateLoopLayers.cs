using GateLoop.Numerics.Tests.Reference;
using GateLoop.Runtime;

namespace GateLoop.Numerics.Tests;

// Every combination of the SimpleGateLoop options at Dim 6, compiled in double precision (GateLoopPrecision).

[SimpleGateLoop(Dim = 6)]
public partial class SglPre;

[SimpleGateLoop(Dim = 6, Heinsen = true)]
public partial class SglPreHeinsen;

[SimpleGateLoop(Dim = 6, Reverse = true)]
public partial class SglPreRev;

[SimpleGateLoop(Dim = 6, Reverse = true, Heinsen = true)]
public partial class SglPreRevHeinsen;

[SimpleGateLoop(Dim = 6, PostLayerNorm = true)]
public partial class SglPrePost;

[SimpleGateLoop(Dim = 6, PostLayerNorm = true, Heinsen = true)]
public partial class SglPrePostHeinsen;

[SimpleGateLoop(Dim = 6, PostLayerNorm = true, Reverse = true)]
public partial class SglPrePostRev;

[SimpleGateLoop(Dim = 6, PostLayerNorm = true, Reverse = true, Heinsen = true)]
public partial class SglPrePostRevHeinsen;

[SimpleGateLoop(Dim = 6, PreNorm = false)]
public partial class SglNoPre;

[SimpleGateLoop(Dim = 6, PreNorm = false, Heinsen = true)]
public partial class SglNoPreHeinsen;

[SimpleGateLoop(Dim = 6, PreNorm = false, Reverse = true)]
public partial class SglNoPreRev;

[SimpleGateLoop(Dim = 6, PreNorm = false, Reverse = true, Heinsen = true)]
public partial class SglNoPreRevHeinsen;

[SimpleGateLoop(Dim = 6, PreNorm = false, PostLayerNorm = true)]
public partial class SglNoPrePost;

[SimpleGateLoop(Dim = 6, PreNorm = false, PostLayerNorm = true, Heinsen = true)]
public partial class SglNoPrePostHeinsen;

[SimpleGateLoop(Dim = 6, PreNorm = false, PostLayerNorm = true, Reverse = true)]
public partial class SglNoPrePostRev;

[SimpleGateLoop(Dim = 6, PreNorm = false, PostLayerNorm = true, Reverse = true, Heinsen = true)]
public partial class SglNoPrePostRevHeinsen;

/// <summary>Each test layer with the reference configuration that describes the same function.</summary>
public static class SimpleGateLoopLayers
{
    public sealed record Case(string Name, SimpleGateLoopConfig Config, bool Heinsen, Func<Device, SimpleGateLoopLayer<double>> Create)
    {
        public override string ToString() => Name;
    }

    public static readonly Case[] All =
    [
        new(nameof(SglPre), new(6, PreNorm: true, PostLayerNorm: false, Reverse: false), Heinsen: false, d => new SglPre(d)),
        new(nameof(SglPreHeinsen), new(6, PreNorm: true, PostLayerNorm: false, Reverse: false), Heinsen: true, d => new SglPreHeinsen(d)),
        new(nameof(SglPreRev), new(6, PreNorm: true, PostLayerNorm: false, Reverse: true), Heinsen: false, d => new SglPreRev(d)),
        new(nameof(SglPreRevHeinsen), new(6, PreNorm: true, PostLayerNorm: false, Reverse: true), Heinsen: true, d => new SglPreRevHeinsen(d)),
        new(nameof(SglPrePost), new(6, PreNorm: true, PostLayerNorm: true, Reverse: false), Heinsen: false, d => new SglPrePost(d)),
        new(nameof(SglPrePostHeinsen), new(6, PreNorm: true, PostLayerNorm: true, Reverse: false), Heinsen: true, d => new SglPrePostHeinsen(d)),
        new(nameof(SglPrePostRev), new(6, PreNorm: true, PostLayerNorm: true, Reverse: true), Heinsen: false, d => new SglPrePostRev(d)),
        new(nameof(SglPrePostRevHeinsen), new(6, PreNorm: true, PostLayerNorm: true, Reverse: true), Heinsen: true, d => new SglPrePostRevHeinsen(d)),
        new(nameof(SglNoPre), new(6, PreNorm: false, PostLayerNorm: false, Reverse: false), Heinsen: false, d => new SglNoPre(d)),
        new(nameof(SglNoPreHeinsen), new(6, PreNorm: false, PostLayerNorm: false, Reverse: false), Heinsen: true, d => new SglNoPreHeinsen(d)),
        new(nameof(SglNoPreRev), new(6, PreNorm: false, PostLayerNorm: false, Reverse: true), Heinsen: false, d => new SglNoPreRev(d)),
        new(nameof(SglNoPreRevHeinsen), new(6, PreNorm: false, PostLayerNorm: false, Reverse: true), Heinsen: true, d => new SglNoPreRevHeinsen(d)),
        new(nameof(SglNoPrePost), new(6, PreNorm: false, PostLayerNorm: true, Reverse: false), Heinsen: false, d => new SglNoPrePost(d)),
        new(nameof(SglNoPrePostHeinsen), new(6, PreNorm: false, PostLayerNorm: true, Reverse: false), Heinsen: true, d => new SglNoPrePostHeinsen(d)),
        new(nameof(SglNoPrePostRev), new(6, PreNorm: false, PostLayerNorm: true, Reverse: true), Heinsen: false, d => new SglNoPrePostRev(d)),
        new(nameof(SglNoPrePostRevHeinsen), new(6, PreNorm: false, PostLayerNorm: true, Reverse: true), Heinsen: true, d => new SglNoPrePostRevHeinsen(d)),
    ];

    public static TheoryData<string> Names() => new(All.Select(c => c.Name));

    public static Case Get(string name) => All.Single(c => c.Name == name);

    /// <summary>The layer with the same options except <paramref name="reverse"/> and <paramref name="heinsen"/>.</summary>
    public static Case Twin(Case c, bool reverse, bool heinsen) =>
        All.Single(o => o.Config == c.Config with { Reverse = reverse } && o.Heinsen == heinsen);
}
