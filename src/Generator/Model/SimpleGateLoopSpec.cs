namespace GateLoop.Generator.Model
{
    /// <summary>
    /// Everything the emitter needs about one declared SimpleGateLoop layer, resolved and validated, holding no
    /// Roslyn symbols so the incremental pipeline can compare specs by value.
    /// </summary>
    internal sealed record SimpleGateLoopSpec(
        TypeLocation Type,
        int Dim,
        bool PreNorm,
        bool PostLayerNorm,
        bool Reverse,
        bool Heinsen);
}
