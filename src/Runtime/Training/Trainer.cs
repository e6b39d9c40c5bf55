using System.Diagnostics;
using System.Text.Json;
using ILGPU.Runtime;

namespace GateLoop.Runtime;

/// <summary>Training settings; the defaults follow the seed's train.py.</summary>
public sealed record TrainOptions
{
    /// <summary>Optimizer steps to reach (a resumed run continues up to this total).</summary>
    public int Steps { get; init; } = 1000;
    /// <summary>Sequences per micro-batch.</summary>
    public int Batch { get; init; } = 4;
    /// <summary>Micro-batches accumulated per optimizer step.</summary>
    public int GradAccum { get; init; } = 4;
    /// <summary>Predicted positions per sequence.</summary>
    public int SeqLen { get; init; } = 256;
    /// <summary>Adam learning rate.</summary>
    public double LearningRate { get; init; } = 1e-4;
    /// <summary>AdamW weight decay (0: plain Adam).</summary>
    public double WeightDecay { get; init; }
    /// <summary>Global gradient-norm clip.</summary>
    public double Clip { get; init; } = 0.5;
    /// <summary>Validation-loss interval in steps.</summary>
    public int ValidateEvery { get; init; } = 100;
    /// <summary>Sample interval in steps (0: never).</summary>
    public int GenerateEvery { get; init; } = 500;
    /// <summary>Checkpoint interval in steps.</summary>
    public int CheckpointEvery { get; init; } = 100;
    /// <summary>Bytes of validation text that prime each sample.</summary>
    public int PrimeLength { get; init; } = 128;
    /// <summary>Bytes generated per sample.</summary>
    public int GenerateLength { get; init; } = 512;
    /// <summary>Seed of every random stream.</summary>
    public int Seed { get; init; }
    /// <summary>
    /// The file read inside a <c>.zip</c> corpus (<see cref="Corpus.Entry"/>), recorded in the checkpoint so that
    /// resuming and evaluating read the same one; null for other data. The trainer itself does not read it.
    /// </summary>
    public string? DataEntry { get; init; }
    /// <summary>
    /// In a data-parallel run, megabytes of gradients per all-reduce started during the backward; 0 reduces them all
    /// after it. Ranks must agree on it; the result does not depend on it.
    /// </summary>
    public double BucketMegabytes { get; init; } = 4;
    /// <summary>
    /// What the matrix products take as inputs (the device's <see cref="Device.GemmPrecision"/> while the run trains):
    /// fp32, or bf16 with fp32 sums. The weights (masters), gradients, Adam's moments and every other kernel stay fp32,
    /// so a checkpoint is the same fp32 files either way; it records this, and a resumed run goes on with it.
    /// </summary>
    public GemmPrecision Precision { get; init; }

    /// <summary>
    /// Throws a <see cref="UserInputException"/> naming the first size that is not positive, or rate that is
    /// negative or not a finite number.
    /// </summary>
    public void Validate()
    {
        foreach (var (name, value) in new[] { (nameof(Steps), Steps), (nameof(Batch), Batch), (nameof(GradAccum), GradAccum), (nameof(SeqLen), SeqLen),
                     (nameof(ValidateEvery), ValidateEvery), (nameof(CheckpointEvery), CheckpointEvery), (nameof(PrimeLength), PrimeLength) })
            if (value <= 0) throw new UserInputException($"TrainOptions.{name} must be positive, got {value}");
        if (GenerateEvery < 0 || GenerateLength < 0) throw new UserInputException("TrainOptions.GenerateEvery and TrainOptions.GenerateLength cannot be negative");
        if ((long)Batch * (SeqLen + 1L) > Array.MaxLength)
            throw new UserInputException($"TrainOptions.Batch {Batch:N0} × (TrainOptions.SeqLen {SeqLen:N0} + 1) tokens are more than one batch can hold ({Array.MaxLength:N0}); " +
                "use a smaller TrainOptions.Batch or TrainOptions.SeqLen");
        foreach (var (name, value) in new[] { (nameof(LearningRate), LearningRate), (nameof(WeightDecay), WeightDecay), (nameof(Clip), Clip), (nameof(BucketMegabytes), BucketMegabytes) })
            UserInputException.ThrowIfNotFinite(value, $"TrainOptions.{name}");
        if (!(LearningRate > 0)) throw new UserInputException($"TrainOptions.LearningRate must be positive, got {LearningRate}");
        if (WeightDecay < 0 || Clip < 0 || BucketMegabytes < 0)
            throw new UserInputException("TrainOptions.WeightDecay, TrainOptions.Clip and TrainOptions.BucketMegabytes cannot be negative");
    }
}

/// <summary>What the trainer reports as it goes; the command line renders it.</summary>
public abstract record TrainEvent
{
    /// <summary>One optimizer step finished; <c>Elapsed</c> is the whole run's training time, resumes included.</summary>
    public sealed record Step(long Number, long Total, double Loss, double GradNorm, double TokensPerSecond, TimeSpan Elapsed, TimeSpan Remaining) : TrainEvent;
    /// <summary>Validation loss at a step.</summary>
    public sealed record Validation(long Number, double Loss) : TrainEvent;
    /// <summary>A sample generated from a validation prime.</summary>
    public sealed record Sample(long Number, string Prime, string Text) : TrainEvent;
    /// <summary>A checkpoint was written.</summary>
    public sealed record Saved(long Number, string Directory) : TrainEvent;
}

/// <summary>
/// The seed's training loop: random crops from the train split, gradient accumulation, Adam with clipping,
/// periodic validation and samples, atomic checkpoints that resume exactly, and <c>metrics.jsonl</c>.
/// </summary>
/// <remarks>
/// Data-parallel over <c>world</c>'s ranks, it trains the one model a single process would with <c>Batch</c> × ranks
/// sequences per micro-batch: every rank draws that global batch from the same stream and computes its own share; the
/// gradients are summed over the ranks (<see cref="GradientReducer"/>) before the clipped Adam step, so every rank takes
/// the same step from the same weights (rank 0's, broadcast and compared by digest at the start); validation is shared
/// out the same way. Rank 0 alone writes the output directory and reports.
/// </remarks>
public sealed class Trainer(TransformerModel<float> model, string modelName, Corpus corpus, TrainOptions options, string outDirectory,
    Communicator? world = null)
{
    readonly Communicator world = world ?? new SingleProcessCommunicator();

    /// <summary>The name of the metrics file in the output directory.</summary>
    public const string MetricsFileName = "metrics.jsonl";

    // Training batches come from one stream that checkpoints save; validation batches and samples come from
    // streams derived from (seed, step), so stopping at any step and resuming replays the same run exactly.
    readonly Rng dataRng = new(options.Seed);

    Rng StepRng(long step, ulong purpose) => new((ulong)options.Seed * 0x9E3779B97F4A7C15UL ^ (ulong)step * 0xBF58476D1CE4E5B9UL ^ purpose);

    /// <summary>
    /// Trains until <see cref="TrainOptions.Steps"/> or until <paramref name="cancel"/> fires; either way the last
    /// state is checkpointed. With <paramref name="resumeFrom"/>, weights, optimizer moments, step and random
    /// streams are restored first, so the run continues exactly as if it had not stopped. With
    /// <paramref name="initFrom"/>, a new run starts from that checkpoint's weights (ours, or a PyTorch model's
    /// saved as one) instead of a random initialization.
    /// </summary>
    public long Run(Action<TrainEvent> report, string? resumeFrom = null, CancellationToken cancel = default, string? initFrom = null)
    {
        // First of all, so that a rank started differently is named rather than failing alone.
        world.Agree(Settings(resumeFrom, initFrom));
        options.Validate();
        if (resumeFrom is not null && initFrom is not null)
            throw new ArgumentException("a run either resumes a checkpoint or starts from one's weights, not both", nameof(initFrom));
        int ranks = world.Size, window = options.SeqLen + 1, share = options.Batch * window;
        if ((long)options.Batch * ranks * window > Array.MaxLength)
            throw new UserInputException($"{ranks} ranks × TrainOptions.Batch {options.Batch:N0} × (TrainOptions.SeqLen {options.SeqLen:N0} + 1) tokens are more than one global batch can hold; " +
                "use a smaller TrainOptions.Batch or TrainOptions.SeqLen");
        bool root = world.IsRoot;
        if (!root) report = _ => { };
        if (root) CreateOutput();
        using var runLock = root ? new RunLock(outDirectory) : null;
        using var adam = new Adam(model, new AdamOptions(options.LearningRate, WeightDecay: options.WeightDecay, ClipNorm: options.Clip));
        using var reducer = new GradientReducer(model, world, (long)(options.BucketMegabytes * 1024 * 1024));
        var train = new BatchSampler(corpus.Train, "train", options.Batch * ranks, options.SeqLen, dataRng);
        string metrics = Path.Combine(outDirectory, MetricsFileName);
        long saved = -1; // the step of the last checkpoint in the output directory
        var before = TimeSpan.Zero; // training time of the run before this resume, so elapsed_s counts the whole run

        if (resumeFrom is not null)
        {
            var config = Open(resumeFrom, adam);
            dataRng.State = config.DataRng ?? throw new UserInputException($"checkpoint '{resumeFrom}' has no random state to resume from");
            if (root) before = KeepMetricsUpTo(metrics, adam.Step);
            if (Path.GetFullPath(resumeFrom) == Path.GetFullPath(outDirectory)) saved = adam.Step;
        }
        else
        {
            if (initFrom is null) model.Initialize(options.Seed);
            else Open(initFrom, adam: null);
            if (root) File.Delete(metrics);
        }
        ShareState(adam);

        // Checked up front: a valid split shorter than one window should fail before training, not at step 100.
        _ = new BatchSampler(corpus.Valid, "valid", options.Batch, options.SeqLen, dataRng);
        if (options.GenerateEvery > 0 && options.PrimeLength > corpus.Valid.Length)
            throw new UserInputException(
                $"TrainOptions.PrimeLength {options.PrimeLength:N0} is longer than the valid split it is taken from ({corpus.Valid.Length:N0} bytes); use at most that, or TrainOptions.GenerateEvery 0");
        // The global batch; this rank computes its share.
        var tokens = new int[ranks * share];
        var mine = new Memory<int>(tokens, world.Rank * share, share);
        var micro = new MicroBatches(model, options.Batch, options.GradAccum, options.SeqLen, ranks);
        var clock = Stopwatch.StartNew();
        long startStep = adam.Step, tokensPerStep = (long)options.Batch * ranks * options.SeqLen * options.GradAccum;
        using var log = root ? new StreamWriter(metrics, append: true) : StreamWriter.Null;
        // Validation and samples too: they measure and show the model as it trains. Set where the try begins, so that
        // the device is the caller's again after, whichever way the run ends.
        var precision = model.Device.GemmPrecision;
        model.Device.GemmPrecision = options.Precision;

        try
        {
        // Every rank stops after the same step, whichever the signal reached.
        while (adam.Step < options.Steps && !world.Any(cancel.IsCancellationRequested))
        {
            var stepClock = Stopwatch.StartNew();
            model.ZeroGradients();
            // The loss stays on the device until the step is done: one wait per step, not one per micro-batch.
            micro.Run(_ =>
            {
                train.Fill(tokens);
                return mine;
            }, reducer.Arm);
            reducer.Finish();
            adam.Update();
            double loss = world.Sum(model.ReadLoss()), gradNorm = adam.ReadGradientNorm();
            long step = adam.Step;
            CheckFinite(step, loss, gradNorm, saved);
            double rate = tokensPerStep / stepClock.Elapsed.TotalSeconds;
            double perStep = clock.Elapsed.TotalSeconds / (step - startStep);
            report(new TrainEvent.Step(step, options.Steps, loss, gradNorm, rate, before + clock.Elapsed,
                TimeSpan.FromSeconds(perStep * (options.Steps - step))));

            double? validLoss = null;
            if (step % options.ValidateEvery == 0 || step == options.Steps)
            {
                new BatchSampler(corpus.Valid, "valid", options.Batch * ranks, options.SeqLen, StepRng(step, 1)).Fill(tokens);
                validLoss = world.Sum(model.Forward(mine.Span, options.Batch, options.SeqLen) / ranks);
                CheckFinite(step, validLoss.Value, gradNorm, saved);
            }
            // The step's line is written before the validation is reported: a report may plot the metrics.
            try
            {
                log.WriteLine(JsonSerializer.Serialize(new
                {
                    step,
                    train_loss = loss,
                    valid_loss = validLoss,
                    train_bpc = loss / Math.Log(2),
                    valid_bpc = validLoss / Math.Log(2),
                    tokens_per_s = rate,
                    elapsed_s = (before + clock.Elapsed).TotalSeconds,
                }));
                log.Flush();
            }
            catch (IOException e)
            {
                throw new UserInputException($"cannot write {metrics} ({e.Message}); " +
                    (saved >= 0 ? $"the checkpoint of step {saved} is intact: make room, then resume from it" : "no checkpoint had been written yet"), e);
            }
            if (validLoss is not null) report(new TrainEvent.Validation(step, validLoss.Value));

            if (root && options.GenerateEvery > 0 && step % options.GenerateEvery == 0) Generate(step, report);
            if (step % options.CheckpointEvery == 0 || step == options.Steps) saved = Save(adam, report);
        }
        if (adam.Step != saved) Save(adam, report);
        // The others wait for rank 0's last checkpoint: a rank that left first could make the launcher end the job under it.
        world.Barrier();
        }
        catch (WorldException e) when (!e.EveryRank)
        {
            throw new WorldException($"{e.Message}; rank {world.Rank} stops during step {adam.Step + 1}: " +
                (saved >= 0 ? $"the checkpoint of step {saved} in {outDirectory} is intact, resume from it" : "no checkpoint had been written yet"), everyRank: false);
        }
        finally
        {
            model.Device.GemmPrecision = precision;
        }
        return adam.Step;
    }

    // What every rank must have been started with alike: the model, every option, the data by content, the checkpoint
    // started from by its save, and the device kind. The output directory is rank 0's alone and not compared.
    List<(string, string)> Settings(string? resumeFrom, string? initFrom)
    {
        var settings = new List<(string, string)> { ("model", modelName) };
        settings.AddRange(CheckpointConfig.Describe(model.Configuration).OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Key, p.Value)));
        foreach (var property in JsonSerializer.SerializeToElement(options).EnumerateObject()) settings.Add(($"TrainOptions.{property.Name}", property.Value.ToString()));
        if (world.Size > 1)
        {
            var data = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
            data.AppendData(corpus.Train.Span);
            data.AppendData(corpus.Valid.Span);
            settings.Add(("data (SHA-256 of the train and valid splits)", Convert.ToHexStringLower(data.GetHashAndReset())[..16]));
        }
        static string SaveOf(string? directory) => directory is null ? "none" : Checkpoint.ReadConfig(directory) is var c ? c.Id ?? $"step {c.Step}" : "";
        settings.Add(("Trainer.Run(resumeFrom) (the checkpoint's save)", SaveOf(resumeFrom)));
        settings.Add(("Trainer.Run(initFrom) (the checkpoint's save)", SaveOf(initFrom)));
        settings.Add(("device", model.Device.Name.Split(' ', ':')[0]));
        settings.Add(("Device.AllowTf32", model.Device.AllowTf32.ToString()));
        return settings;
    }

    // Rank 0's weights and optimizer moments on every rank, compared by digest together with the step and the data stream.
    void ShareState(Adam adam)
    {
        if (world.Size == 1) return;
        var weights = model.ReadWeights();
        world.Broadcast(System.Runtime.InteropServices.MemoryMarshal.AsBytes(weights.AsSpan()));
        model.WriteWeights(weights);
        var moments = new float[model.ParameterCount];
        foreach (var view in new[] { adam.FirstMoment, adam.SecondMoment })
        {
            var part = view.SubView(0, model.ParameterCount);
            part.CopyToCPU(moments);
            world.Broadcast(System.Runtime.InteropServices.MemoryMarshal.AsBytes(moments.AsSpan()));
            part.CopyFromCPU(moments);
        }
        CheckSameState(adam, "the weights, optimizer moments, step or data stream");
    }

    void CheckSameState(Adam adam, string what)
    {
        if (world.Size == 1) return;
        using var digest = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        digest.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(model.ReadWeights().AsSpan()));
        foreach (var view in new[] { adam.FirstMoment, adam.SecondMoment })
            digest.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Module<float>.Read(view.SubView(0, model.ParameterCount)).AsSpan()));
        digest.AppendData(BitConverter.GetBytes(adam.Step));
        foreach (var word in dataRng.State) digest.AppendData(BitConverter.GetBytes(word));
        world.CheckSame(digest.GetHashAndReset(), what);
    }

    void CreateOutput()
    {
        try
        {
            Directory.CreateDirectory(outDirectory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserInputException($"cannot create the output directory {outDirectory} ({e.Message}); pass a writable Trainer(outDirectory)", e);
        }
    }

    // A diverged step leaves NaN in the weights: stop before it reaches a checkpoint, naming the one that stays.
    void CheckFinite(long step, double loss, double gradNorm, long saved)
    {
        if (double.IsFinite(loss) && double.IsFinite(gradNorm)) return;
        throw new UserInputException(
            $"training diverged at step {step}: the loss is {loss:G4} and the gradient norm {gradNorm:G4}; nothing of it was saved, " +
            (saved >= 0 ? $"the checkpoint of step {saved} in {outDirectory} is intact" : "and no checkpoint had been written yet") +
            $": lower TrainOptions.LearningRate (now {options.LearningRate:G4}) or TrainOptions.Clip (now {options.Clip:G4}) and train again{(saved >= 0 ? " with Trainer.Run(resumeFrom)" : "")}");
    }

    // A checkpoint of this model (name and shape checked): its weights, and the optimizer state when adam is given.
    CheckpointConfig Open(string directory, Adam? adam)
    {
        var config = Checkpoint.ReadConfig(directory);
        if (config.Model != modelName)
            throw new UserInputException($"checkpoint '{directory}' is of model '{config.Model}', not '{modelName}'; pass Trainer(modelName) {config.Model}");
        Checkpoint.CheckShape(config, model, directory);
        Checkpoint.Load(directory, model, adam);
        return config;
    }

    void Generate(long step, Action<TrainEvent> report)
    {
        var valid = corpus.Valid.Span;
        var rng = StepRng(step, 2);
        int prime = Math.Min(options.PrimeLength, valid.Length);
        int start = rng.NextInt(valid.Length - prime + 1);
        var primeTokens = valid.Slice(start, prime).ToArray().Select(b => (int)b).ToArray();
        var text = new List<byte>();
        Sampling.Generate(model, primeTokens, options.GenerateLength, 1.0, 0.9, rng, t => text.Add((byte)t));
        report(new TrainEvent.Sample(step, Text(primeTokens.Select(t => (byte)t)), Text(text)));
    }

    static string Text(IEnumerable<byte> bytes) => System.Text.Encoding.UTF8.GetString(bytes.ToArray());

    // Every rank checks that the ranks still hold one model; rank 0 writes it.
    long Save(Adam adam, Action<TrainEvent> report)
    {
        CheckSameState(adam, $"at step {adam.Step}, the weights, optimizer moments or data stream");
        if (!world.IsRoot) return adam.Step;
        Checkpoint.Save(outDirectory, model, adam, new CheckpointConfig
        {
            Model = modelName,
            Hyperparameters = CheckpointConfig.Describe(model.Configuration),
            Step = adam.Step,
            Data = corpus.FilePath,
            Seed = options.Seed,
            Options = options,
            DataRng = dataRng.State,
            WorldSize = world.Size,
        });
        report(new TrainEvent.Saved(adam.Step, outDirectory));
        return adam.Step;
    }

    // Lines written after the checkpoint being resumed belong to a run that is being replayed. Returns the last kept
    // line's elapsed time, the training time before the resume.
    static TimeSpan KeepMetricsUpTo(string path, long step)
    {
        if (!File.Exists(path)) return TimeSpan.Zero;
        var kept = File.ReadLines(path).Where(line => line.Length > 0)
            .Select(line => (Line: line, Root: JsonDocument.Parse(line).RootElement))
            .Where(l => l.Root.GetProperty("step").GetInt64() <= step)
            .ToList();
        File.WriteAllLines(path, kept.Select(l => l.Line));
        return kept.Count > 0 && kept[^1].Root.TryGetProperty("elapsed_s", out var elapsed) && elapsed.TryGetDouble(out double seconds)
            ? TimeSpan.FromSeconds(seconds) : TimeSpan.Zero;
    }
}
