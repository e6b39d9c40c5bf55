using System.Text.Json;
using GateLoop.Runtime;

namespace GateLoop.Runtime.Tests;

/// <summary>The seed's small shape, to load weights PyTorch wrote.</summary>
[GateLoopTransformer(NumTokens = 256, Dim = 64, Depth = 2, PostLayerNorm = true)]
public partial class PyTorchTiny;

/// <summary>
/// Weights, logits, loss and gradients written by PyTorch (Fixtures/pytorch-tiny, made by
/// <c>bench/reference/gateloop_reference.py export --config tiny</c>, a plain port of the seed's code checked equal
/// to the seed's own modules): the safetensors file loads by its PyTorch names, and the compiled model reproduces
/// PyTorch's logits, loss and autograd gradients (frac-gradient included).
/// </summary>
public sealed class PyTorchParityTests
{
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "pytorch-tiny", name);

    [Fact]
    public void Weights_written_by_PyTorch_reproduce_its_logits_loss_and_gradients()
    {
        using var device = Device.Create("cpu");
        using var model = new PyTorchTiny(device);
        WeightFile.Load(model, Fixture("model.safetensors"));

        using var reference = JsonDocument.Parse(File.ReadAllText(Fixture("reference.json")));
        var tokens = reference.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToArray();
        int seq = tokens.Length - 1;

        var expectedLogits = SafeTensors.Read(Fixture("logits.safetensors")).Tensors["logits"].Data;
        var logits = model.Logits(tokens[..seq], 1, seq);
        float scale = expectedLogits.Max(Math.Abs);
        for (int i = 0; i < logits.Length; i++)
            Assert.True(Math.Abs(logits[i] - expectedLogits[i]) <= 2e-5f * scale, $"logit {i}: {logits[i]} vs PyTorch {expectedLogits[i]}");

        model.ZeroGradients();
        double loss = model.Forward(tokens, 1, seq);
        Assert.Equal(reference.RootElement.GetProperty("loss").GetDouble(), loss, 1e-5);
        model.Backward();
        var gradients = model.ReadGradients();
        var expected = SafeTensors.Read(Fixture("grads.safetensors")).Tensors;
        Assert.Equal(model.Parameters.Select(p => p.Name).Order(), expected.Keys.Order());
        foreach (var p in model.Parameters)
        {
            var want = expected[p.Name].Data;
            float largest = Math.Max(want.Max(Math.Abs), 1e-6f);
            for (int i = 0; i < want.Length; i++)
                Assert.True(Math.Abs(gradients[p.Offset + i] - want[i]) <= 1e-4f * largest + 1e-7f,
                    $"{p.Name}[{i}]: {gradients[p.Offset + i]} vs PyTorch {want[i]}");
        }
    }
}
