using ILGPU;
using ILGPU.Runtime;
using Device = GateLoop.Runtime.Device;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// A SimpleGateLoop layer on its own trains with <see cref="Adam"/> and round-trips through a training checkpoint,
/// as a whole model does: the optimizer and the checkpoints take any module.
/// </summary>
public sealed class LayerTrainingTests : IDisposable
{
    const int Batch = 2, Seq = 16, Width = SglDefault.Dim;
    readonly string directory = Directory.CreateTempSubdirectory("gateloop-layer-").FullName;
    readonly Device device = Device.Create("cpu");

    public void Dispose()
    {
        device.Dispose();
        Directory.Delete(directory, recursive: true);
    }

    sealed class Buffers(Device device)
    {
        public readonly MemoryBuffer1D<float, Stride1D.Dense> X = device.Allocate<float>(Batch * Seq * Width),
            Y = device.Allocate<float>(Batch * Seq * Width), Target = device.Allocate<float>(Batch * Seq * Width),
            Dy = device.Allocate<float>(Batch * Seq * Width);
    }

    // One step of fitting the layer's output to the target in mean squared error; returns the loss before the step.
    static double Step(SglDefault layer, Adam adam, Buffers b)
    {
        layer.ZeroGradients();
        layer.Forward(b.X.View, b.Y.View, Batch, Seq);
        float[] y = b.Y.GetAsArray1D(), target = b.Target.GetAsArray1D();
        double loss = 0;
        var dy = new float[y.Length];
        for (int i = 0; i < y.Length; i++)
        {
            double d = y[i] - target[i];
            loss += d * d / y.Length;
            dy[i] = (float)(2 * d / y.Length);
        }
        b.Dy.CopyFromCPU(dy);
        layer.Backward(b.Dy.View, b.Dy.View);
        adam.Update();
        return loss;
    }

    [Fact]
    public void A_layer_fits_a_teacher_and_resumes_from_its_checkpoint_exactly()
    {
        var b = new Buffers(device);
        var rng = new Random(3);
        b.X.CopyFromCPU([.. Enumerable.Range(0, (int)b.X.Length).Select(_ => (float)(rng.NextDouble() * 2 - 1))]);
        using (var teacher = new SglDefault(device))
        {
            teacher.Initialize(2);
            teacher.Forward(b.X.View, b.Target.View, Batch, Seq);
        }

        using var student = new SglDefault(device);
        student.Initialize(1);
        using var adam = new Adam(student, new AdamOptions(LearningRate: 1e-2, ClipNorm: 0));
        double first = Step(student, adam, b), last = first;
        for (int i = 1; i < 60; i++) last = Step(student, adam, b);
        Assert.True(last < 0.3 * first, $"the loss went from {first} to {last} in 60 steps");

        Checkpoint.Save(directory, student, adam, new CheckpointConfig
        {
            Model = nameof(SglDefault), Hyperparameters = CheckpointConfig.Describe(student.Configuration), Step = adam.Step,
        });
        using var restored = new SglDefault(device);
        using var restoredAdam = new Adam(restored, adam.Options);
        Checkpoint.CheckShape(Checkpoint.ReadConfig(directory), restored, directory);
        Checkpoint.Load(directory, restored, restoredAdam);
        Assert.Equal(adam.Step, restoredAdam.Step);
        Assert.Equal(student.ReadWeights(), restored.ReadWeights());

        // The next step from the checkpoint is the step the run would have taken.
        Assert.Equal(Step(student, adam, b), Step(restored, restoredAdam, b));
        Assert.Equal(student.ReadWeights(), restored.ReadWeights());
    }
}
