using GateLoop.Runtime;

namespace GateLoop.Models;

/// <summary>The models this binary was compiled with, by command-line name.</summary>
public static class Catalog
{
    /// <summary>A declared model: its name, a one-line description and a factory.</summary>
    public sealed record Entry(string Name, string Description, Func<Device, TransformerModel<float>> Create);

    /// <summary>The default model for training on a CPU.</summary>
    public const string Default = "gateloop-small";

    /// <summary>Every model, default first.</summary>
    public static readonly IReadOnlyList<Entry> All =
    [
        new(Default, "Dim 128, Depth 4, max heads, post-norm (the seed's train.py shape, CPU-sized)", d => new GateLoopSmall(d)),
        new("enwik8", "Dim 512, Depth 6, 512 heads, post-norm (the seed's enwik8 config)", d => new Enwik8GateLoop(d)),
        new("gateloop-tiny", "Dim 64, Depth 2, max heads, post-norm (smoke tests, quick experiments)", d => new GateLoopTiny(d)),
        new("attention-small", "softmax-attention baseline: Dim 128, Depth 4, 6 heads of 30, rotary, post-norm (gateloop-small's budget)", d => new AttentionSmall(d)),
        new("hybrid-small", "attention with a SimpleGateLoop block in every layer: Dim 128, Depth 4, 4 heads of 26, rotary, post-norm (gateloop-small's budget)", d => new HybridSmall(d)),
        new("enwik8-attention", "the seed's softmax-attention baseline: Dim 512, Depth 6, 8 heads of 64, rotary, post-norm", d => new Enwik8Attention(d)),
    ];

    /// <summary>A declared SimpleGateLoop layer, which <c>gateloop bench</c> times on long sequences.</summary>
    public sealed record Layer(string Name, string Description, Func<Device, SimpleGateLoopLayer<float>> Create);

    /// <summary>Every layer.</summary>
    public static readonly IReadOnlyList<Layer> Layers =
    [
        new("long-context-mixer", "SimpleGateLoop, Dim 512, pre-norm, plain scan", d => new LongContextMixer(d)),
    ];

    /// <summary>Finds a model by name.</summary>
    /// <exception cref="UserInputException">No model has that name; the message lists the ones that exist.</exception>
    public static Entry Find(string name) =>
        All.FirstOrDefault(e => e.Name == name)
        ?? throw new UserInputException($"unknown model '{name}'; declared models: {string.Join(", ", All.Select(e => e.Name))}" +
            (Layers.Any(l => l.Name == name) ? $" ('{name}' is a SimpleGateLoop layer: only bench runs it)" : ""));
}
