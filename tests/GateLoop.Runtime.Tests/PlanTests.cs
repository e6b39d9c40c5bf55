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
}
