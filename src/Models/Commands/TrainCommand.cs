using System.CommandLine;
using GateLoop.Models.Display;
using GateLoop.Runtime;

namespace GateLoop.Models.Commands;

/// <summary><c>gateloop train</c>: the seed's train.py — random crops, Adam, validation, samples, checkpoints.</summary>
static class TrainCommand
{
    public static Command Create()
    {
        var defaults = new TrainOptions();
        var model = new Option<string>("--model") { Description = "a declared model (see: gateloop models)", DefaultValueFactory = _ => Catalog.Default };
        var data = new Option<string?>("--data") { Description = "training text: raw, .gz or .zip (default: the .NET SDK's reference-pack XML docs)" };
        var dataEntry = Common.Entry();
        var steps = new Option<int>("--steps") { Description = "optimizer steps to reach", DefaultValueFactory = _ => defaults.Steps };
        var batch = new Option<int>("--batch") { Description = "sequences per micro-batch", DefaultValueFactory = _ => defaults.Batch };
        var accum = new Option<int>("--grad-accum") { Description = "micro-batches per step", DefaultValueFactory = _ => defaults.GradAccum };
        var seq = new Option<int>("--seq-len") { Description = "sequence length", DefaultValueFactory = _ => defaults.SeqLen };
        var lr = new Option<double>("--lr") { Description = "learning rate", DefaultValueFactory = _ => defaults.LearningRate };
        var decay = new Option<double>("--weight-decay") { Description = "AdamW weight decay (0: Adam)", DefaultValueFactory = _ => 0 };
        var clip = new Option<double>("--clip") { Description = "global gradient-norm clip", DefaultValueFactory = _ => defaults.Clip };
        var validate = new Option<int>("--validate-every") { Description = "steps between validation losses", DefaultValueFactory = _ => defaults.ValidateEvery };
        var generate = new Option<int>("--generate-every") { Description = "steps between samples (0: never)", DefaultValueFactory = _ => defaults.GenerateEvery };
        var checkpoint = new Option<int>("--checkpoint-every") { Description = "steps between checkpoints", DefaultValueFactory = _ => defaults.CheckpointEvery };
        var prime = new Option<int>("--prime-length") { Description = "bytes of validation text that prime a sample", DefaultValueFactory = _ => defaults.PrimeLength };
        var length = new Option<int>("--generate-length") { Description = "bytes per sample", DefaultValueFactory = _ => defaults.GenerateLength };
        var output = new Option<string>("--out") { Description = "directory for checkpoints, metrics.jsonl and loss.png", DefaultValueFactory = _ => "runs/latest" };
        var resume = new Option<string?>("--resume") { Description = "checkpoint directory to continue from (its options are reused; --steps may raise the total)" };
        var bucket = new Option<double>("--bucket-mb")
        {
            Description = "launched on several ranks (mpirun, srun): megabytes of gradients per all-reduce started during the backward (0: all after it)",
            DefaultValueFactory = _ => defaults.BucketMegabytes,
        };
        var init = new Option<string?>("--init") { Description = "start a new run from the weights of a checkpoint directory (ours, or a PyTorch model saved as one) instead of a random initialization" };
        var overwrite = new Option<bool>("--overwrite") { Description = "start a new run in an --out that holds a checkpoint, deleting it and its metrics (without this, train refuses such a directory)" };
        var device = Common.Device();
        var tf32 = Common.Tf32();
        var precision = Common.Precision("what the matrix products take: fp32, or bf16 (inputs rounded to bfloat16, sums in fp32: cuBLAS's bf16 GEMM " +
            "on cuda, the same rounding on cpu); weights, Adam and the other kernels stay fp32, and the checkpoint records it");
        var seed = Common.Seed();
        var noCheck = Common.NoDeviceCheck();
        var command = new Command("train", "train a model on a text file (enwik8 or any file; default: the XML docs of the .NET SDK's reference pack, ~32 MB)")
        {
            model, data, dataEntry, steps, batch, accum, seq, lr, decay, clip, validate, generate, checkpoint, prime, length, output, resume, init, overwrite, bucket, device, tf32, precision, seed, noCheck,
        };
        command.SetAction(parse =>
        {
            // A world of one unless a launcher started this process as a rank; the others print nothing but errors.
            using var world = Communicator.FromEnvironment();
            if (!world.IsRoot) Console.SetOut(TextWriter.Null);
            string? resumeFrom = parse.GetValue(resume);
            if (resumeFrom is not null && parse.GetValue(init) is not null)
                throw new UserInputException("--init starts a new run from a checkpoint's weights and --resume continues one; pass only one");
            string modelName = parse.GetValue(model)!;
            var options = new TrainOptions
            {
                Steps = parse.GetValue(steps), Batch = parse.GetValue(batch), GradAccum = parse.GetValue(accum),
                SeqLen = parse.GetValue(seq), LearningRate = parse.GetValue(lr), WeightDecay = parse.GetValue(decay),
                Clip = parse.GetValue(clip), ValidateEvery = parse.GetValue(validate), GenerateEvery = parse.GetValue(generate),
                CheckpointEvery = parse.GetValue(checkpoint), PrimeLength = parse.GetValue(prime),
                GenerateLength = parse.GetValue(length), Seed = parse.GetValue(seed), BucketMegabytes = parse.GetValue(bucket),
                Precision = Common.PrecisionOf(parse.GetValue(precision)!),
            };
            string? dataPath = parse.GetValue(data), entryName = parse.GetValue(dataEntry);
            if (resumeFrom is not null)
            {
                // A resumed run continues with the options it was started with; only the step total may change.
                var config = Checkpoint.ReadConfig(resumeFrom);
                options = (config.Options ?? options) with { Steps = !Common.Given(parse, steps) ? (config.Options?.Steps ?? options.Steps) : options.Steps };
                options = config.ResumeOn(options, world.Size, resumeFrom);
                if (config.WorldSize != world.Size)
                    Console.WriteLine($"resuming a run of {config.WorldSize} rank(s) on {world.Size}: --batch {options.Batch} on each keeps its global batch of {options.Batch * world.Size} sequences");
                if (!Common.Given(parse, model)) modelName = config.Model;
                (dataPath, entryName) = Common.DataOf(dataPath, entryName, config);
                if (config.Step >= options.Steps)
                {
                    Console.WriteLine($"nothing to train: the checkpoint in {resumeFrom} is at step {config.Step} and --steps ({options.Steps}) is the total to reach; " +
                        $"pass --steps above {config.Step} to continue. Nothing was changed.");
                    return 0;
                }
            }
            options.Validate();
            if (options.Precision == GemmPrecision.Bf16 && parse.GetValue(tf32))
                throw new UserInputException("--tf32 rounds fp32 GEMMs and --precision bf16 makes every GEMM bf16; pass only one");
            var entry = Catalog.Find(modelName);
            // Resuming writes back into the checkpoint's directory unless --out says otherwise.
            string outDir = resumeFrom is not null && !Common.Given(parse, output) ? resumeFrom : parse.GetValue(output)!;
            if (world.IsRoot) Common.CheckWritable(outDir, "--out");
            // Refused before anything is printed: a directory another run holds, then a checkpoint a new run would replace.
            using var claim = world.IsRoot ? new RunLock(outDir) : null;
            bool continuing = resumeFrom is not null && Path.GetFullPath(resumeFrom) == Path.GetFullPath(outDir);
            bool replace = parse.GetValue(overwrite);
            if (replace && continuing)
                throw new UserInputException($"--overwrite starts over in {outDir} and --resume continues the run there; pass only one");
            if (!continuing && !replace && CheckpointDirectory.Exists(outDir))
                throw new UserInputException($"{outDir} holds {CheckpointOf(outDir)}; continue that run with --resume {outDir}, " +
                    "start over there with --overwrite (it deletes that checkpoint), or pass another --out");
            var corpus = Common.LoadCorpus(dataPath, entryName);
            options = options with { DataEntry = corpus.Entry };
            using var dev = Device.Create(parse.GetValue(device)!);
            dev.AllowTf32 = parse.GetValue(tf32);
            using var net = entry.Create(dev);
            Console.WriteLine($"model  {entry.Name}: {entry.Description}, {net.ParameterCount:N0} parameters");
            Console.WriteLine($"device {dev.Name}, GEMM {dev.GemmBackend}{(dev.AllowTf32 ? ", TF32 allowed" : "")}" +
                (options.Precision == GemmPrecision.Bf16 ? ", bf16 inputs with fp32 sums" : ""));
            Console.WriteLine($"data   {Flags.Reword(corpus.Describe())}");
            Console.WriteLine($"out    {Path.GetFullPath(outDir)}{(resumeFrom is null ? "" : $" (resuming {resumeFrom})")}");
            if (parse.GetValue(init) is { } initFrom) Console.WriteLine($"init   the weights of {initFrom}");
            if (world.Size > 1)
                Console.WriteLine($"world  {world.Size} ranks, {world.Description}: a global batch of {world.Size} × {options.Batch} sequences, gradients summed " +
                    (options.BucketMegabytes > 0 ? $"in buckets of {options.BucketMegabytes:G} MB during the backward" : "after the backward"));
            if (!parse.GetValue(noCheck))
            {
                // Checked with the run's initial weights; the trainer sets them again (or loads the checkpoint's).
                net.Initialize(options.Seed);
                Common.CheckDevice(net, entry.Name, entry.Create, DeviceCheck.Model, "train", Console.Out);
            }

            using var stop = Common.StopOnSignals();
            var view = new ProgressView(plainEvery: Math.Max(1, options.ValidateEvery / 10));
            string metrics = Path.Combine(outDir, Trainer.MetricsFileName), plot = Path.Combine(outDir, "loss.png");
            var trainer = new Trainer(net, entry.Name, corpus, options, outDir, world);
            // Deleted only now that the new run has its data, model and device: a run refused above costs nothing.
            if (replace && world.IsRoot)
            {
                CheckpointDirectory.Delete(outDir);
                File.Delete(plot);
            }
            long reached = trainer.Run(e =>
            {
                view.Report(e);
                if (e is TrainEvent.Validation) LossPlot.Write([(entry.Name, metrics)], plot);
            }, resumeFrom, stop.Token, parse.GetValue(init));
            view.Finish();
            world.Close();
            if (world.IsRoot && File.Exists(metrics) && new FileInfo(metrics).Length > 0) LossPlot.Write([(entry.Name, metrics)], plot);
            if (stop.Stopped)
            {
                Console.WriteLine($"stopped by {stop.Name} at step {reached}, checkpoint written; resume with: gateloop train --resume {outDir}");
                return stop.ExitCode;
            }
            Console.WriteLine($"done: step {reached}, checkpoint, {Trainer.MetricsFileName} and loss.png in {outDir}");
            return 0;
        });
        return command;
    }

    static string CheckpointOf(string directory)
    {
        try
        {
            return $"the checkpoint of step {Checkpoint.ReadConfig(directory).Step}";
        }
        catch (UserInputException)
        {
            return "a checkpoint (its config.json does not read)";
        }
    }
}
