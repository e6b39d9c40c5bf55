using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace GateLoop.Runtime;

/// <summary>One tensor read from a safetensors file.</summary>
/// <param name="Name">The tensor's name, e.g. <c>token_emb.weight</c>.</param>
/// <param name="DType">The dtype stored in the file (<c>F32</c>, <c>F16</c>, <c>BF16</c> or <c>F64</c>).</param>
/// <param name="Shape">The shape, outermost dimension first.</param>
/// <param name="Data">The values in row-major order, converted to float.</param>
public sealed record SafeTensor(string Name, string DType, int[] Shape, float[] Data);

/// <summary>The contents of a safetensors file.</summary>
/// <param name="Tensors">The tensors by name, in file order.</param>
/// <param name="Metadata">The <c>__metadata__</c> strings (empty when the file has none).</param>
public sealed record SafeTensorFile(IReadOnlyDictionary<string, SafeTensor> Tensors, IReadOnlyDictionary<string, string> Metadata);

/// <summary>
/// Reads and writes the safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
/// header length N, N bytes of UTF-8 JSON describing each tensor's dtype, shape and byte range, then the raw
/// little-endian tensor data. PyTorch users read our checkpoints with <c>safetensors.torch.load_file</c>.
/// </summary>
public static class SafeTensors
{
    const string MetadataKey = "__metadata__";
    const int ChunkBytes = 1 << 16;

    /// <summary>
    /// Writes float32 tensors, in the order given, to <paramref name="path"/>. The file appears atomically: it is
    /// written to <c>path.tmp</c>, flushed to disk and then renamed, so a crash never leaves a half-written file.
    /// </summary>
    /// <param name="path">The file to write; its directory is created if missing.</param>
    /// <param name="tensors">Name, shape and row-major values of each tensor.</param>
    /// <param name="metadata">Optional free-form strings stored under <c>__metadata__</c>.</param>
    /// <exception cref="ArgumentException">A name is empty, reserved or repeated, or a shape does not match its data.</exception>
    public static void Write(
        string path,
        IEnumerable<(string Name, int[] Shape, ReadOnlyMemory<float> Data)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        var header = BuildHeader(list, metadata);

        var fullPath = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(fullPath)!);
        var temp = fullPath + ".tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, ChunkBytes))
            {
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
                stream.Write(length);
                stream.Write(header);
                var buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
                try
                {
                    foreach (var (_, _, data) in list)
                        WriteFloats(stream, data.Span, buffer);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, fullPath, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>
    /// Reads a safetensors file. F32 tensors are read as they are; F16, BF16 and F64 (which PyTorch users may
    /// save) are converted to float.
    /// </summary>
    /// <param name="path">The file to read.</param>
    /// <exception cref="UserInputException">
    /// The file is missing or unreadable, truncated, has a bad header, byte ranges that do not fit the file or the
    /// shapes, or a dtype other than F32/F16/BF16/F64.
    /// </exception>
    public static SafeTensorFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new UserInputException($"safetensors file {path} not found; check the checkpoint path");
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, ChunkBytes);
            return Read(path, stream);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserInputException($"cannot read safetensors file {path}: {e.Message}", e);
        }
    }

    static SafeTensorFile Read(string path, FileStream stream)
    {
        var fileLength = stream.Length;
        if (fileLength < 8)
            throw Corrupt(path, $"it has {fileLength} bytes, fewer than the 8-byte header length");
        Span<byte> lengthBytes = stackalloc byte[8];
        stream.ReadExactly(lengthBytes);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > (ulong)(fileLength - 8))
            throw Corrupt(path, $"the header length {headerLength:N0} runs past the end of the file ({fileLength:N0} bytes)");
        if (headerLength > (ulong)Array.MaxLength)
            throw Corrupt(path, $"the header length {headerLength:N0} is too large to be a header");
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        var dataStart = 8 + (long)headerLength;
        var dataLength = fileLength - dataStart;

        var (entries, metadata) = ParseHeader(path, header, dataLength);

        var tensors = new Dictionary<string, SafeTensor>(entries.Count, StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            var bytes = new byte[entry.End - entry.Begin];
            stream.Position = dataStart + entry.Begin;
            stream.ReadExactly(bytes);
            tensors.Add(entry.Name, new SafeTensor(entry.Name, entry.DType, entry.Shape, Decode(bytes, entry.DType)));
        }
        return new SafeTensorFile(tensors, metadata);
    }

    sealed record Entry(string Name, string DType, int[] Shape, long Begin, long End);

    static (List<Entry> Entries, Dictionary<string, string> Metadata) ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw Corrupt(path, $"the header is not valid JSON ({UserInputException.Printable(e.Message)})", e);
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw Corrupt(path, $"the header is a JSON {document.RootElement.ValueKind}, not an object");
            var entries = new List<Entry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            try
            {
                foreach (var property in document.RootElement.EnumerateObject())
                {
                    if (!seen.Add(property.Name))
                        throw Corrupt(path, $"the header names '{UserInputException.Printable(property.Name)}' twice");
                    if (property.Name == MetadataKey)
                        ParseMetadata(path, property.Value, metadata);
                    else
                        entries.Add(ParseEntry(path, property.Name, property.Value, dataLength));
                }
            }
            catch (InvalidOperationException e)
            {
                // JsonDocument decodes a string only when it is read: invalid UTF-8 or a lone surrogate escape
                // ("\ud800") throws then, not in Parse.
                throw Corrupt(path, $"a name or string in the header is not valid UTF-8 text ({e.Message})", e);
            }
            CheckNoOverlap(path, entries);
            return (entries, metadata);
        }
    }

    static void ParseMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Corrupt(path, $"{MetadataKey} is a JSON {value.ValueKind}, not an object of strings");
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw Corrupt(path, $"{MetadataKey} entry '{UserInputException.Printable(item.Name)}' is a JSON {item.Value.ValueKind}, not a string");
            metadata[item.Name] = item.Value.GetString()!;
        }
    }

    static Entry ParseEntry(string path, string name, JsonElement value, long dataLength)
    {
        var tensor = $"tensor '{UserInputException.Printable(name)}'";
        if (value.ValueKind != JsonValueKind.Object)
            throw Corrupt(path, $"{tensor} is described by a JSON {value.ValueKind}, not an object");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Corrupt(path, $"{tensor} has no string \"dtype\"");
        var dtype = dtypeElement.GetString()!;
        var elementSize = ElementSize(dtype);
        if (elementSize == 0)
            throw new UserInputException(
                $"safetensors file {path}: {tensor} has dtype {UserInputException.Printable(dtype)}, which cannot be read (F32, F16, BF16 and F64 can); save the weights as floating point, e.g. model.float()");
        var shape = ReadIntegers(path, tensor, value, "shape", int.MaxValue);
        var offsets = ReadIntegers(path, tensor, value, "data_offsets", long.MaxValue);
        if (offsets.Length != 2)
            throw Corrupt(path, $"{tensor} has {offsets.Length} data_offsets, not 2");
        var (begin, end) = (offsets[0], offsets[1]);
        if (begin > end || end > dataLength)
            throw Corrupt(path, $"{tensor} data_offsets [{begin}, {end}] fall outside the {dataLength:N0} data bytes");
        var count = shape.Aggregate(1.0, (a, d) => a * d);
        if (count > Array.MaxLength)
            throw Corrupt(path, $"{tensor} shape [{string.Join(", ", shape)}] has {count:N0} elements, too many to load");
        var expected = (long)count * elementSize;
        if (end - begin != expected)
            throw Corrupt(path,
                $"{tensor} data_offsets [{begin}, {end}] hold {end - begin:N0} bytes, but shape [{string.Join(", ", shape)}] of {dtype} needs {expected:N0}");
        return new Entry(name, dtype, shape.Select(d => (int)d).ToArray(), begin, end);
    }

    static long[] ReadIntegers(string path, string tensor, JsonElement value, string property, long max)
    {
        if (!value.TryGetProperty(property, out var array) || array.ValueKind != JsonValueKind.Array)
            throw Corrupt(path, $"{tensor} has no \"{property}\" array");
        var result = new long[array.GetArrayLength()];
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out var n) || n < 0 || n > max)
                throw Corrupt(path, $"{tensor} {property} holds {UserInputException.Printable(item.GetRawText())}, not a non-negative integer up to {max}");
            result[i++] = n;
        }
        return result;
    }

    static void CheckNoOverlap(string path, List<Entry> entries)
    {
        var ordered = entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin).ToList();
        for (var i = 1; i < ordered.Count; i++)
            if (ordered[i].Begin < ordered[i - 1].End)
                throw Corrupt(path,
                    $"tensors '{UserInputException.Printable(ordered[i - 1].Name)}' [{ordered[i - 1].Begin}, {ordered[i - 1].End}] and '{UserInputException.Printable(ordered[i].Name)}' [{ordered[i].Begin}, {ordered[i].End}] overlap");
    }

    /// <summary>Bytes per element of a dtype this reader converts, or 0 for any other dtype.</summary>
    static int ElementSize(string dtype) => dtype switch
    {
        "F32" => 4,
        "F16" or "BF16" => 2,
        "F64" => 8,
        _ => 0,
    };

    static float[] Decode(byte[] bytes, string dtype)
    {
        var values = new float[bytes.Length / ElementSize(dtype)];
        ReadOnlySpan<byte> b = bytes;
        switch (dtype)
        {
            case "F32":
                for (var i = 0; i < values.Length; i++)
                    values[i] = BinaryPrimitives.ReadSingleLittleEndian(b[(4 * i)..]);
                break;
            case "F16":
                for (var i = 0; i < values.Length; i++)
                    values[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(b[(2 * i)..]);
                break;
            case "BF16":
                for (var i = 0; i < values.Length; i++)
                    values[i] = Bf16.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(b[(2 * i)..]));
                break;
            default:
                for (var i = 0; i < values.Length; i++)
                    values[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(b[(8 * i)..]);
                break;
        }
        return values;
    }

    static byte[] BuildHeader(List<(string Name, int[] Shape, ReadOnlyMemory<float> Data)> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        using var json = new MemoryStream();
        // Relaxed escaping keeps names and metadata readable in the header; the JSON stays valid.
        using (var writer = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            long offset = 0;
            foreach (var (name, shape, data) in tensors)
            {
                ArgumentException.ThrowIfNullOrEmpty(name, nameof(tensors));
                ArgumentNullException.ThrowIfNull(shape, nameof(tensors));
                if (name == MetadataKey || !names.Add(name))
                    throw new ArgumentException($"tensor name '{name}' is reserved or repeated", nameof(tensors));
                if (shape.Any(d => d < 0) || shape.Aggregate(1L, (a, d) => a * d) != data.Length)
                    throw new ArgumentException(
                        $"tensor '{name}' has shape [{string.Join(", ", shape)}] but {data.Length} values", nameof(tensors));
                writer.WriteStartObject(name);
                writer.WriteString("dtype", "F32");
                writer.WriteStartArray("shape");
                foreach (var d in shape)
                    writer.WriteNumberValue(d);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                offset += 4L * data.Length;
                writer.WriteNumberValue(offset);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata)
                    writer.WriteString(key, value);
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
        }
        // Spaces pad the header so the data starts 8-byte aligned, as the reference writer does.
        var length = json.Length;
        var padded = (length + 7) / 8 * 8;
        json.Write(Encoding.ASCII.GetBytes(new string(' ', (int)(padded - length))));
        return json.ToArray();
    }

    static void WriteFloats(Stream stream, ReadOnlySpan<float> values, byte[] buffer)
    {
        var perChunk = buffer.Length / 4;
        for (var start = 0; start < values.Length; start += perChunk)
        {
            var chunk = values.Slice(start, Math.Min(perChunk, values.Length - start));
            for (var i = 0; i < chunk.Length; i++)
                BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(4 * i), chunk[i]);
            stream.Write(buffer, 0, 4 * chunk.Length);
        }
    }

    static UserInputException Corrupt(string path, string problem, Exception? inner = null) =>
        new($"corrupt or truncated safetensors file {path}: {problem}; write it again or use another checkpoint", inner);
}
