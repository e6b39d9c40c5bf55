using System.Buffers.Binary;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using GateLoop.Runtime;
using GateLoop.Tests.Shared;
using ILGPU.Runtime;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// Seeded random mutations of the files a user hands the runtime: safetensors files, <c>config.json</c> and whole
/// checkpoint directories. Every mutated input either loads or fails with one <see cref="UserInputException"/> line
/// that names the file, within a time limit and without allocating far more than the input's size.
/// </summary>
public sealed class CheckpointFuzzTests : IDisposable
{
    const int SafeTensorsMutations = 4000, ConfigMutations = 3000, DirectoryMutations = 400;
    static readonly TimeSpan TimeLimit = TimeSpan.FromSeconds(2);
    static readonly string[] DTypes = ["F32", "F16", "BF16", "F64"];

    readonly string directory = Directory.CreateTempSubdirectory("gateloop-fuzz-").FullName;
    readonly List<(string What, string Problem)> failures = [];

    public void Dispose() => Directory.Delete(directory, recursive: true);

    [Fact]
    public void Mutated_safetensors_files_load_or_fail_with_one_clear_line()
    {
        var written = Path.Combine(directory, "written.safetensors");
        SafeTensors.Write(written,
        [
            ("token_emb.weight", [3, 4], Enumerable.Range(0, 12).Select(i => i * 0.25f - 1).ToArray()),
            ("layers.0.bias", [5], new[] { 1f, -0f, float.MaxValue, float.Epsilon, float.NaN }),
            ("cube", [2, 2, 2], Enumerable.Range(0, 8).Select(i => (float)i).ToArray()),
            ("scalar", [], new[] { 42f }),
            ("empty", [0, 3], ReadOnlyMemory<float>.Empty),
        ], new Dictionary<string, string> { ["format"] = "pt", ["step"] = "7" });
        var handmade = Path.Combine(directory, "all-dtypes.safetensors");
        File.WriteAllBytes(handmade, AllDTypesFile());
        var bases = new[] { ("written", File.ReadAllBytes(written)), ("all-dtypes", File.ReadAllBytes(handmade)) };
        var expected = new[] { SafeTensors.Read(written), SafeTensors.Read(handmade) };

        var random = new Random(1234);
        var path = Path.Combine(directory, "mutated.safetensors");
        for (var n = 0; n < SafeTensorsMutations; n++)
        {
            var which = random.Next(bases.Length);
            var (bytes, what, preserving) = MutateSafeTensors(random, bases[which].Item2);
            File.WriteAllBytes(path, bytes);
            Check($"safetensors mutation {n} of {bases[which].Item1} ({what})", path, bytes.Length, () => SafeTensors.Read(path), file =>
            {
                CheckInvariants(file);
                if (preserving || bytes.AsSpan().SequenceEqual(bases[which].Item2))
                    AssertSame(expected[which], file);
            });
        }
        Report();
    }

    [Fact]
    public void Mutated_config_json_loads_or_fails_with_one_clear_line()
    {
        var checkpoint = Path.Combine(directory, "config");
        var path = Path.Combine(checkpoint, CheckpointDirectory.ConfigFileName);
        CheckpointDirectory.WriteJsonAtomic(path, SampleConfig(new Dictionary<string, string> { ["Dim"] = "8", ["Depth"] = "2", ["SubLayerNorm"] = "True" }));
        var original = File.ReadAllBytes(path);
        var expected = Canonical(Checkpoint.ReadConfig(checkpoint));

        var random = new Random(1234);
        for (var n = 0; n < ConfigMutations; n++)
        {
            var (bytes, what, preserving) = MutateConfig(random, original);
            File.WriteAllBytes(path, bytes);
            Check($"config.json mutation {n} ({what})", path, bytes.Length, () => Checkpoint.ReadConfig(checkpoint), config =>
            {
                CheckInvariants(config);
                if (preserving || bytes.AsSpan().SequenceEqual(original))
                    Assert.Equal(expected, Canonical(config));
            });
        }
        Report();
    }

    [Fact]
    public void Mutated_checkpoint_directories_load_or_fail_with_one_clear_line()
    {
        using var device = Device.Create("cpu");
        using var model = new PostHeadsGated(device);
        model.Initialize(seed: 3);
        using var adam = new Adam(model, new AdamOptions(LearningRate: 1e-2));
        model.ZeroGradients();
        model.Forward(Enumerable.Range(0, 2 * 7).Select(i => i % 11).ToArray(), 2, 6);
        model.Backward();
        adam.Update();
        var checkpoint = Path.Combine(directory, "checkpoint");
        Checkpoint.Save(checkpoint, model, adam, SampleConfig(CheckpointConfig.Describe(model.Configuration)));
        var weights = model.ReadWeights();
        var (first, second) = (Moments(adam.FirstMoment, model.ParameterCount), Moments(adam.SecondMoment, model.ParameterCount));
        var step = adam.Step;
        string[] names = [CheckpointDirectory.ModelFileName, CheckpointDirectory.OptimizerFileName, CheckpointDirectory.ConfigFileName];
        var originals = names.ToDictionary(name => name, name => File.ReadAllBytes(Path.Combine(checkpoint, name)));
        var total = originals.Values.Sum(b => (long)b.Length);

        var random = new Random(1234);
        for (var n = 0; n < DirectoryMutations; n++)
        {
            var name = names[random.Next(names.Length)];
            var original = originals[name];
            var (bytes, what, preserving) = name == CheckpointDirectory.ConfigFileName
                ? MutateConfig(random, original)
                : MutateSafeTensors(random, original);
            var path = Path.Combine(checkpoint, name);
            File.WriteAllBytes(path, bytes);
            Check($"checkpoint mutation {n} of {name} ({what})", checkpoint, total - original.Length + bytes.Length, () =>
            {
                var config = Checkpoint.ReadConfig(checkpoint);
                Checkpoint.CheckShape(config, model, checkpoint);
                Checkpoint.Load(checkpoint, model, adam);
                return config;
            }, _ =>
            {
                Assert.InRange(adam.Step, 0, long.MaxValue);
                if (preserving || bytes.AsSpan().SequenceEqual(original))
                {
                    Assert.Equal(weights, model.ReadWeights());
                    Assert.Equal(first, Moments(adam.FirstMoment, model.ParameterCount));
                    Assert.Equal(second, Moments(adam.SecondMoment, model.ParameterCount));
                    Assert.Equal(step, adam.Step);
                }
            });
            File.WriteAllBytes(path, original);
        }
        Report();
    }

    static CheckpointConfig SampleConfig(Dictionary<string, string> hyperparameters) => new()
    {
        Model = "PostHeadsGated",
        Hyperparameters = hyperparameters,
        Step = 1,
        Data = "/data/enwik8",
        Seed = 7,
        Options = new TrainOptions { Steps = 20, Batch = 2, GradAccum = 1, SeqLen = 6, LearningRate = 1e-2, WeightDecay = 0.1, Seed = 7 },
        DataRng = new Rng(7).State,
    };

    static float[] Moments(ILGPU.ArrayView<float> view, long length)
    {
        var host = new float[length];
        view.SubView(0, length).CopyToCPU(host);
        return host;
    }

    /// <summary>
    /// F32, F64, BF16 and F16 tensors laid out by hand as <c>safetensors.torch.save_file</c> writes them: metadata
    /// first, header padded with spaces to 8 bytes.
    /// </summary>
    static byte[] AllDTypesFile()
    {
        const string json =
            """{"__metadata__":{"format":"pt"},"f64":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[32,38]},"h":{"dtype":"F16","shape":[1,2],"data_offsets":[38,42]},"none":{"dtype":"F16","shape":[0],"data_offsets":[42,42]}}""";
        byte[] data =
        [
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF8, 0x3F, // F64 1.5
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0x7F, // F64 +infinity
            0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0, 0x00, 0x00, 0x20, 0x3E, 0xC3, 0xF5, 0x48, 0x40, // F32
            0x80, 0x3F, 0x00, 0xC0, 0x49, 0x40, // BF16 1, -2, 3.140625
            0x00, 0x3C, 0x00, 0xB8,             // F16 1, -0.5
        ];
        return WithHeader(Encoding.UTF8.GetBytes(json), data, pad: true);
    }

    /// <summary>The 8-byte length, <paramref name="header"/> (space-padded to 8 bytes when asked) and the data.</summary>
    static byte[] WithHeader(byte[] header, ReadOnlySpan<byte> data, bool pad)
    {
        var padding = pad ? (8 - header.Length % 8) % 8 : 0;
        var bytes = new byte[8 + header.Length + padding + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)(header.Length + padding));
        header.CopyTo(bytes, 8);
        bytes.AsSpan(8 + header.Length, padding).Fill((byte)' ');
        data.CopyTo(bytes.AsSpan(8 + header.Length + padding));
        return bytes;
    }

    /// <summary>
    /// Runs <paramref name="read"/> on a thread of its own and records a failure unless it returns (then
    /// <paramref name="check"/> judges the result) or throws one <see cref="UserInputException"/> line naming
    /// <paramref name="path"/>, within the time limit and allocating at most 64 bytes per input byte plus 1 MB.
    /// </summary>
    void Check<T>(string what, string path, long inputBytes, Func<T> read, Action<T> check)
    {
        what = OneLine(what);
        (T? Value, Exception? Error, long Allocated) outcome = default;
        // Not a pool thread: while other test classes keep the pool busy, a queued read would wait out the limit.
        var thread = new Thread(() =>
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                outcome.Value = read();
            }
            catch (Exception e)
            {
                outcome.Error = e;
            }
            outcome.Allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }) { IsBackground = true };
        thread.Start();
        if (!thread.Join(TimeLimit))
        {
            failures.Add((what, $"still running after {TimeLimit.TotalSeconds} s"));
            return;
        }
        var (result, exception, allocated) = outcome;
        var budget = 64 * inputBytes + (1 << 20);
        if (allocated > budget)
            failures.Add((what, $"allocated {allocated:N0} bytes for a {inputBytes:N0}-byte input"));
        if (exception is null)
        {
            try
            {
                check(result!);
            }
            catch (Exception e)
            {
                failures.Add((what, $"loaded, but {e.GetType().Name}: {OneLine(e.Message)}"));
            }
        }
        else if (exception is not UserInputException)
            failures.Add((what, $"{exception.GetType().Name}: {OneLine(exception.Message)} at {OneLine(exception.StackTrace ?? "")}"));
        else if (exception.Message.Contains('\n') || exception.Message.Contains('\r'))
            failures.Add((what, $"the message has several lines: {OneLine(exception.Message)}"));
        else if (!exception.Message.Contains(path, StringComparison.Ordinal))
            failures.Add((what, $"the message does not name {path}: {exception.Message}"));
    }

    static string OneLine(string text)
    {
        var line = text.ReplaceLineEndings(" | ");
        return line.Length > 300 ? line[..300] + "…" : line;
    }

    /// <summary>Fails with the kinds of broken inputs (problems alike but for numbers), each with a count and an example.</summary>
    void Report()
    {
        var kinds = failures.GroupBy(f => new string(f.Problem.Where(c => !char.IsAsciiDigit(c)).Take(120).ToArray()))
            .Select(g => $"{g.Count()} × {g.First().What}: {g.First().Problem}");
        Assert.True(failures.Count == 0, $"{failures.Count} mutated inputs broke the contract:\n" + string.Join("\n", kinds.Take(60)));
    }

    static void CheckInvariants(SafeTensorFile file)
    {
        foreach (var (name, tensor) in file.Tensors)
        {
            Assert.Equal(name, tensor.Name);
            Assert.Contains(tensor.DType, DTypes);
            Assert.All(tensor.Shape, d => Assert.InRange(d, 0, int.MaxValue));
            Assert.Equal(tensor.Shape.Aggregate(1L, (a, d) => a * d), tensor.Data.LongLength);
        }
        Assert.All(file.Metadata.Values, v => Assert.NotNull(v));
    }

    /// <summary>The same tensors (in any order) with the same dtypes, shapes and value bits, and the same metadata.</summary>
    static void AssertSame(SafeTensorFile expected, SafeTensorFile actual)
    {
        Assert.Equal(expected.Tensors.Keys.Order(StringComparer.Ordinal), actual.Tensors.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, e) in expected.Tensors)
        {
            var a = actual.Tensors[name];
            Assert.Equal(e.DType, a.DType);
            Assert.Equal(e.Shape, a.Shape);
            Assert.Equal(e.Data.Select(BitConverter.SingleToInt32Bits), a.Data.Select(BitConverter.SingleToInt32Bits));
        }
        Assert.Equal(expected.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal), actual.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal));
    }

    /// <summary>What a loaded config promises the code that uses it: values it can run with.</summary>
    static void CheckInvariants(CheckpointConfig config)
    {
        Assert.Equal(1, config.Format);
        Assert.NotEmpty(config.Model);
        Assert.NotNull(config.Hyperparameters);
        Assert.All(config.Hyperparameters, p => Assert.NotNull(p.Value));
        Assert.InRange(config.Step, 0, long.MaxValue);
        config.Options?.Validate();
        if (config.Options is { } options)
            Assert.All([options.LearningRate, options.WeightDecay, options.Clip], x => Assert.True(double.IsFinite(x), $"{x} is not finite"));
        if (config.DataRng is { } state)
            new Rng(0).State = state;
    }

    /// <summary>The config as JSON, hyperparameters sorted (their order in the file carries no meaning).</summary>
    static string Canonical(CheckpointConfig config) =>
        JsonSerializer.Serialize(config with { Hyperparameters = config.Hyperparameters?.OrderBy(p => p.Key, StringComparer.Ordinal).ToDictionary()! });

    // ---- Mutations ------------------------------------------------------------------------------------------------

    static readonly byte[] InterestingBytes = [0x00, 0xFF, 0x7F, 0x80, .. "\"{}[],:\\-.e 0159\n"u8];

    static readonly long[] InterestingIntegers =
        [0, 1, -1, 7, 8, int.MaxValue, (long)int.MaxValue + 1, uint.MaxValue, 1L << 40, long.MaxValue, long.MinValue];

    /// <summary>One random byte-level change: bits, bytes, runs, truncation, insertion, deletion, duplication.</summary>
    static (byte[] Bytes, string What) MutateBytes(Random random, byte[] input)
    {
        var bytes = input.ToList();
        int At() => random.Next(bytes.Count + 1);
        int Run() => random.Next(4) == 0 ? random.Next(1, 4096) : random.Next(1, 17);
        byte Byte() => random.Next(2) == 0 ? InterestingBytes[random.Next(InterestingBytes.Length)] : (byte)random.Next(256);
        if (bytes.Count == 0) return ([.. Enumerable.Range(0, Run()).Select(_ => Byte())], "fill an empty input");
        switch (random.Next(8))
        {
            case 0:
            {
                var (at, bit) = (random.Next(bytes.Count), random.Next(8));
                bytes[at] ^= (byte)(1 << bit);
                return ([.. bytes], $"flip bit {bit} of byte {at}");
            }
            case 1:
            {
                var (at, value) = (random.Next(bytes.Count), Byte());
                bytes[at] = value;
                return ([.. bytes], $"byte {at} := 0x{value:X2}");
            }
            case 2:
            {
                var (at, run) = (random.Next(bytes.Count), Run());
                for (var i = at; i < Math.Min(bytes.Count, at + run); i++) bytes[i] = Byte();
                return ([.. bytes], $"overwrite {run} bytes at {at}");
            }
            case 3:
            {
                var length = random.Next(bytes.Count);
                return ([.. bytes.Take(length)], $"truncate to {length} bytes");
            }
            case 4:
            {
                var (at, run) = (At(), Run());
                var value = Byte();
                bytes.InsertRange(at, Enumerable.Range(0, run).Select(_ => random.Next(2) == 0 ? value : Byte()));
                return ([.. bytes], $"insert {run} bytes at {at}");
            }
            case 5:
            {
                var at = random.Next(bytes.Count);
                var run = Math.Min(Run(), bytes.Count - at);
                bytes.RemoveRange(at, run);
                return ([.. bytes], $"delete {run} bytes at {at}");
            }
            case 6:
            {
                var from = random.Next(bytes.Count);
                var run = Math.Min(Run(), bytes.Count - from);
                var to = At();
                bytes.InsertRange(to, bytes.GetRange(from, run));
                return ([.. bytes], $"copy {run} bytes from {from} to {to}");
            }
            default:
            {
                var (at, value) = (random.Next(bytes.Count), InterestingIntegers[random.Next(InterestingIntegers.Length)]);
                var le = new byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(le, value);
                for (var i = 0; i < 8 && at + i < bytes.Count; i++) bytes[at + i] = le[i];
                return ([.. bytes], $"write {value} at byte {at}");
            }
        }
    }

    /// <summary>
    /// A mutated safetensors file: raw byte changes, a changed header length, byte changes of the header (its length
    /// kept right), or structure-aware changes of the header's JSON. Preserving: the change keeps the file's meaning.
    /// </summary>
    static (byte[] Bytes, string What, bool Preserving) MutateSafeTensors(Random random, byte[] file)
    {
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        var header = file[8..(8 + headerLength)];
        var data = file.AsSpan(8 + headerLength);
        switch (random.Next(10))
        {
            case 0 or 1 or 2:
            {
                var (bytes, what) = MutateBytes(random, file);
                for (var more = random.Next(3); more > 0; more--)
                {
                    var (next, also) = MutateBytes(random, bytes);
                    (bytes, what) = (next, $"{what}, {also}");
                }
                return (bytes, what, false);
            }
            case 3:
            {
                ulong[] lengths = [0, 1, 2, 7, (ulong)headerLength - 1, (ulong)headerLength + 1, (ulong)headerLength - 8, (ulong)headerLength + 8,
                    (ulong)file.Length - 8, (ulong)file.Length, 1UL << 40, (ulong)int.MaxValue, (ulong)Array.MaxLength + 1, long.MaxValue, ulong.MaxValue,
                    (ulong)random.NextInt64()];
                var length = lengths[random.Next(lengths.Length)];
                var bytes = file.ToArray();
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, length);
                return (bytes, $"header length := {length}", length == (ulong)headerLength);
            }
            case 4 or 5:
            {
                var (bytes, what) = MutateBytes(random, header);
                return (WithHeader(bytes, data, pad: random.Next(2) == 0), $"header {what}", false);
            }
            default:
            {
                var (bytes, what, preserving) = Chain(random, header, json => random.Next(4) == 0
                    ? Lossy(MutateSafeTensorsHeader(random, json))
                    : MutateJson(random, json, SafeTensorsValue));
                return (WithHeader(bytes, data, pad: random.Next(2) == 0), what, preserving);
            }
        }
    }

    /// <summary>
    /// One to three structure-aware changes of a JSON document, each applied while the document still parses, so
    /// that e.g. a renamed tensor also gets a bad dtype. Preserving: every change keeps the meaning.
    /// </summary>
    static (byte[] Bytes, string What, bool Preserving) Chain(Random random, byte[] json, Func<byte[], (byte[] Bytes, string What, bool Preserving)> mutate)
    {
        var (bytes, what, preserving) = mutate(json);
        for (var more = random.Next(3); more > 0 && Parses(bytes); more--)
        {
            var next = mutate(bytes);
            (bytes, what, preserving) = (next.Bytes, $"{what}, then {next.What}", preserving && next.Preserving);
        }
        return (bytes, what, preserving);
    }

    static (byte[] Bytes, string What, bool Preserving) Lossy((byte[] Bytes, string What) change) => (change.Bytes, change.What, false);

    /// <summary>Whether <paramref name="json"/> is an object the structure-aware changes can work on.</summary>
    static bool Parses(byte[] json)
    {
        try
        {
            var root = JsonNode.Parse(json);
            // Duplicate names and lone surrogates only fail when the nodes are enumerated or written.
            return root is JsonObject && Slots(root).Count() >= 0 && Bytes(root).Length > 0;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException)
        {
            return false;
        }
    }

    static readonly string[] ConfigFields =
    [
        "Format", "Model", "Hyperparameters", "Step", "Data", "Seed", "Options", "DataRng", "Hyperparameters.Dim", "Hyperparameters.Depth",
        .. new[] { "Steps", "Batch", "GradAccum", "SeqLen", "LearningRate", "WeightDecay", "Clip", "ValidateEvery", "GenerateEvery",
            "CheckpointEvery", "PrimeLength", "GenerateLength", "Seed" }.Select(o => "Options." + o),
    ];

    /// <summary>A mutated config.json: byte changes, or chained structure-aware changes, some aimed at one field.</summary>
    static (byte[] Bytes, string What, bool Preserving) MutateConfig(Random random, byte[] json)
    {
        if (random.Next(4) == 0)
        {
            var (bytes, what) = MutateBytes(random, json);
            return (bytes, what, false);
        }
        return Chain(random, json, document =>
        {
            if (random.Next(2) == 0) return MutateJson(random, document, ConfigValue);
            var root = JsonNode.Parse(document)!.AsObject();
            var field = ConfigFields[random.Next(ConfigFields.Length)];
            var (parent, key) = field.Split('.') is [var outer, var inner] && root[outer] is JsonObject obj ? (obj, inner) : (root, field.Split('.')[0]);
            var token = random.Next(2) == 0 ? ConfigValue(random) : Tokens.Value[random.Next(Tokens.Value.Length)];
            return (Splice(root, parent, key, token), $"{field} := {Preview(token)}", false);
        });
    }

    /// <summary>Changes that know the header's layout: shapes, byte ranges and dtypes of one tensor.</summary>
    static (byte[] Bytes, string What) MutateSafeTensorsHeader(Random random, byte[] header)
    {
        var root = JsonNode.Parse(header)!.AsObject();
        var tensors = root.Where(p => p.Key != "__metadata__" && p.Value is JsonObject).Select(p => p.Key).ToList();
        if (tensors.Count == 0) return MutateBytes(random, header);
        var name = tensors[random.Next(tensors.Count)];
        var tensor = root[name]!.AsObject();
        var (begin, end) = Offsets(tensor);
        var other = Offsets(root[tensors[random.Next(tensors.Count)]]!.AsObject());
        string[] shapes =
        [
            "[]", "[-1]", "[0]", "[1]", "[4, 0]", "[2147483647]", "[2147483648]", "[4294967296]", "[2147483647, 2147483647]",
            "[2147483647, 2147483647, 2147483647]", "[65536, 65536, 65536, 65536]", "[" + string.Join(", ", Enumerable.Repeat(int.MaxValue, 40)) + ", 0]", "[4294967296, 4294967296]", "[1048576, 1048576]",
            "[0, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647]",
            "[1.5]", "[2.0]", "[\"4\"]", "[null]", "[true]", "[[2]]", "[1e3]", "[-0]", "[9223372036854775807]", "[9223372036854775808]",
            "[" + string.Join(",", Enumerable.Repeat(1, 5000)) + "]",
        ];
        string[] ranges =
        [
            $"[{end}, {begin}]", $"[0, {1L << 40}]", $"[{other.Begin}, {other.End}]", $"[{other.Begin + 1}, {other.End + 1}]", $"[{begin}]",
            $"[{begin}, {end}, {end}]", "[]", $"[{begin}.0, {end}.0]", $"[-4, {end}]", $"[{begin}, -1]", $"[{long.MaxValue - 3}, {long.MaxValue}]",
            $"[{begin}, {long.MaxValue}]", $"[{begin + 4}, {end + 4}]", $"[{begin}, {end + 1}]", "[0, 0]", $"[{begin}, 18446744073709551615]",
            $"[\"{begin}\", \"{end}\"]", "null", "{}",
        ];
        string[] dtypes = ["\"F32\"", "\"F16\"", "\"BF16\"", "\"F64\"", "\"I64\"", "\"BOOL\"", "\"F8_E4M3\"", "\"f32\"", "\"\"", "\"F32 \"", "32", "null", "[\"F32\"]"];
        var quoted = JsonSerializer.Serialize(name);
        switch (random.Next(7))
        {
            case 0:
            {
                var shape = shapes[random.Next(shapes.Length)];
                return (Splice(root, tensor, "shape", shape), $"{quoted} shape := {Preview(shape)}");
            }
            case 1:
            {
                var range = ranges[random.Next(ranges.Length)];
                return (Splice(root, tensor, "data_offsets", range), $"{quoted} data_offsets := {range}");
            }
            case 2:
            {
                var dtype = dtypes[random.Next(dtypes.Length)];
                return (Splice(root, tensor, "dtype", dtype), $"{quoted} dtype := {dtype}");
            }
            case 3:
            {
                // A consistent claim of 2^40 F32 elements: the data it asks for is not in the file.
                tensor["shape"] = new JsonArray(1L << 20, 1L << 20);
                tensor["data_offsets"] = new JsonArray(0L, 4L << 40);
                return (Bytes(root), $"{quoted} claims 2^40 elements");
            }
            case 4:
            {
                // Another name: a checkpoint then misses one tensor and has an unexpected one.
                string[] names = ["", "a\nb", "a\u0085b", "exp_avg." + name, "exp_avg_sq.", new string('n', 5000), name.ToUpperInvariant()];
                var renamed = names[random.Next(names.Length)];
                var raw = "{" + string.Join(",", root.Select(p =>
                    $"{JsonSerializer.Serialize(p.Key == name ? renamed : p.Key)}:{p.Value?.ToJsonString() ?? "null"}")) + "}";
                return (Encoding.UTF8.GetBytes(raw), $"rename {quoted} to {Preview(JsonSerializer.Serialize(renamed))}");
            }
            case 5:
            {
                string[] values = ["\"-1\"", "\"0\"", "\"99999999999999999999\"", "\" 5\"", "\"abc\"", "\"\"", "\"1e3\"", "\"a\\nb\"", "5", "null", "{}"];
                var value = values[random.Next(values.Length)];
                var key = new[] { "step", "format", "a\nb" }[random.Next(3)];
                if (root["__metadata__"] is not JsonObject metadata) root["__metadata__"] = metadata = new JsonObject();
                return (Splice(root, metadata, key, value), $"metadata {JsonSerializer.Serialize(key)} := {value}");
            }
            default:
            {
                tensor.Remove(new[] { "dtype", "shape", "data_offsets" }[random.Next(3)], out _);
                return (Bytes(root), $"{quoted} loses a field");
            }
        }
    }

    /// <summary>A tensor's byte range, or [0, 4] where an earlier change broke it.</summary>
    static (long Begin, long End) Offsets(JsonObject tensor) =>
        tensor["data_offsets"] is JsonArray { Count: 2 } range && range[0] is JsonValue b && b.TryGetValue<long>(out var begin)
            && range[1] is JsonValue e && e.TryGetValue<long>(out var end) ? (begin, end) : (0, 4);

    static readonly string[] SafeTensorsTokens = ["\"F32\"", "\"F16\"", "\"BF16\"", "\"F64\"", "\"I32\"", "[0, 4]", "[2, 2]", "[4]", "\"__metadata__\"", "\"pt\""];

    static readonly string[] ConfigTokens =
    [
        "\"PostHeadsGated\"", "\"Enwik8Small\"", "\"8\"", "\"True\"", "{\"Dim\": null}", "{\"Dim\": 8}", "{}", "[0, 0, 0, 0]", "[1, 2, 3]",
        "[1, 2, 3, 4, 5]", "[18446744073709551615, 1, 2, 3]", "[18446744073709551616, 1, 2, 3]", "[-1, 1, 2, 3]", "[1.5, 1, 2, 3]",
        "{\"Steps\": 0}", "{\"LearningRate\": -1}", "{\"Batch\": -4}", "{\"SeqLen\": 0}", "{\"Clip\": -0.5}", "{\"WeightDecay\": 1e308}", "0.0001",
        "2", "-0.0", "5e-324", "null", "\"\"", "\"a\\nb\"",
    ];

    static string SafeTensorsValue(Random random) => SafeTensorsTokens[random.Next(SafeTensorsTokens.Length)];

    static string ConfigValue(Random random) => ConfigTokens[random.Next(ConfigTokens.Length)];

    static readonly Lazy<string[]> Tokens = new(() =>
    [
        "0", "-1", "1", "7", "2147483647", "2147483648", "-2147483649", "4294967296", "9223372036854775807", "9223372036854775808",
        "-9223372036854775809", "18446744073709551616", "1099511627776", "0.5", "-0.5", "1.0", "1e3", "1e308", "1e400", "-1e400", "5e-324",
        "-0", "NaN", "-Infinity", "Infinity", "00012", "+1", "0x10", ".5", "1.", "99999999999999999999999999999999999999",
        "\"NaN\"", "\"Infinity\"", "\"-1\"", "\"1e400\"", "\"\"", "\" 5\"", "\"5 \"", "\"a\\nb\"", "\"a\\rb\"", "\"\\u0000\"", "\"\\ud800\"",
        "\"\\udc00x\"", "\"\\x\"", "\"\\u12\"", "\"" + new string('x', 100_000) + "\"", "\"\\u2028\"", "\"\u00e9\"",
        "true", "false", "null", "[]", "{}", "[null]", "[[]]", "{\"\":{}}", "[1,2,3]", "{\"a\":1,\"a\":2}",
        Nested(10), Nested(63), Nested(64), Nested(65), Nested(1000), Nested(100_000), "{\"a\":" + Nested(70) + "}",
        "[" + string.Join(",", Enumerable.Repeat(0, 20_000)) + "]",
    ]);

    static string Nested(int depth) => new string('[', depth) + new string(']', depth);

    /// <summary>
    /// A structure-aware change of a JSON document: a value replaced by an extreme or ill-typed token, a property
    /// removed, renamed, added or given twice, an array grown or shrunk, invalid UTF-8 in a string, or a change that
    /// keeps the meaning (indentation, property order, an ignored property inside an object).
    /// </summary>
    static (byte[] Bytes, string What, bool Preserving) MutateJson(Random random, byte[] json, Func<Random, string> formatValue)
    {
        var root = JsonNode.Parse(json)!;
        var slots = Slots(root).ToList();
        var slot = slots[random.Next(slots.Count)];
        string Token() => random.Next(3) == 0 ? formatValue(random) : Tokens.Value[random.Next(Tokens.Value.Length)];
        (byte[], string, bool) Replace()
        {
            var token = Token();
            return (Splice(root, slot, token), $"{slot} := {Preview(token)}", false);
        }
        (byte[], string, bool) Indent() =>
            (Encoding.UTF8.GetBytes(root.ToJsonString(new JsonSerializerOptions { WriteIndented = true })), "indent", true);
        switch (random.Next(12))
        {
            case 0 or 1 or 2:
                return Replace();
            case 3:
                Remove(slot);
                return (Bytes(root), $"remove {slot}", false);
            case 4:
            {
                // The same property twice: the second value may differ from the first.
                if (slot.Parent is not JsonObject obj) return Replace();
                var value = slot.Value?.ToJsonString() ?? "null";
                var second = random.Next(2) == 0 ? value : Token();
                var raw = "{" + string.Join(",", obj.Select(p => $"{JsonSerializer.Serialize(p.Key)}:{p.Value?.ToJsonString() ?? "null"}"))
                    + $",{JsonSerializer.Serialize(slot.Key)}:{second}" + "}";
                return (SpliceNode(root, obj, raw), $"{slot} twice, then {Preview(second)}", false);
            }
            case 5:
            {
                if (slot.Parent is not JsonObject obj) return Replace();
                string[] names = ["", "__metadata__", "dtype", "Model", "a\nb", "\u00e9", new string('k', 10_000), slot.Key!.ToUpperInvariant(), slot.Key + " "];
                var name = names[random.Next(names.Length)];
                var raw = "{" + string.Join(",", obj.Select(p =>
                    $"{JsonSerializer.Serialize(p.Key == slot.Key ? name : p.Key)}:{p.Value?.ToJsonString() ?? "null"}")) + "}";
                return (SpliceNode(root, obj, raw), $"rename {slot} to {Preview(JsonSerializer.Serialize(name))}", false);
            }
            case 6:
            {
                var target = slot.Value as JsonObject ?? root as JsonObject;
                if (target is null) return Replace();
                var token = Token();
                var name = random.Next(2) == 0 ? "extra" : new[] { "__metadata__", "x", "Format", "Step", "DataRng", "format" }[random.Next(6)];
                var raw = "{" + string.Join(",", target.Select(p => $"{JsonSerializer.Serialize(p.Key)}:{p.Value?.ToJsonString() ?? "null"}")
                    .Prepend($"{JsonSerializer.Serialize(name)}:{token}")) + "}";
                return (SpliceNode(root, target, raw), $"add \"{name}\": {Preview(token)} to {(target == root ? "the root" : slot.ToString())}", false);
            }
            case 7:
            {
                if (slot.Value is not JsonArray array) return Replace();
                var token = Token();
                var raw = "[" + string.Join(",", array.Select(e => e?.ToJsonString() ?? "null").Append(token)) + "]";
                return (SpliceNode(root, array, raw), $"append {Preview(token)} to {slot}", false);
            }
            case 8:
            {
                // Invalid UTF-8 inside a string value or name.
                var bytes = Bytes(root);
                var quotes = Enumerable.Range(0, bytes.Length).Where(i => bytes[i] == '"').ToList();
                if (quotes.Count == 0) return Replace();
                var at = quotes[random.Next(quotes.Count)] + 1;
                byte[][] invalid = [[0xFF], [0xC3, 0x28], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xC0, 0xAF], [0x80]];
                var bad = invalid[random.Next(invalid.Length)];
                return ([.. bytes[..at], .. bad, .. bytes[at..]], $"invalid UTF-8 {Convert.ToHexString(bad)} at byte {at}", false);
            }
            case 9:
                return Indent();
            case 10:
            {
                if ((slot.Value ?? root) is not JsonObject obj) return Indent();
                var reordered = new JsonObject(obj.Reverse().Select(p => KeyValuePair.Create(p.Key, p.Value?.DeepClone())).ToList());
                return (SpliceNode(root, obj, reordered.ToJsonString()), $"reverse the properties of {(obj == root ? "the root" : slot.ToString())}", true);
            }
            default:
            {
                // A property the reader ignores, inside a tensor's or the options' object (not at the root, where
                // a name is a tensor in safetensors).
                if (slot.Value is not JsonObject obj || obj == root || obj.Parent != root || slot.Key == "__metadata__" || slot.Key == "Hyperparameters")
                    return Indent();
                obj["ignored_by_the_reader"] = new JsonArray(1, "two", new JsonObject { ["three"] = null });
                return (Bytes(root), $"add an ignored property to {slot}", true);
            }
        }
    }

    sealed record Slot(JsonNode Parent, string? Key, int Index, JsonNode? Value)
    {
        public override string ToString() => Key is null ? $"{Parent.GetPath()}[{Index}]" : $"{Parent.GetPath()}.{Key}";
    }

    static IEnumerable<Slot> Slots(JsonNode node)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, value) in obj)
                {
                    yield return new Slot(obj, key, -1, value);
                    if (value is not null)
                        foreach (var inner in Slots(value)) yield return inner;
                }
                break;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    yield return new Slot(array, null, i, array[i]);
                    if (array[i] is { } value)
                        foreach (var inner in Slots(value)) yield return inner;
                }
                break;
        }
    }

    static void Remove(Slot slot)
    {
        if (slot.Key is { } key) ((JsonObject)slot.Parent).Remove(key);
        else ((JsonArray)slot.Parent).RemoveAt(slot.Index);
    }

    const string Placeholder = "@@fuzz-placeholder@@";

    static byte[] Bytes(JsonNode root) =>
        Encoding.UTF8.GetBytes(root.ToJsonString(new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));

    /// <summary>The document with the value in <paramref name="slot"/> replaced by raw JSON text (which may be invalid).</summary>
    static byte[] Splice(JsonNode root, Slot slot, string raw)
    {
        if (slot.Key is { } key) ((JsonObject)slot.Parent)[key] = Placeholder;
        else ((JsonArray)slot.Parent)[slot.Index] = Placeholder;
        return Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(Bytes(root)).Replace($"\"{Placeholder}\"", raw));
    }

    static byte[] Splice(JsonNode root, JsonObject obj, string key, string raw) => Splice(root, new Slot(obj, key, -1, obj[key]), raw);

    /// <summary>The document with <paramref name="node"/> (the root included) replaced by raw JSON text.</summary>
    static byte[] SpliceNode(JsonNode root, JsonNode node, string raw)
    {
        if (node == root) return Encoding.UTF8.GetBytes(raw);
        return node.Parent switch
        {
            JsonObject parent => Splice(root, new Slot(parent, node.GetPropertyName(), -1, node), raw),
            JsonArray parent => Splice(root, new Slot(parent, null, node.GetElementIndex(), node), raw),
            _ => throw new InvalidOperationException("a node without a parent is the root"),
        };
    }

    static string Preview(string text) => text.Length > 40 ? $"{text[..40]}… ({text.Length} chars)" : text;
}
