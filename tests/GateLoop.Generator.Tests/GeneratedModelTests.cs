using System.Reflection;
using System.Runtime.Loader;
using GateLoop.Runtime;
using ParameterInfo = GateLoop.Runtime.ParameterInfo;

namespace GateLoop.Generator.Tests;

/// <summary>
/// Loads generated models (emitted in memory into a collectible load context) and checks their static tables: the
/// parameter table is the seed's state_dict (names, order, shapes) laid out contiguously, and the hyperparameters
/// mirror the attribute's properties with their types.
/// </summary>
public class GeneratedModelTests
{
    static (Type Model, AssemblyLoadContext Context) Emit(string arguments)
    {
        var run = GeneratorHarness.Run($$"""
            using GateLoop;

            namespace Consumer;

            [GateLoopTransformer({{arguments}})]
            public partial class Model;
            """);
        var (assembly, context) = GeneratorHarness.Load(run, "generated-model");
        return (assembly.GetType("Consumer.Model", throwOnError: true)!, context);
    }

    static T Static<T>(Type type, string property) =>
        (T)type.GetProperty(property, BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;

    /// <summary>The seed's state_dict for a GateLoop transformer, independently of the generator's layout code.</summary>
    static List<(string Name, int[] Shape)> StateDict(int vocab, int dim, int depth, int heads, int inner, int mult,
        bool gating, bool post, bool subLn)
    {
        var list = new List<(string, int[])> { ("token_emb.weight", [vocab, dim]) };
        string[] Norm(string module) => post ? [module + "norm.weight", module + "norm.bias"] : [module + "norm.gamma"];
        for (int i = 0; i < depth; i++)
        {
            string mix = $"layers.{i}.0.", ff = $"layers.{i}.1.";
            list.Add((mix + "fn.to_qkv.weight", [3 * inner, dim]));
            list.Add((mix + "fn.to_a.0.weight", [2 * heads, dim]));
            list.Add((mix + "fn.to_a.0.bias", [2 * heads]));
            if (subLn)
            {
                list.Add((mix + "fn.maybe_sub_ln.weight", [inner]));
                list.Add((mix + "fn.maybe_sub_ln.bias", [inner]));
            }
            if (gating) list.Add((mix + "fn.to_gates.0.weight", [inner, dim]));
            if (gating || inner != dim) list.Add((mix + "fn.to_out.weight", [dim, inner]));
            list.AddRange(Norm(mix).Select(n => (n, new[] { dim })));
            list.Add((ff + "fn.0.weight", [dim * mult, dim]));
            list.Add((ff + "fn.0.bias", [dim * mult]));
            list.Add((ff + "fn.2.weight", [dim, dim * mult]));
            list.Add((ff + "fn.2.bias", [dim]));
            list.AddRange(Norm(ff).Select(n => (n, new[] { dim })));
        }
        if (post) list.Add(("to_logits.weight", [vocab, dim]));
        else
        {
            list.Add(("to_logits.0.gamma", [dim]));
            list.Add(("to_logits.1.weight", [vocab, dim]));
        }
        return list;
    }

    [Theory]
    [InlineData("NumTokens = 256, Dim = 512, Depth = 6, GateLoopHeads = 512, PostLayerNorm = true", 256, 512, 6, 512, 512, true, true, false)]
    [InlineData("NumTokens = 256, Dim = 64, Depth = 2, GateLoopHeads = 8, SubLayerNorm = true", 256, 64, 2, 8, 64, true, false, true)]
    [InlineData("NumTokens = 256, Dim = 64, Depth = 2, AttnAddSwishGating = false, AblateComplex = true, AblateStateTransition = true", 256, 64, 2, 64, 64, false, false, false)]
    [InlineData("NumTokens = 11, Dim = 8, Depth = 3, DimGateLoopedAttn = 12, GateLoopHeads = 6, AttnAddSwishGating = false, FeedForwardMult = 2, PostLayerNorm = true", 11, 8, 3, 6, 12, false, true, false)]
    public void ParameterTable_IsTheSeedStateDict_LaidOutContiguously(string arguments, int vocab, int dim, int depth, int heads, int inner,
        bool gating, bool post, bool subLn)
    {
        var (model, context) = Emit(arguments);
        try
        {
            int mult = arguments.Contains("FeedForwardMult = 2") ? 2 : 4;
            var expected = StateDict(vocab, dim, depth, heads, inner, mult, gating, post, subLn);
            var table = Static<IReadOnlyList<ParameterInfo>>(model, "ParameterTable");

            Assert.Equal(expected.Select(e => e.Name), table.Select(p => p.Name));
            for (int i = 0; i < table.Count; i++)
                Assert.True(expected[i].Shape.SequenceEqual(table[i].Shape),
                    $"{table[i].Name}: shape {table[i].ShapeText}, expected [{string.Join(", ", expected[i].Shape)}]");

            long offset = 0;
            foreach (var p in table)
            {
                Assert.True(p.Offset == offset, $"{p.Name} starts at {p.Offset}, expected {offset} (right after the previous tensor)");
                offset += p.Length;
            }

            foreach (var p in table)
            {
                var init = p.Name.EndsWith(".gamma") || p.Name.Contains("norm.weight") || p.Name.Contains("sub_ln.weight") ? Init.Ones
                    : p.Name.Contains("norm.bias") || p.Name.Contains("sub_ln.bias") ? Init.Zeros
                    : p.Name == "token_emb.weight" ? Init.Normal
                    : Init.Uniform;
                Assert.True(init == p.Init, $"{p.Name} is initialized {p.Init}, expected {init}");
                // Linear weight and bias draw from U(±1/√fan_in) with fan_in the weight's input width.
                if (init == Init.Uniform) Assert.True(p.FanIn == (p.Shape.Length == 2 ? p.Shape[1] : FanInOfBias(table, p)), $"{p.Name}: fan-in {p.FanIn}");
            }

            Assert.Equal(dim, (int)model.GetField("Dim")!.GetRawConstantValue()!);
            Assert.Equal(heads, (int)model.GetField("Heads")!.GetRawConstantValue()!);
            Assert.Equal(inner, (int)model.GetField("DimInner")!.GetRawConstantValue()!);
        }
        finally
        {
            context.Unload();
        }
    }

    // A bias's fan-in is its weight's input width: the weight is the tensor named like it with "weight".
    static int FanInOfBias(IReadOnlyList<ParameterInfo> table, ParameterInfo bias) =>
        table.Single(p => p.Name == bias.Name[..^"bias".Length] + "weight").Shape[1];

    /// <summary>
    /// Hyperparameters has one entry per attribute property that applies to the model's mixer (the softmax-attention
    /// options are absent for gate-looped attention), each boxed as that property's type.
    /// </summary>
    [Theory]
    [InlineData("NumTokens = 11, Dim = 8, Depth = 1")]
    [InlineData("NumTokens = 11, Dim = 8, Depth = 1, FracGradientStateTransition = 1")]
    [InlineData("NumTokens = 11, Dim = 8, Depth = 1, FracGradientStateTransition = 0")]
    public void Hyperparameters_MirrorTheAttribute(string arguments)
    {
        var (model, context) = Emit(arguments);
        try
        {
            var values = Static<IReadOnlyDictionary<string, object>>(model, "Hyperparameters");
            var properties = typeof(GateLoopTransformerAttribute).GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .Where(p => p.CanWrite).ToDictionary(p => p.Name, p => p.PropertyType);
            string[] attentionOnly = ["Heads", "DimHead", "RotaryEmbedding", "DataDependentRelPos", "AttnSoftmaxNormalize", "SimpleGateLoopBlocks"];
            Assert.Equal(properties.Keys.Except(attentionOnly).Order(), values.Keys.Order());
            foreach (var (name, value) in values)
                Assert.True(value.GetType() == properties[name],
                    $"Hyperparameters[\"{name}\"] is {value} ({value.GetType().Name}); the attribute property is {properties[name].Name}");
        }
        finally
        {
            context.Unload();
        }
    }
}
