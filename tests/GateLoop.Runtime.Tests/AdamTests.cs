using GateLoop.Runtime;

using GateLoop.Tests.Shared;

namespace GateLoop.Runtime.Tests;

/// <summary>The device optimizer against a plain double-precision transcription of PyTorch's Adam/AdamW and clip_grad_norm_.</summary>
public sealed class AdamTests
{
    [Theory]
    [InlineData("cpu", 0.0, 0.5)]       // Adam, clipping active (gradients of a fresh model exceed 0.5)
    [InlineData("cpu", 0.1, 100.0)]     // AdamW, clipping inactive
    [InlineData("cpu", 0.1, 0.0)]       // clipping disabled
    [InlineData("ilgpu-cpu", 0.1, 0.5)] // the same kernels compiled by ILGPU
    public void Matches_a_reference_implementation(string deviceName, double weightDecay, double clip)
    {
        using var device = Device.Create(deviceName);
        using var model = new PreHeadsSubNorm(device);
        model.Initialize(seed: 2);
        var options = new AdamOptions(LearningRate: 1e-2, WeightDecay: weightDecay, ClipNorm: clip);
        using var adam = new Adam(model, options);

        var random = new Random(5);
        var p = model.ReadWeights().Select(x => (double)x).ToArray();
        var m = new double[p.Length];
        var v = new double[p.Length];
        var decays = new bool[p.Length];
        foreach (var t in model.Parameters)
            for (long i = 0; i < t.Length; i++) decays[t.Offset + i] = t.Shape.Length >= 2;

        for (int step = 1; step <= 3; step++)
        {
            var tokens = Enumerable.Range(0, 2 * 7).Select(_ => random.Next(11)).ToArray();
            model.ZeroGradients();
            model.Forward(tokens, 2, 6);
            model.Backward();
            var g = model.ReadGradients().Select(x => (double)x).ToArray();
            adam.Update();

            double norm = Math.Sqrt(g.Sum(x => x * x));
            Assert.Equal(norm, adam.ReadGradientNorm(), norm * 1e-5);
            double coefficient = clip > 0 ? Math.Min(1, clip / (norm + 1e-6)) : 1;
            if (clip == 0.5 && step == 1) Assert.True(coefficient < 1, "the test expects clipping to be active");
            for (int i = 0; i < p.Length; i++)
            {
                double grad = g[i] * coefficient;
                m[i] = 0.9 * m[i] + 0.1 * grad;
                v[i] = 0.99 * v[i] + 0.01 * grad * grad;
                if (decays[i]) p[i] *= 1 - options.LearningRate * weightDecay;
                double mHat = m[i] / (1 - Math.Pow(0.9, step)), vHat = v[i] / (1 - Math.Pow(0.99, step));
                p[i] -= options.LearningRate * mHat / (Math.Sqrt(vHat) + 1e-8);
            }
            var actual = model.ReadWeights();
            for (int i = 0; i < p.Length; i++)
                Assert.True(Math.Abs(actual[i] - p[i]) <= 1e-5 + 1e-5 * Math.Abs(p[i]), $"step {step}, weight {i}: {actual[i]} vs {p[i]}");
        }
        Assert.Equal(3, adam.Step);
    }
}
