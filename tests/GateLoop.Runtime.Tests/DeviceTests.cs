using GateLoop.Runtime;

using GateLoop.Tests.Shared;

namespace GateLoop.Runtime.Tests;

public sealed class DeviceTests
{
    [Fact]
    public void Cuda_without_a_gpu_says_what_to_do()
    {
        // This machine has no GPU; where one is present the device must name it instead.
        try
        {
            using var device = Device.Create("cuda");
            Assert.StartsWith("cuda: ", device.Name);
        }
        catch (DeviceUnavailableException e)
        {
            Assert.Contains("no CUDA device", e.Message);
            Assert.Contains("Device.Create(\"cpu\")", e.Message);
        }
    }

    [Fact]
    public void Unknown_device_lists_the_known_ones()
    {
        var e = Assert.Throws<DeviceUnavailableException>(() => Device.Create("tpu"));
        Assert.Contains("'tpu'", e.Message);
        Assert.Contains("cpu, ilgpu-cpu, cuda, cuda-sim, auto", e.Message);
    }

    [Fact]
    public void Auto_falls_back_to_the_host_backend_without_a_gpu()
    {
        using var device = Device.Create("auto");
        Assert.True(device.IsHost || device.Name.StartsWith("cuda: "));
    }

    [Fact]
    public void Forward_rejects_tokens_outside_the_vocabulary_and_wrong_lengths()
    {
        using var device = Device.Create("cpu");
        using var model = new PreRealGates(device);
        model.Initialize(1);
        var outside = Assert.Throws<ArgumentOutOfRangeException>(() => model.Forward([1, 2, 11, 3], 1, 3));
        Assert.Contains("token 11 is outside the vocabulary [0, 11)", outside.Message);
        var length = Assert.Throws<ArgumentException>(() => model.Forward([1, 2, 3], 1, 3));
        Assert.Contains("expected batch × (seq + 1) = 1 × 4 = 4 tokens, got 3", length.Message);
        Assert.Throws<InvalidOperationException>(() => new PreRealGates(device).Backward());
    }

    [Fact]
    public void Initialization_follows_pytorch_defaults()
    {
        using var device = Device.Create("cpu");
        using var model = new PostHeadsGated(device);
        model.Initialize(seed: 11);
        var w = model.ReadWeights();
        foreach (var p in model.Parameters)
        {
            var values = w.AsSpan((int)p.Offset, (int)p.Length).ToArray();
            switch (p.Init)
            {
                case Init.Ones: Assert.All(values, v => Assert.Equal(1f, v)); break;
                case Init.Zeros: Assert.All(values, v => Assert.Equal(0f, v)); break;
                case Init.Uniform:
                    float bound = 1 / MathF.Sqrt(p.FanIn);
                    Assert.All(values, v => Assert.InRange(v, -bound, bound));
                    if (values.Length >= 16) Assert.True(values.Max() > 0.5f * bound && values.Min() < -0.5f * bound, p.Name);
                    break;
                case Init.Normal:
                    double mean = values.Average(v => (double)v), variance = values.Average(v => (v - mean) * (v - mean));
                    Assert.InRange(mean, -0.3, 0.3);
                    Assert.InRange(variance, 0.7, 1.3);
                    break;
            }
        }
        Assert.Equal(Init.Normal, model.Parameters.Single(p => p.Name == "token_emb.weight").Init);
        Assert.Equal(8, model.Parameters.Single(p => p.Name == "layers.0.0.fn.to_out.weight").FanIn);
    }
}
