using GateLoop.Tests.Shared;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// The device check behind <c>gateloop doctor</c> and the check train and bench run first: ilgpu-cpu (the kernels
/// compiled by ILGPU, chunked scans included) passes against the host backend, every buffer and every parameter
/// is compared, and the error measure does not let NaN or a wrong infinity through.
/// </summary>
public sealed class DeviceCheckTests
{
    [Fact]
    public void Scalar_math_and_primitives_on_ilgpu_cpu_agree_with_the_host()
    {
        using var device = Device.Create("ilgpu-cpu");
        var rows = DeviceCheck.Scalars(device).Concat(DeviceCheck.Primitives(device)).ToList();
        Assert.Equal(ProbeKernels.Probes.Length + 8 + 3, rows.Count);
        Assert.All(rows, r => Assert.True(r.Passed, $"{r.Section} {r.Name}: {r.Error} > {r.Tolerance}"));
    }

    [Theory]
    [InlineData(nameof(PostHeadsGated))]
    [InlineData(nameof(PreMaxHeads))]
    [InlineData(nameof(AttnRelPosSoftmax))]
    public void A_model_on_ilgpu_cpu_agrees_buffer_by_buffer(string name)
    {
        using var device = Device.Create("ilgpu-cpu");
        using var host = Device.Create("cpu");
        using var onDevice = DeviceAgreementTests.Create(name, device);
        using var onHost = DeviceAgreementTests.Create(name, host);
        onDevice.Initialize(3);
        var before = onDevice.ReadWeights();
        var rows = DeviceCheck.Model(name, onDevice, onHost, seed: 1);

        Assert.All(rows, r => Assert.True(r.Passed, $"{r.Name}: {r.Error} > {r.Tolerance}"));
        var names = rows.Select(r => r.Name).ToHashSet();
        foreach (var expected in new[] { "loss", "inputs", "logits", "logit gradients", "X[0]", "DX", "weights after an Adam step", "generation logits (prompt, then 3 steps)" })
            Assert.Contains(expected, names);
        Assert.All(onHost.Parameters, p => Assert.Contains("∂" + p.Name, names));
        // Every named buffer of the plan is compared; the chunked scans' scratch is not one of them.
        Assert.Equal(onHost.PlannedBuffers!.Named.Count, rows.Count(r => onHost.PlannedBuffers!.Named.Any(b => b.Name == r.Name)));
        Assert.DoesNotContain(rows, r => r.Name.StartsWith("ChunkAgg", StringComparison.Ordinal));
        Assert.Equal(before, onDevice.ReadWeights());
    }

    [Fact]
    public void A_layer_on_ilgpu_cpu_agrees_through_its_chunked_scans()
    {
        using var device = Device.Create("ilgpu-cpu");
        using var host = Device.Create("cpu");
        using var onDevice = new SglLong(device);
        using var onHost = new SglLong(host);
        onDevice.Initialize(2);
        var rows = DeviceCheck.Layer("SglLong", onDevice, onHost, seed: 1);
        Assert.All(rows, r => Assert.True(r.Passed, $"{r.Name}: {r.Error} > {r.Tolerance}"));
        Assert.Contains(rows, r => r.Name == "output");
        Assert.Contains(rows, r => r.Name == "input gradient");
        Assert.All(onHost.Parameters, p => Assert.Contains(rows, r => r.Name == "∂" + p.Name));
    }

    [Fact]
    public void The_error_measure_lets_nothing_non_finite_through()
    {
        Assert.Equal(0, DeviceCheck.RelativeError([1, 2, double.NegativeInfinity], [1, 2, double.NegativeInfinity]));
        Assert.Equal(double.PositiveInfinity, DeviceCheck.RelativeError([1, double.NaN], [1, 2]));
        Assert.Equal(double.PositiveInfinity, DeviceCheck.RelativeError([1, 2], [1, double.NaN]));
        Assert.Equal(double.PositiveInfinity, DeviceCheck.RelativeError([1, double.PositiveInfinity], [1, 2]));
        Assert.Equal(double.PositiveInfinity, DeviceCheck.RelativeError([1, 2], [1, 2, 3]));
        Assert.Equal(0.5, DeviceCheck.RelativeError([0, 0.5], [0, 0])); // all-zero reference: the absolute norm
        Assert.Equal(0.1, DeviceCheck.RelativeError([3.3, 4.4], [3, 4]), 12);
        Assert.False(new CheckResult("s", "n", double.NaN, 1).Passed);
        Assert.True(new CheckResult("s", "n", 0, 0).Passed);
    }
}
