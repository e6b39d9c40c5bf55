using System.CommandLine;
using System.Globalization;
using GateLoop.Models.Display;
using GateLoop.Runtime;

namespace GateLoop.Models.Commands;

/// <summary><c>gateloop eval</c>: loss and bits per character of a checkpoint over a whole split.</summary>
static class EvalCommand
{
    public static Command Create()
    {
        var checkpoint = Common.Checkpoint();
        var data = new Option<string?>("--data") { Description = "text file (default: the file the checkpoint was trained on, or the default corpus)" };
        var dataEntry = Common.Entry();
        var split = new Option<string>("--split") { Description = "valid, test or all", DefaultValueFactory = _ => "valid" };
        split.AcceptOnlyFromAmong("valid", "test", "all");
        var seq = new Option<int?>("--seq-len") { Description = "window length (default: the training length)" };
        var json = new Option<bool>("--json") { Description = "print {\"loss\":…, \"bpc\":…, \"tokens\":…}" };
        var device = Common.Device();
        var weights = Common.Weights();
        weights.Description = "how the weight matrices are held while evaluating: fp32 (as trained), bf16 or int8 (one scale per output row); " +
            "the loss is then that of the weights sample --weights generates from";
        var precision = Common.Precision("what the matrix products take while evaluating: fp32, or bf16 inputs with fp32 sums (as train --precision bf16 validates)");
        var command = new Command("eval", "evaluate a checkpoint: consecutive windows of seq+1 bytes, stride seq, every position predicted")
        {
            checkpoint, data, dataEntry, split, seq, json, device, weights, precision,
        };
        command.SetAction(parse =>
        {
            string directory = parse.GetValue(checkpoint)!;
            using var dev = Device.Create(parse.GetValue(device)!);
            dev.GemmPrecision = Common.PrecisionOf(parse.GetValue(precision)!);
            var (config, model) = Common.OpenCheckpoint(directory, dev, parse.GetValue(weights)!);
            using var _ = model;
            var (path, entryName) = Common.DataOf(parse.GetValue(data), parse.GetValue(dataEntry), config);
            var corpus = Common.LoadCorpus(path, entryName);
            int length = parse.GetValue(seq) ?? config.Options?.SeqLen ?? 256;
            if (length <= 0) throw new UserInputException($"--seq-len must be positive, got {length}");
            var bytes = parse.GetValue(split) switch
            {
                "test" => corpus.Test,
                "all" => (ReadOnlyMemory<byte>)corpus.Train.ToArray().Concat(corpus.Valid.ToArray()).Concat(corpus.Test.ToArray()).ToArray(),
                _ => corpus.Valid,
            };
            bool asJson = parse.GetValue(json);
            var progress = ProgressLine.OnStderr("eval", $"windows of {length + 1:N0} bytes");
            var result = Evaluation.Run(model, bytes.Span, length, progress: (done, total) => progress.Report(done, total));
            progress.Clear();
            Console.WriteLine(asJson
                ? string.Create(CultureInfo.InvariantCulture, $"{{\"loss\":{result.Loss:R},\"bpc\":{result.Bpc:R},\"tokens\":{result.Tokens}}}")
                : $"{parse.GetValue(split)}: loss {result.Loss:F4} nats, {result.Bpc:F4} bits per character over {result.Tokens:N0} tokens ({parse.GetValue(weights)} weights{(dev.GemmPrecision == GemmPrecision.Bf16 ? ", bf16 products" : "")})");
            return 0;
        });
        return command;
    }
}
