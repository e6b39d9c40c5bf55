using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using GateLoop.Runtime;

namespace GateLoop.Runtime.Tests;

/// <summary>The safetensors reader and writer, and the JSON files of a checkpoint directory.</summary>
public sealed class SafeTensorsTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("gateloop-safetensors-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    string PathOf(string name) => Path.Combine(directory, name);

    [Fact]
    public void Round_trip_keeps_names_shapes_values_order_and_metadata()
    {
        var random = new Random(3);
        var weight = Enumerable.Range(0, 12).Select(_ => random.NextSingle() - 0.5f).ToArray();
        float[] bias = [1f, float.MaxValue, float.Epsilon, -0f, float.NaN];
        var path = PathOf("model.safetensors");
        SafeTensors.Write(path,
        [
            ("layers.0.1.fn.0.weight", [3, 4], weight),
            ("layers.0.1.fn.0.bias", [5], bias),
            ("scalar", [], new float[] { 42f }),
            ("empty", [0, 3], ReadOnlyMemory<float>.Empty),
        ], new Dictionary<string, string> { ["format"] = "pt", ["step"] = "100" });

        Assert.False(File.Exists(path + ".tmp"));
        var file = SafeTensors.Read(path);
        Assert.Equal(["layers.0.1.fn.0.weight", "layers.0.1.fn.0.bias", "scalar", "empty"], file.Tensors.Keys);
        Assert.Equal([3, 4], file.Tensors["layers.0.1.fn.0.weight"].Shape);
        Assert.Equal(weight, file.Tensors["layers.0.1.fn.0.weight"].Data);
        Assert.Equal(
            bias.Select(BitConverter.SingleToInt32Bits),
            file.Tensors["layers.0.1.fn.0.bias"].Data.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal([42f], file.Tensors["scalar"].Data);
        Assert.Empty(file.Tensors["scalar"].Shape);
        Assert.Empty(file.Tensors["empty"].Data);
        Assert.All(file.Tensors.Values, t => Assert.Equal("F32", t.DType));
        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt", ["step"] = "100" }, file.Metadata);

        // The layout on disk: 8-byte length, space-padded JSON, then data in the order given.
        var bytes = File.ReadAllBytes(path);
        var n = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, n % 8);
        Assert.Equal(8 + n + 4 * (12 + 5 + 1), bytes.Length);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, n));
        var bias0 = header.RootElement.GetProperty("layers.0.1.fn.0.bias");
        Assert.Equal("F32", bias0.GetProperty("dtype").GetString());
        Assert.Equal([48L, 68L], bias0.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal(1f, BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(8 + n + 48)));
    }

    [Fact]
    public void Write_replaces_an_existing_file()
    {
        var path = PathOf("m.safetensors");
        SafeTensors.Write(path, [("a", [2], new float[] { 1, 2 })]);
        SafeTensors.Write(path, [("b", [1], new float[] { 3 })]);
        Assert.Equal(["b"], SafeTensors.Read(path).Tensors.Keys);
        Assert.Throws<ArgumentException>(() => SafeTensors.Write(path, [("c", [2, 2], new float[3])]));
        Assert.Throws<ArgumentException>(() => SafeTensors.Write(path, [("c", [1], new float[1]), ("c", [1], new float[1])]));
        Assert.Equal(["b"], SafeTensors.Read(path).Tensors.Keys);
    }

    /// <summary>
    /// Bytes laid out by hand from the format description, as <c>safetensors.torch.save_file</c> writes them:
    /// metadata first, tensors sorted by alignment then name, header padded with spaces to 8 bytes.
    /// </summary>
    [Fact]
    public void Reads_a_file_written_by_hand_with_F32_F64_BF16_and_F16()
    {
        const string json =
            """{"__metadata__":{"format":"pt"},"f64":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[24,30]},"h":{"dtype":"F16","shape":[2],"data_offsets":[30,34]}}""";
        var header = Encoding.UTF8.GetBytes(json);
        var padded = header.Concat(Enumerable.Repeat((byte)' ', (8 - header.Length % 8) % 8)).ToArray();
        byte[] data =
        [
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF8, 0x3F, // F64 1.5
            0x00, 0x00, 0x80, 0x3F, // F32 1.0
            0x00, 0x00, 0x20, 0xC0, // F32 -2.5
            0x00, 0x00, 0x20, 0x3E, // F32 0.15625
            0xC3, 0xF5, 0x48, 0x40, // F32 3.14 (0x4048F5C3)
            0x80, 0x3F,             // BF16 1.0
            0x00, 0xC0,             // BF16 -2.0
            0x49, 0x40,             // BF16 3.140625
            0x00, 0x3C,             // F16 1.0
            0x00, 0xB8,             // F16 -0.5
        ];
        var length = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded.Length);
        var path = PathOf("torch.safetensors");
        File.WriteAllBytes(path, [.. length, .. padded, .. data]);

        var file = SafeTensors.Read(path);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(["f64", "w", "b", "h"], file.Tensors.Keys);
        Assert.Equal(new SafeTensor("f64", "F64", [1], [1.5f]).Data, file.Tensors["f64"].Data);
        Assert.Equal("F64", file.Tensors["f64"].DType);
        Assert.Equal([2, 2], file.Tensors["w"].Shape);
        Assert.Equal([1f, -2.5f, 0.15625f, 3.14f], file.Tensors["w"].Data);
        Assert.Equal("BF16", file.Tensors["b"].DType);
        Assert.Equal([1f, -2f, 3.140625f], file.Tensors["b"].Data);
        Assert.Equal("F16", file.Tensors["h"].DType);
        Assert.Equal([1f, -0.5f], file.Tensors["h"].Data);
    }

    /// <summary>A valid file: header <paramref name="json"/> (padded) and <paramref name="dataBytes"/> zero bytes.</summary>
    string WriteRaw(string name, string json, int dataBytes, ulong? headerLength = null)
    {
        var header = Encoding.UTF8.GetBytes(json.PadRight((json.Length + 7) / 8 * 8));
        var length = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, headerLength ?? (ulong)header.Length);
        var path = PathOf(name);
        File.WriteAllBytes(path, [.. length, .. header, .. new byte[dataBytes]]);
        return path;
    }

    static string ErrorOf(string path) => Assert.Throws<UserInputException>(() => SafeTensors.Read(path)).Message;

    [Fact]
    public void Truncated_files_are_reported()
    {
        var path = PathOf("t.safetensors");
        SafeTensors.Write(path, [("a", [4], new float[] { 1, 2, 3, 4 })]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^3]);
        Assert.Equal(
            $"corrupt or truncated safetensors file {path}: tensor 'a' data_offsets [0, 16] fall outside the 13 data bytes; write it again or use another checkpoint",
            ErrorOf(path));

        File.WriteAllBytes(path, bytes[..5]);
        Assert.Equal(
            $"corrupt or truncated safetensors file {path}: it has 5 bytes, fewer than the 8-byte header length; write it again or use another checkpoint",
            ErrorOf(path));

        File.WriteAllBytes(path, bytes[..20]);
        Assert.StartsWith($"corrupt or truncated safetensors file {path}: the header length", ErrorOf(path));
    }

    [Fact]
    public void Bad_header_length_is_reported()
    {
        var path = WriteRaw("len.safetensors", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4, headerLength: 1UL << 40);
        Assert.Contains("runs past the end of the file (", ErrorOf(path));
        var huge = WriteRaw("len2.safetensors", "{}", 0, headerLength: ulong.MaxValue);
        Assert.Contains("runs past the end of the file", ErrorOf(huge));
    }

    [Fact]
    public void Bad_json_is_reported()
    {
        var path = WriteRaw("json.safetensors", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]""", 4);
        Assert.StartsWith($"corrupt or truncated safetensors file {path}: the header is not valid JSON", ErrorOf(path));
        var array = WriteRaw("array.safetensors", "[1,2]", 0);
        Assert.Contains("the header is a JSON Array, not an object", ErrorOf(array));
        var noShape = WriteRaw("shape.safetensors", """{"a":{"dtype":"F32","data_offsets":[0,4]}}""", 4);
        Assert.Contains("tensor 'a' has no \"shape\" array", ErrorOf(noShape));
        var negative = WriteRaw("neg.safetensors", """{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", 4);
        Assert.Contains("tensor 'a' shape holds -1, not a non-negative integer", ErrorOf(negative));
    }

    [Fact]
    public void Text_that_is_not_valid_UTF8_is_reported()
    {
        var path = WriteRaw("utf8.safetensors", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4);
        var bytes = File.ReadAllBytes(path);
        bytes[10] = 0xFF; // the name "a"
        File.WriteAllBytes(path, bytes);
        Assert.StartsWith($"corrupt or truncated safetensors file {path}: a name or string in the header is not valid UTF-8 text", ErrorOf(path));
        var surrogate = WriteRaw("surrogate.safetensors", """{"a":{"dtype":"\ud800","shape":[1],"data_offsets":[0,4]}}""", 4);
        Assert.StartsWith($"corrupt or truncated safetensors file {surrogate}: a name or string in the header is not valid UTF-8 text", ErrorOf(surrogate));
    }

    [Fact]
    public void Names_and_parser_errors_are_quoted_on_one_line()
    {
        var path = WriteRaw("lines.safetensors", """{"a\nb\u2028c":{"dtype":"I\r64","shape":[1],"data_offsets":[0,8]}}""", 8);
        Assert.Equal(
            $"safetensors file {path}: tensor 'a\\nb\\u2028c' has dtype I\\r64, which cannot be read (F32, F16, BF16 and F64 can); save the weights as floating point, e.g. model.float()",
            ErrorOf(path));
        var longName = new string('n', 1000);
        var shape = WriteRaw("long.safetensors", "{\"" + longName + "\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
        Assert.Contains($"tensor '{longName[..100]}…{longName[..100]}' shape holds -1", ErrorOf(shape));
        var json = WriteRaw("json-lines.safetensors", "{\"a\":\n  tru\n\n}", 0);
        var message = ErrorOf(json);
        Assert.StartsWith($"corrupt or truncated safetensors file {json}: the header is not valid JSON", message);
        Assert.DoesNotContain('\n', message);
    }

    [Fact]
    public void Offsets_must_match_the_shape_and_not_overlap()
    {
        var path = WriteRaw("size.safetensors", """{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}""", 24);
        Assert.Equal(
            $"corrupt or truncated safetensors file {path}: tensor 'a' data_offsets [0, 20] hold 20 bytes, but shape [2, 3] of F32 needs 24; write it again or use another checkpoint",
            ErrorOf(path));
        var reversed = WriteRaw("rev.safetensors", """{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}""", 8);
        Assert.Contains("data_offsets [8, 4] fall outside", ErrorOf(reversed));
        var overlap = WriteRaw("overlap.safetensors",
            """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12);
        Assert.Contains("tensors 'a' [0, 8] and 'b' [4, 12] overlap", ErrorOf(overlap));
        var three = WriteRaw("three.safetensors", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}""", 8);
        Assert.Contains("tensor 'a' has 3 data_offsets, not 2", ErrorOf(three));
    }

    [Fact]
    public void Unknown_dtype_and_missing_file_are_reported()
    {
        var path = WriteRaw("i64.safetensors", """{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}""", 8);
        Assert.Equal(
            $"safetensors file {path}: tensor 'a' has dtype I64, which cannot be read (F32, F16, BF16 and F64 can); save the weights as floating point, e.g. model.float()",
            ErrorOf(path));
        var missing = PathOf("missing.safetensors");
        Assert.Equal($"safetensors file {missing} not found; check the checkpoint path", ErrorOf(missing));
    }

    sealed record Config(string Model, int Step, Dictionary<string, double> Attributes);

    [Fact]
    public void Checkpoint_json_round_trips_atomically()
    {
        var path = Path.Combine(directory, "ckpt", CheckpointDirectory.ConfigFileName);
        var config = new Config("Enwik8Small", 1000, new() { ["Dim"] = 128, ["Depth"] = 4 });
        CheckpointDirectory.WriteJsonAtomic(path, config);
        Assert.False(File.Exists(path + ".tmp"));
        Assert.Contains("\n  \"Step\": 1000", File.ReadAllText(path).ReplaceLineEndings("\n"));
        var read = CheckpointDirectory.ReadJson<Config>(path);
        Assert.Equal((config.Model, config.Step), (read.Model, read.Step));
        Assert.Equal(config.Attributes, read.Attributes);
    }

    [Fact]
    public void Checkpoint_json_errors_are_clear()
    {
        var missing = Path.Combine(directory, "nothing-here", CheckpointDirectory.ConfigFileName);
        Assert.Equal(
            $"{Path.Combine(directory, "nothing-here")} is not a checkpoint directory (no config.json); pass a directory written by `gateloop train`",
            Assert.Throws<UserInputException>(() => CheckpointDirectory.ReadJson<Config>(missing)).Message);

        var bad = PathOf(CheckpointDirectory.ConfigFileName);
        File.WriteAllText(bad, "{\"Model\": ");
        Assert.StartsWith($"{bad} is not valid Config JSON",
            Assert.Throws<UserInputException>(() => CheckpointDirectory.ReadJson<Config>(bad)).Message);

        File.WriteAllText(bad, "{\n  \"Model\": \"a\",\n  \"Step\": tru\n}");
        var message = Assert.Throws<UserInputException>(() => CheckpointDirectory.ReadJson<Config>(bad)).Message;
        Assert.StartsWith($"{bad} is not valid Config JSON", message);
        Assert.DoesNotContain('\n', message);

        File.WriteAllText(bad, "null");
        Assert.StartsWith($"{bad} holds null",
            Assert.Throws<UserInputException>(() => CheckpointDirectory.ReadJson<Config>(bad)).Message);
    }

    [Theory]
    [InlineData("\"Format\": 1", "\"Format\": 2", "has format 2, which this version cannot read (it reads format 1)")]
    [InlineData("\"Model\": \"PostHeadsGated\"", "\"Model\": null", "has no usable model name ('')")]
    [InlineData("\"Model\": \"PostHeadsGated\"", "\"Model\": \"Post\\nHeads\"", "has no usable model name ('Post\\nHeads')")]
    [InlineData("\"Hyperparameters\": {", "\"Hyperparameters\": null, \"Unused\": {", "has no Hyperparameters")]
    [InlineData("\"Dim\": \"8\"", "\"Dim\": null", "has no value for hyperparameter 'Dim'")]
    [InlineData("\"Step\": 5", "\"Step\": -5", "has step -5, which is negative")]
    [InlineData("\"DataRng\": [", "\"DataRng\": [0, 0, 0, 0], \"Unused\": [", "has an all-zero random generator state")]
    [InlineData("\"DataRng\": [", "\"DataRng\": [1, 2], \"Unused\": [", "has a random generator state of 2 words, not 4")]
    [InlineData("\"Batch\": 4", "\"Batch\": 0", "has training options no run can use (TrainOptions.Batch must be positive, got 0)")]
    [InlineData("\"LearningRate\": 0.0001", "\"LearningRate\": 1e400", "has training options no run can use (TrainOptions.LearningRate must be a finite number, got Infinity; pass an ordinary number such as 0.5, or leave the option out for its default)")]
    public void Config_values_no_run_can_use_are_reported(string valid, string damaged, string problem)
    {
        var checkpoint = Path.Combine(directory, "config-values");
        var path = Path.Combine(checkpoint, CheckpointDirectory.ConfigFileName);
        CheckpointDirectory.WriteJsonAtomic(path, new CheckpointConfig
        {
            Model = "PostHeadsGated",
            Hyperparameters = new() { ["Dim"] = "8" },
            Step = 5,
            Options = new TrainOptions(),
            DataRng = new Rng(1).State,
        });
        Assert.Equal(5, Checkpoint.ReadConfig(checkpoint).Step);
        var json = File.ReadAllText(path);
        Assert.Contains(valid, json);
        File.WriteAllText(path, json.Replace(valid, damaged));
        Assert.Equal($"{path} {problem}; the checkpoint is damaged, use another one",
            Assert.Throws<UserInputException>(() => Checkpoint.ReadConfig(checkpoint)).Message);
    }
}
