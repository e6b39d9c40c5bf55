using System.CommandLine;
using System.Text.Json;
using GateLoop.Runtime;

namespace GateLoop.Models.Commands;

/// <summary>
/// <c>gateloop bench</c>: the options, the device and the model, then <see cref="Benchmark"/> does the timing.
/// </summary>
static class BenchCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "a declared model, or a SimpleGateLoop layer (long-context-mixer: 1 × 65,536 × 512)", DefaultValueFactory = _ => Catalog.Default };
        var batch = new Option<int>("--batch") { Description = "sequences per micro-batch", DefaultValueFactory = _ => 4 };
        var accum = new Option<int>("--grad-accum") { Description = "micro-batches per step", DefaultValueFactory = _ => 4 };
        var seq = new Option<int>("--seq-len") { Description = "sequence length", DefaultValueFactory = _ => 256 };
        var steps = new Option<int>("--steps") { Description = "timed training steps after one warm-up step", DefaultValueFactory = _ => 3 };
        var generate = new Option<int>("--generate") { Description = "bytes generated after a prompt of the same length (0: skip)", DefaultValueFactory = _ => 128 };
        var generateBatch = new Option<int>("--generate-batch")
        {
            Description = "streams generated together, one token each per step through one session (tokens/s is their total)",
            DefaultValueFactory = _ => 1,
        };
        var bucket = new Option<double>("--bucket-mb")
        {
            Description = "launched on several ranks (mpirun, srun): megabytes of gradients per all-reduce during the backward; the bench also times them after it",
            DefaultValueFactory = _ => new TrainOptions().BucketMegabytes,
        };
        var sample = new Option<int>("--sample-blocks")
        {
            Description = "on cuda-sim: blocks of each launch simulated for its counts and GPU estimate, the values computed on the host (0: simulate every block and GEMM)",
            DefaultValueFactory = _ => 16,
        };
        var json = new Option<bool>("--json") { Description = "print one JSON object" };
        var kernels = new Option<bool>("--kernels") { Description = "also list the time of every kernel" };
        var device = Common.Device();
        var weights = Common.Weights();
        weights.Description = "how the weight matrices are held for the generation timing: fp32, bf16 or int8 (training runs in fp32)";
        var tf32 = Common.Tf32();
        var precision = Common.Precision("what the training step's matrix products take: fp32, or bf16 inputs with fp32 sums (as train --precision bf16)");
        var noCheck = Common.NoDeviceCheck();
        var command = new Command("bench", "time training steps and generation of a model; report tokens/s, time per phase and peak memory")
        {
            model, batch, accum, seq, steps, generate, generateBatch, json, kernels, device, weights, tf32, precision, noCheck, bucket, sample,
        };
        command.SetAction(parse =>
        {
            var options = new BenchOptions(parse.GetValue(batch), parse.GetValue(accum), parse.GetValue(seq), parse.GetValue(steps),
                parse.GetValue(generate), parse.GetValue(kernels), Common.WeightFormatOf(parse.GetValue(weights)!), parse.GetValue(bucket),
                parse.GetValue(generateBatch));
            options.Validate();
            // Under a launcher, every rank times its share and rank 0 reports for the job.
            using var world = Communicator.FromEnvironment();
            if (!world.IsRoot) Console.SetOut(TextWriter.Null);
            bool asJson = parse.GetValue(json);
            var log = asJson ? TextWriter.Null : Console.Out;
            var entry = Catalog.Layers.FirstOrDefault(l => l.Name == parse.GetValue(model));
            var found = entry is null ? Catalog.Find(parse.GetValue(model)!) : null;
            int sampleBlocks = parse.GetValue(sample);
            if (sampleBlocks < 0) throw new UserInputException($"--sample-blocks cannot be negative, got {sampleBlocks}");
            using var dev = Device.Create(parse.GetValue(device)!);
            if (Common.Given(parse, sample) && dev is not SimulatedCudaDevice)
                throw new UserInputException($"--sample-blocks applies to --device cuda-sim, not {dev.Name}; leave it out");
            dev.AllowTf32 = parse.GetValue(tf32);
            var gemmPrecision = Common.PrecisionOf(parse.GetValue(precision)!);
            if (gemmPrecision == GemmPrecision.Bf16 && parse.GetValue(tf32))
                throw new UserInputException("--tf32 rounds fp32 GEMMs and --precision bf16 makes every GEMM bf16; pass only one");
            // After the device check, which compares every simulated block with the host (in fp32, as the host reference runs).
            void Sample()
            {
                if (dev is SimulatedCudaDevice simulator) simulator.SampleBlocks = sampleBlocks;
                dev.GemmPrecision = gemmPrecision;
            }
            Dictionary<string, object?> report;
            if (entry is not null)
            {
                if (world.Size > 1) throw new UserInputException($"{entry.Name} is a layer, which is benchmarked in one process; run it without mpirun");
                if (Common.Given(parse, weights)) throw new UserInputException($"--weights times generation, which {entry.Name} (a layer) has none of; leave it out");
                using var layer = entry.Create(dev);
                layer.Initialize(0);
                log.WriteLine($"layer  {entry.Name}: {entry.Description}, {layer.ParameterCount:N0} parameters");
                log.WriteLine($"device {dev.Name}, isa: {HostTier.Name}");
                if (!parse.GetValue(noCheck)) Common.CheckDevice(layer, entry.Name, entry.Create, DeviceCheck.Layer, "bench", log);
                Sample();
                report = Benchmark.Layer(layer, entry.Name, Common.Given(parse, seq) ? options.SeqLen : 65_536, log);
            }
            else
            {
                using var net = found!.Create(dev);
                net.Initialize(0);
                log.WriteLine($"model  {found.Name}: {found.Description}, {net.ParameterCount:N0} parameters");
                log.WriteLine($"device {dev.Name}, GEMM {dev.GemmBackend}{(dev.AllowTf32 ? ", TF32 allowed" : "")}" +
                    $"{(gemmPrecision == GemmPrecision.Bf16 ? ", bf16 inputs with fp32 sums" : "")}, isa: {HostTier.Name}");
                if (!parse.GetValue(noCheck)) Common.CheckDevice(net, found.Name, found.Create, DeviceCheck.Model, "bench", log);
                Sample();
                if (world.Size > 1) log.WriteLine($"world  {world.Size} ranks, {world.Description}, --batch {options.Batch} on each");
                report = Benchmark.Model(net, found.Name, options, log, world);
            }
            world.Close();
            if (asJson) Console.WriteLine(JsonSerializer.Serialize(report));
            return 0;
        });
        return command;
    }
}
