namespace GateLoop.Runtime;

/// <summary>How a tensor is initialized: PyTorch's defaults for each module kind.</summary>
public enum Init
{
    /// <summary>All zeros (LayerNorm bias).</summary>
    Zeros,
    /// <summary>All ones (norm gains).</summary>
    Ones,
    /// <summary>N(0, 1) (Embedding).</summary>
    Normal,
    /// <summary>U(−1/√fan_in, 1/√fan_in) (Linear weight and bias).</summary>
    Uniform,
    /// <summary>Rotary-embedding frequencies 10000^(−i/n) for i &lt; n (a frozen parameter, as in the seed's state_dict).</summary>
    RotaryFrequencies,
}

/// <summary>One tensor of a model: its PyTorch <c>state_dict</c> name, shape and place in the flat buffer.</summary>
/// <param name="Name">The PyTorch name, e.g. <c>layers.0.0.fn.to_qkv.weight</c>.</param>
/// <param name="Shape">PyTorch shape; Linear weights are [out, in].</param>
/// <param name="Offset">First element in the flat parameter buffer.</param>
/// <param name="Init">Initialization rule.</param>
/// <param name="FanIn">The fan-in used by <see cref="Init.Uniform"/>.</param>
public sealed record ParameterInfo(string Name, int[] Shape, long Offset, Init Init, int FanIn)
{
    /// <summary>Number of elements.</summary>
    public long Length => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Shape as text, e.g. <c>[1536, 512]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
