using GateLoop.Runtime;

using GateLoop.Tests.Shared;

namespace GateLoop.Runtime.Tests;

/// <summary>A step's micro-batches folded into one pass against the same micro-batches run one after another.</summary>
public sealed class MicroBatchesTests
{
    const int Batch = 2, Count = 3, Seq = 6;

    static int[] Tokens(int micro) => [.. Enumerable.Range(0, Batch * (Seq + 1)).Select(i => (7 * i + 5 * micro + 1) % 11)];

    static (double Loss, float[] Gradients, bool Folded) Step(string deviceName, bool viaMicroBatches)
    {
        using var device = Device.Create(deviceName);
        using var model = new PreHeadsSubNorm(device);
        model.Initialize(seed: 4);
        model.ZeroGradients();
        int armed = 0;
        bool folded = false;
        if (viaMicroBatches)
        {
            var micro = new MicroBatches(model, Batch, Count, Seq, ranks: 1);
            folded = micro.Folded;
            micro.Run(i => Tokens(i), () => armed++);
            Assert.Equal(1, armed);
        }
        else
            for (int i = 0; i < Count; i++)
            {
                model.ForwardAccumulate(Tokens(i), Batch, Seq, gradScale: 1.0 / Count, lossWeight: 1.0 / Count);
                model.Backward();
            }
        return (model.ReadLoss(), model.ReadGradients(), folded);
    }

    [Theory]
    [InlineData("cpu", false)]       // the host runs them one after another
    [InlineData("ilgpu-cpu", true)]  // a device with memory to spare folds them
    public void Give_the_mean_loss_and_gradients_of_the_micro_batches(string deviceName, bool folds)
    {
        var (loss, gradients, folded) = Step(deviceName, viaMicroBatches: true);
        Assert.Equal(folds, folded);
        var (expectedLoss, expected, _) = Step(deviceName, viaMicroBatches: false);
        Assert.True(Math.Abs(loss - expectedLoss) <= 1e-6 * expectedLoss, $"loss {loss} vs {expectedLoss}");
        Assert.True(Math.Abs(expectedLoss - Math.Log(11)) < 1, $"an untrained model's loss {expectedLoss} is near ln 11");
        double scale = expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(gradients[i] - expected[i]) <= 1e-5 * scale, $"gradient {i}: {gradients[i]} vs {expected[i]}");
    }
}
