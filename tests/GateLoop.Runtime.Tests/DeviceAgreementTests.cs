using GateLoop.Runtime;
using GateLoop.Tests.Shared;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// The host backend (generated kernel methods called on CPU threads) and ILGPU's CPU accelerator (the same
/// kernels compiled and run by ILGPU, as on a GPU) agree on logits, loss and every gradient.
/// </summary>
public sealed class DeviceAgreementTests
{
    static readonly Dictionary<string, Func<Device, TransformerModel<float>>> Models = new()
    {
        [nameof(PreMaxHeads)] = d => new PreMaxHeads(d),
        [nameof(PreHeadsSubNorm)] = d => new PreHeadsSubNorm(d),
        [nameof(PostHeadsGated)] = d => new PostHeadsGated(d),
        [nameof(PostAblated)] = d => new PostAblated(d),
        [nameof(PreRealGates)] = d => new PreRealGates(d),
        [nameof(AttnRotary)] = d => new AttnRotary(d),
        [nameof(AttnRelPos)] = d => new AttnRelPos(d),
        [nameof(AttnRelPosSoftmax)] = d => new AttnRelPosSoftmax(d),
    };

    public static TheoryData<string> Names() => new(Models.Keys);

    public static TransformerModel<float> Create(string name, Device device) => Models[name](device);

    static (double Loss, float[] Logits, float[] Gradients) Run(string device, string name, int[] tokens, int batch, int seq)
    {
        using var d = Device.Create(device);
        using var model = Models[name](d);
        model.Initialize(seed: 7);
        model.ZeroGradients();
        double loss = model.Forward(tokens, batch, seq);
        model.Backward();
        var gradients = model.ReadGradients();
        var logits = model.Logits(tokens.Take(batch * seq).ToArray(), batch, seq);
        return (loss, logits, gradients);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Host_and_ilgpu_backends_agree(string name) => Agree(name, seq: 4);

    /// <summary>70 positions: ilgpu-cpu takes the GPU's chunked scans (three chunks, the last partial), the host its sequential ones.</summary>
    [Theory]
    [InlineData(nameof(PreMaxHeads))]
    [InlineData(nameof(PostAblated))]
    [InlineData(nameof(PreRealGates))]
    public void Chunked_scans_agree_with_the_sequential_ones(string name) => Agree(name, seq: 70);

    static void Agree(string name, int seq)
    {
        const int batch = 2;
        var random = new Random(3);
        var tokens = Enumerable.Range(0, batch * (seq + 1)).Select(_ => random.Next(11)).ToArray();
        var host = Run("cpu", name, tokens, batch, seq);
        var ilgpu = Run("ilgpu-cpu", name, tokens, batch, seq);

        Assert.Equal(host.Loss, ilgpu.Loss, 1e-5);
        AssertClose(host.Logits, ilgpu.Logits, "logits");
        AssertClose(host.Gradients, ilgpu.Gradients, "gradients");
        Assert.Contains(host.Gradients, g => Math.Abs(g) > 1e-3);
    }

    static void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        float scale = expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5f * scale + 1e-6f,
                $"{what}[{i}]: cpu {expected[i]}, ilgpu-cpu {actual[i]}");
    }
}

/// <summary>Recurrent generation carries the scan state: token-by-token logits equal the parallel forward's.</summary>
public sealed class RecurrentStepTests
{
    [Theory]
    [MemberData(nameof(DeviceAgreementTests.Names), MemberType = typeof(DeviceAgreementTests))]
    public void Stepping_one_token_at_a_time_matches_the_parallel_forward(string name)
    {
        const int batch = 2, seq = 6;
        using var device = Device.Create("cpu");
        using var model = DeviceAgreementTests.Create(name, device);
        model.Initialize(seed: 9);
        var random = new Random(4);
        var inputs = Enumerable.Range(0, batch * seq).Select(_ => random.Next(11)).ToArray();
        AssertStepsMatch(model, inputs, batch, seq, model.Logits(inputs, batch, seq));
    }

    /// <summary>Steps the <paramref name="batch"/> sequences of <paramref name="inputs"/> token by token: each step's logits equal <paramref name="parallel"/>'s at that position.</summary>
    internal static void AssertStepsMatch(TransformerModel<float> model, int[] inputs, int batch, int seq, float[] parallel)
    {
        using var session = model.StartGeneration(batch);
        int v = model.Vocabulary;
        for (int t = 0; t < seq; t++)
        {
            var step = session.Step(Enumerable.Range(0, batch).Select(b => inputs[b * seq + t]).ToArray());
            for (int b = 0; b < batch; b++)
                for (int j = 0; j < v; j++)
                    Assert.Equal(parallel[((b * seq) + t) * v + j], step[b * v + j], 1e-4f);
        }
    }

    /// <summary>A prompt fed in one parallel pass leaves the same state as feeding it token by token.</summary>
    [Theory]
    [MemberData(nameof(DeviceAgreementTests.Names), MemberType = typeof(DeviceAgreementTests))]
    public void Continuing_with_a_chunk_matches_the_parallel_forward(string name)
    {
        const int batch = 2, seq = 7, prompt = 4;
        using var device = Device.Create("cpu");
        using var model = DeviceAgreementTests.Create(name, device);
        model.Initialize(seed: 5);
        var random = new Random(8);
        var inputs = Enumerable.Range(0, batch * seq).Select(_ => random.Next(11)).ToArray();
        var parallel = model.Logits(inputs, batch, seq);
        int v = model.Vocabulary;

        using var session = model.StartGeneration(batch);
        var chunk = inputs.Take(prompt).Concat(inputs.Skip(seq).Take(prompt)).ToArray();
        var logits = session.Continue(chunk, prompt);
        for (int t = prompt; ; t++)
        {
            for (int b = 0; b < batch; b++)
                for (int j = 0; j < v; j++)
                    Assert.Equal(parallel[((b * seq) + t - 1) * v + j], logits[b * v + j], 1e-4f);
            if (t == seq) break;
            logits = session.Step([inputs[t], inputs[seq + t]]);
        }
    }

    [Fact]
    public void A_step_takes_one_token_per_sequence_of_a_live_session()
    {
        using var device = Device.Create("cpu");
        using var model = new PreRealGates(device);
        model.Initialize(1);
        var first = model.StartGeneration(2);
        Assert.Contains("expected 2 × 1 tokens", Assert.Throws<ArgumentException>(() => first.Step([1])).Message);
        first.Step([1, 2]);
        // A model runs one session at a time (the carried state is bound to its schedule): starting another ends the first.
        using var second = model.StartGeneration(1);
        Assert.Contains("has ended", Assert.Throws<ObjectDisposedException>(() => first.Step([1, 2])).Message);
        second.Step([1]);
    }
}

/// <summary>The loss kept on the device over micro-batches equals the weighted sum of the losses read one by one.</summary>
public sealed class LossAccumulationTests
{
    [Theory]
    [InlineData("cpu")]
    [InlineData("ilgpu-cpu")]
    public void Accumulated_loss_matches_the_read_back_losses(string deviceName)
    {
        const int batch = 2, seq = 5;
        using var device = Device.Create(deviceName);
        using var model = new PreMaxHeads(device);
        model.Initialize(seed: 3);
        var random = new Random(4);
        var batches = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, batch * (seq + 1)).Select(_ => random.Next(11)).ToArray()).ToArray();
        double expected = batches.Sum(tokens => model.Forward(tokens, batch, seq) / 3);

        foreach (var tokens in batches) model.ForwardAccumulate(tokens, batch, seq, gradScale: 1.0 / 3, lossWeight: 1.0 / 3);
        Assert.Equal(expected, model.ReadLoss(), 1e-5);
        Assert.Equal(0, model.ReadLoss());
    }
}
