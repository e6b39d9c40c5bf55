namespace GateLoop.Runtime.Tests;

/// <summary>
/// The generated memory estimate, which refuses a plan before allocating it, is what a plan takes: for every model
/// variant and a layer, <c>PlanBytes</c> equals the bytes the planned workspace holds.
/// </summary>
public sealed class PlanTests
{
    [Theory]
    [MemberData(nameof(DeviceAgreementTests.Names), MemberType = typeof(DeviceAgreementTests))]
    public void The_estimate_of_a_model_plan_is_its_size(string name)
    {
        using var device = Device.Create("cpu");
        using var model = DeviceAgreementTests.Create(name, device);
        foreach (var (batch, seq) in new[] { (1, 1), (2, 5), (3, 70) })
        {
            model.Forward(new int[batch * (seq + 1)], batch, seq);
            Assert.Equal(model.PlanBytes(batch, seq), model.ActivationBytes);
        }
    }

    [Fact]
    public void The_estimate_of_a_layer_plan_is_its_size()
    {
        using var device = Device.Create("cpu");
        using var layer = new SglPostReverse(device);
        const int batch = 2, seq = 9;
        using var x = device.Allocate<float>(batch * seq * layer.Width);
        using var y = device.Allocate<float>(batch * seq * layer.Width);
        layer.Forward(x.View, y.View, batch, seq);
        layer.Backward(y.View, y.View);
        Assert.Equal(layer.PlanBytes(batch, seq), layer.ActivationBytes);
    }

    [Fact]
    public void A_plan_past_the_device_memory_is_refused_before_it_is_allocated()
    {
        using var device = Device.Create("cpu");
        // Attention keeps seq² probabilities per head: 100,000 positions need far more memory than any machine here has.
        using var model = DeviceAgreementTests.Create(nameof(GateLoop.Tests.Shared.AttnRotary), device);
        const int seq = 100_000;
        Assert.True(model.PlanBytes(1, seq) > device.MemoryBytes);
        var e = Assert.Throws<UserInputException>(() => model.Logits(new int[seq], 1, seq));
        Assert.Contains("needs about", e.Message);
        Assert.Contains("use a smaller batch or sequence length", e.Message);
    }

    [Fact]
    public void A_plan_whose_launch_overflows_an_int_is_refused_before_it_is_allocated()
    {
        using var device = Device.Create("cpu");
        // Attention scores one index per (batch, head, query, key): 1 · 2 · 32,768² = 2,147,483,648 indices, one past
        // what a launch indexes, though each factor and the plan's rows fit an int and the plan (16 GiB) fits a machine.
        using var model = new OneLayerAttention(device);
        const int batch = 1, seq = 32_768;
        Assert.Equal((2_147_483_648L, "AttentionScores"), model.Largest(batch, seq));
        var e = Assert.Throws<UserInputException>(() => model.Logits(new int[batch * seq], batch, seq));
        // Where the plan also exceeds this machine's memory, that refusal comes first.
        if (model.PlanBytes(batch, seq) <= device.MemoryBytes)
        {
            Assert.Contains("launches AttentionScores over 2,147,483,648 indices, more than one launch can index (2,147,483,647)", e.Message);
            Assert.Contains("use a smaller batch or seq", e.Message);
        }
        Assert.Equal(0, model.ActivationBytes);
    }
}

/// <summary>One attention layer of two heads: at seq 32,768 its scores are one launch index past an int, in 16 GiB.</summary>
[GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 1, UseGateLoopedAttn = false, Heads = 2, DimHead = 4)]
public partial class OneLayerAttention
{
    /// <summary>The plan check's largest launch, computed in 64 bits.</summary>
    public (long Indices, string Kernel) Largest(int batch, int seq) => LargestLaunch(batch, seq);
}
