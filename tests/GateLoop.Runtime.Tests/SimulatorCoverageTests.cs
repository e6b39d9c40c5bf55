using GateLoop.Tests.Shared;
using ILGPU.Runtime;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// Every kernel the product launches runs at least once through the PTX simulator with <c>CompareWithHost</c> on,
/// so each one's PTX, as a GPU would execute it, agrees with its host entry: the generated kernels of every model
/// and layer these tests declare (the sequential scans at 4 positions, the GPU's chunked ones at 70, generation's
/// steps), the optimizer's, the device check's probes and the tiled GEMM.
/// </summary>
public sealed class SimulatorCoverageTests
{
    // The declarations of the tests' own shapes (Dim 8): between them every op and variant. The Dim 64 fixtures
    // run the same kernels with other constants, at 50 times the simulated work.
    public static TheoryData<string> Declared() => new(PtxTests.KernelTypes().Select(t => t.DeclaringType!)
        .Where(t => (int)t.GetField("Dim")!.GetValue(null)! <= 8).Select(t => t.Name));

    static SimulatedCudaDevice Simulator()
    {
        var device = (SimulatedCudaDevice)Device.Create("cuda-sim");
        device.CompareWithHost = true;
        return device;
    }

    static IEnumerable<string> Unlaunched(Type kernels, SimulatedCudaDevice device) =>
        PtxAudit.KernelsOf(kernels).Select(k => k.Name).Where(k => !device.Counters.ContainsKey(k)).Order();

    [Theory]
    [MemberData(nameof(Declared))]
    public void Every_generated_kernel_runs_on_cuda_sim_and_agrees_with_its_host_entry(string declared)
    {
        var type = PtxTests.KernelTypes().Single(t => t.DeclaringType!.Name == declared).DeclaringType!;
        using var device = Simulator();
        var random = new Random(5);
        float[] Values(long n) => Enumerable.Range(0, (int)n).Select(_ => (float)random.NextDouble() * 2 - 1).ToArray();
        if (Activator.CreateInstance(type, device) is TransformerModel<float> model)
        {
            using (model)
            {
                model.Initialize(seed: 3);
                foreach (int seq in new[] { 4, 70 })
                {
                    var tokens = Enumerable.Range(0, 2 * (seq + 1)).Select(_ => random.Next(model.Vocabulary)).ToArray();
                    model.ZeroGradients();
                    model.Forward(tokens, 2, seq);
                    model.Backward();
                }
                using (var adam = new Adam(model, new AdamOptions(WeightDecay: 0.1))) adam.Update();
                using var session = model.StartGeneration(2);
                session.Continue(Enumerable.Range(0, 6).Select(_ => random.Next(model.Vocabulary)).ToArray(), 3);
                session.Step([1, 2]);
            }
        }
        else
        {
            using var layer = (SimpleGateLoopLayer<float>)Activator.CreateInstance(type, device)!;
            layer.Initialize(seed: 3);
            foreach (int seq in new[] { 4, 70 })
            {
                long n = 2L * seq * layer.Width;
                using var x = device.Allocate<float>(n);
                using var y = device.Allocate<float>(n);
                using var dx = device.Allocate<float>(n);
                x.CopyFromCPU(Values(n));
                if (!layer.Reverse)
                {
                    using var cache = layer.CreateCache(2);
                    layer.Forward(x.View, y.View, 2, seq, cache);
                }
                layer.Forward(x.View, y.View, 2, seq);
                y.CopyFromCPU(Values(n));
                layer.Backward(y.View, dx.View);
            }
        }
        Assert.Empty(Unlaunched(type.GetNestedType("Kernels")!, device));
    }

    [Fact]
    public void The_runtime_kernels_run_on_cuda_sim_and_agree_with_their_host_entries()
    {
        using var device = Simulator();
        var report = DeviceCheck.Scalars(device);
        Assert.All(report, r => Assert.True(r.Passed, $"{r.Name}: {r.Error} > {r.Tolerance}"));
        using var model = new PreMaxHeads(device);
        model.Initialize(seed: 1);
        model.ZeroGradients();
        model.Forward([1, 2, 3, 4, 5, 6], 1, 5);
        model.Backward();
        using (var adam = new Adam(model, new AdamOptions(ClipNorm: 1e-3))) adam.Update();
        Assert.Empty(Unlaunched(typeof(AdamKernels), device));
        Assert.Empty(Unlaunched(typeof(ProbeKernels), device));
        Assert.True(device.Counters["TiledKernel"].Launches > 0);
    }

    [Fact]
    public void A_token_takes_the_decoding_launches_and_a_training_step_of_one_position_its_products()
    {
        using var device = Simulator();
        using var model = new ShippedTiny(device);
        model.Initialize(seed: 1);
        bool Decoded() => device.Counters.Keys.Any(k => k.StartsWith("Products", StringComparison.Ordinal));
        // A loss at one position: the backward reads what the training schedule saves, so the GEMMs run.
        model.ZeroGradients();
        model.Forward([1, 2, 3, 4], 2, 1);
        model.Backward();
        Assert.False(Decoded());
        Assert.True(device.Counters["TiledKernel"].Launches > 0);
        using (var session = model.StartGeneration(2))
        {
            session.Continue([5, 6, 7, 8], 2);
            device.ResetCounters();
            session.Step([1, 2]);
        }
        Assert.True(Decoded());
        Assert.False(device.Counters.ContainsKey("TiledKernel"));
        // Above DecodingRowsAtMost rows a step's products are GEMMs again.
        device.ResetCounters();
        using (var session = model.StartGeneration(5)) session.Step([1, 2, 3, 4, 5]);
        Assert.False(Decoded());
    }
}
