using GateLoop.Runtime;
using GateLoop.Tests.Shared;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// The backward's reports of finished gradients, and the reducer that sums gradients over ranks as they come, checked
/// against a world of two ranks holding the same gradients (so the sum is exactly twice each), in-process.
/// </summary>
public sealed class GradientReducerTests
{
    static TransformerModel<float> Create(string kind, Device device) => kind switch
    {
        "gateloop" => new PreHeadsSubNorm(device),
        "attention" => new AttnRotary(device),
        _ => new PostHybrid(device),
    };

    static readonly int[] Tokens = [.. Enumerable.Range(0, 2 * 7).Select(i => i * 5 % 11)];

    [Theory]
    [InlineData("gateloop")]
    [InlineData("attention")]
    [InlineData("hybrid")]
    public void Each_reported_part_of_the_gradients_is_final_when_reported(string kind)
    {
        using var device = Device.Create("cpu");
        using var model = Create(kind, device);
        model.Initialize(seed: 3);
        var reported = new List<(long From, long To, float[] Values)>();
        long end = model.ParameterCount;
        model.GradientsReady = from =>
        {
            var part = model.ReadGradients()[(int)from..(int)end];
            reported.Add((from, end, part));
            end = from;
        };
        model.ZeroGradients();
        model.Forward(Tokens, 2, 6);
        model.Backward();
        var final = model.ReadGradients();

        // Head, every layer from the last, then the rest: the parts cover the buffer once, from the end down to 0.
        Assert.Equal(2 + (int)model.Configuration["Depth"], reported.Count);
        Assert.Equal(0, reported[^1].From);
        foreach (var (from, to, values) in reported)
        {
            Assert.True(values.Any(v => v != 0), $"gradients [{from}, {to}) are all zero when reported");
            Assert.Equal(final[(int)from..(int)to], values);
        }
    }

    /// <summary>Two ranks with equal gradients: each all-reduce doubles its floats, on a thread of its own and a little later.</summary>
    sealed class TwoEqualRanks : Communicator
    {
        public int Reductions;
        public override int Rank => 0;
        public override int Size => 2;
        public override string Description => "two equal ranks";

        public override unsafe Collective StartAllReduceSum(nint data, long count)
        {
            Reductions++;
            var task = Task.Run(() =>
            {
                Thread.Sleep(5);
                var floats = new Span<float>((void*)data, (int)count);
                foreach (ref var x in floats) x *= 2;
            });
            return new Pending(task);
        }

        sealed class Pending(Task task) : Collective
        {
            public override void Wait() => task.Wait();
        }

        public override void AllReduceSum(Span<double> values)
        {
            foreach (ref var x in values) x *= 2;
        }

        public override void Broadcast(Span<byte> data, int root = 0) { }

        public override void AllGather(ReadOnlySpan<byte> mine, Span<byte> all)
        {
            mine.CopyTo(all);
            mine.CopyTo(all[mine.Length..]);
        }

        public override void Barrier() { }
    }

    [Theory]
    [InlineData("cpu", 0L)]          // all at once after the backward
    [InlineData("cpu", 1L)]          // one bucket per reported part
    [InlineData("cpu", 1L << 30)]    // a bucket larger than the model: one reduction at the end of the backward
    [InlineData("ilgpu-cpu", 1L)]    // device memory staged through the host
    public void Sums_every_gradient_exactly_once(string deviceName, long bucketBytes)
    {
        using var device = Device.Create(deviceName);
        using var model = new PreHeadsSubNorm(device);
        model.Initialize(seed: 4);
        model.ZeroGradients();
        model.Forward(Tokens, 2, 6);
        model.Backward();
        var single = model.ReadGradients();

        var world = new TwoEqualRanks();
        using var reducer = new GradientReducer(model, world, bucketBytes);
        for (int step = 0; step < 2; step++)
        {
            world.Reductions = 0;
            model.ZeroGradients();
            // A first micro-batch that is not the step's last reduces nothing.
            model.ForwardAccumulate(Tokens, 2, 6, gradScale: 0.5, lossWeight: 0.5);
            model.Backward();
            Assert.Equal(0, world.Reductions);
            model.ForwardAccumulate(Tokens, 2, 6, gradScale: 0.5, lossWeight: 0.5);
            reducer.Arm();
            model.Backward();
            reducer.Finish();
            var summed = model.ReadGradients();
            for (int i = 0; i < single.Length; i++)
                Assert.True(Math.Abs(summed[i] - 2 * single[i]) <= 1e-6f * (1 + Math.Abs(single[i])), $"gradient {i}: {summed[i]} vs 2 × {single[i]}");
            int expected = bucketBytes == 1 ? 2 + (int)model.Configuration["Depth"] : 1;
            Assert.Equal(expected, world.Reductions);
        }
    }

    [Fact]
    public void A_world_of_one_reduces_nothing_and_leaves_the_backward_alone()
    {
        using var device = Device.Create("cpu");
        using var model = new PreHeadsSubNorm(device);
        using var reducer = new GradientReducer(model, new SingleProcessCommunicator(), 1);
        Assert.Null(model.GradientsReady);
    }
}
