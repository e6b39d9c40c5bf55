using GateLoop.Numerics.Tests.Reference;
using GateLoop.Runtime;

using GateLoop.Tests.Shared;

namespace GateLoop.Numerics.Tests;

/// <summary>
/// Whole generated models, in double precision, against the independent reference: same parameter names and
/// shapes, same logits and loss, and every parameter's gradient equal to a central finite difference of the
/// reference loss with the seed's frac-gradient (the gradient through the state-transition logits is scaled
/// by FracGradientStateTransition, upstream parameters included).
/// </summary>
public sealed class ModelGradientTests : IDisposable
{
    const int Batch = 2, Seq = 5;
    readonly Device device = Device.Create("cpu");

    public void Dispose() => device.Dispose();

    static int[] Tokens(int vocabulary, int seed)
    {
        var random = new Random(seed);
        // Repeated tokens exercise the embedding's scatter-add.
        return Enumerable.Range(0, Batch * (Seq + 1)).Select(_ => random.Next(vocabulary / 2)).ToArray();
    }

    static (TransformerModel<double> Model, Dictionary<string, double[]> Reference) Load(Device device, TestModels.Case c, int seed)
    {
        var model = c.Create(device);
        var reference = ReferenceTransformer.RandomParameters(c.Config, seed);
        var flat = new double[model.ParameterCount];
        foreach (var p in model.Parameters) reference[p.Name].CopyTo(flat, p.Offset);
        model.WriteWeights(flat);
        return (model, reference);
    }

    [Theory]
    [MemberData(nameof(TestModels.Names), MemberType = typeof(TestModels))]
    public void Parameter_table_matches_the_pytorch_state_dict(string name)
    {
        var c = TestModels.Get(name);
        using var model = c.Create(device);
        var expected = c.Config.Parameters().Select(p => $"{p.Name} [{string.Join(", ", p.Shape)}]");
        var actual = model.Parameters.Select(p => $"{p.Name} {p.ShapeText}");
        Assert.Equal(expected.OrderBy(x => x, StringComparer.Ordinal), actual.OrderBy(x => x, StringComparer.Ordinal));
        // Offsets tile the flat buffer exactly.
        long next = 0;
        foreach (var p in model.Parameters.OrderBy(p => p.Offset))
        {
            Assert.Equal(next, p.Offset);
            next += p.Length;
        }
        Assert.Equal(model.ParameterCount, next);
    }

    [Theory]
    [MemberData(nameof(TestModels.Names), MemberType = typeof(TestModels))]
    public void Logits_and_loss_match_the_reference(string name)
    {
        var c = TestModels.Get(name);
        var (model, reference) = Load(device, c, seed: 1);
        using var _ = model;
        var tokens = Tokens(c.Config.NumTokens, seed: 2);
        double loss = model.Forward(tokens, Batch, Seq);
        Assert.Equal(ReferenceTransformer.Loss(c.Config, reference, tokens, Batch, Seq), loss, 1e-11);

        var inputs = tokens.Take(Seq).ToArray();
        var logits = model.Logits(inputs, 1, Seq);
        var expected = ReferenceTransformer.Logits(c.Config, reference, inputs, 1, Seq);
        Assert.Equal(expected.Length, logits.Length);
        for (int i = 0; i < logits.Length; i++) Assert.Equal(expected[i], logits[i], 1e-10);
    }

    [Theory]
    [MemberData(nameof(TestModels.Names), MemberType = typeof(TestModels))]
    public void Every_gradient_matches_finite_differences_of_the_reference(string name)
    {
        var c = TestModels.Get(name);
        var (model, reference) = Load(device, c, seed: 3);
        using var _ = model;
        var tokens = Tokens(c.Config.NumTokens, seed: 4);
        model.ZeroGradients();
        model.Forward(tokens, Batch, Seq);
        model.Backward();
        var gradients = model.ReadGradients();

        // Record the detached transition logits at the unperturbed parameters first.
        var frac = new ReferenceTransformer.FracGradient(c.Frac);
        ReferenceTransformer.Loss(c.Config, reference, tokens, Batch, Seq, frac);
        const double h = 1e-5;
        int checkedCount = 0, nonZero = 0;
        var failures = new List<string>();
        foreach (var p in model.Parameters)
        {
            var values = reference[p.Name];
            for (int i = 0; i < values.Length; i++)
            {
                double saved = values[i];
                values[i] = saved + h;
                double up = ReferenceTransformer.Loss(c.Config, reference, tokens, Batch, Seq, frac);
                values[i] = saved - h;
                double down = ReferenceTransformer.Loss(c.Config, reference, tokens, Batch, Seq, frac);
                values[i] = saved;
                // Rotary frequencies are a frozen parameter (requires_grad=False in the seed): no gradient.
                double expected = p.Name.EndsWith("rotary_emb.freqs") ? 0 : (up - down) / (2 * h);
                double actual = gradients[p.Offset + i];
                if (Math.Abs(actual - expected) > 1e-7 + 1e-5 * Math.Abs(expected))
                    failures.Add($"{p.Name}[{i}]: backward {actual:E6}, finite difference {expected:E6}");
                checkedCount++;
                if (Math.Abs(expected) > 1e-6) nonZero++;
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} gradients differ:\n" + string.Join("\n", failures.Take(12)));
        Assert.Equal(model.ParameterCount, checkedCount);
        // The check is only meaningful if most gradients are non-trivial (the ablated projection is exactly zero).
        Assert.True(nonZero > checkedCount / 2, $"only {nonZero} of {checkedCount} gradients are non-zero");
    }

    [Fact]
    public void Gradients_accumulate_across_backward_passes_and_scale_with_grad_scale()
    {
        var c = TestModels.Get(nameof(PreMaxHeads));
        var (model, _) = Load(device, c, seed: 5);
        using var __ = model;
        var tokens = Tokens(c.Config.NumTokens, seed: 6);
        model.ZeroGradients();
        model.Forward(tokens, Batch, Seq);
        model.Backward();
        var once = model.ReadGradients();
        model.Forward(tokens, Batch, Seq, gradScale: 0.5);
        model.Backward();
        var twice = model.ReadGradients();
        for (int i = 0; i < once.Length; i++) Assert.Equal(1.5 * once[i], twice[i], 1e-12);
    }
}
