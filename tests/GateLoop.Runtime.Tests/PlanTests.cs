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
        // 64 layers keep hundreds of values per position while the widest launch covers 32 per row: 16M positions
        // need far more memory than any machine here has, and no launch overflows.
        using var model = new DeepNarrow(device);
        const int seq = 1 << 24;
        Assert.True(model.PlanBytes(1, seq) > device.MemoryBytes);
        var e = Assert.Throws<UserInputException>(() => model.Logits(new int[seq], 1, seq));
        Assert.Contains("needs about", e.Message);
        Assert.Contains("use a smaller batch or sequence length", e.Message);
    }

    [Fact]
    public void A_plan_whose_launch_overflows_an_int_is_refused_before_it_is_allocated()
    {
        using var device = Device.Create("cpu");
        // Attention scores one index per (batch, head, query, key): 2 · 2 · 32,768² = 4,294,967,296 indices, past what
        // a launch indexes, though each factor and the plan's rows fit an int.
        using var model = DeviceAgreementTests.Create(nameof(GateLoop.Tests.Shared.AttnRotary), device);
        const int batch = 2, seq = 32_768;
        var e = Assert.Throws<UserInputException>(() => model.Logits(new int[batch * seq], batch, seq));
        Assert.Contains("launches AttentionScores over 4,294,967,296 indices", e.Message);
        Assert.Contains("use a smaller batch or seq", e.Message);
        Assert.Equal(0, model.ActivationBytes);
    }
}

/// <summary>Deep and narrow: its plan grows with the positions far faster than its widest launch does.</summary>
[GateLoopTransformer(NumTokens = 11, Dim = 8, Depth = 64)]
public partial class DeepNarrow;
