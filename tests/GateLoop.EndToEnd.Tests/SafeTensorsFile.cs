using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace GateLoop.EndToEnd.Tests;

/// <summary>A float32 tensor of a safetensors file.</summary>
public sealed record Tensor(string Name, int[] Shape, float[] Data);

/// <summary>
/// An independent reader and a PyTorch-style writer of the safetensors format, written from its specification
/// (https://github.com/huggingface/safetensors): 8-byte little-endian header length N, N bytes of JSON header
/// (padded with spaces to a multiple of 8), then the raw little-endian tensor data.
/// </summary>
public static class SafeTensorsFile
{
    /// <summary>Reads a file of F32 tensors, in header order; returns the tensors and the <c>__metadata__</c> strings.</summary>
    public static (List<Tensor> Tensors, Dictionary<string, string> Metadata) Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        long dataStart = 8 + headerLength;
        var tensors = new List<Tensor>();
        var metadata = new Dictionary<string, string>();
        foreach (var entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__")
            {
                foreach (var item in entry.Value.EnumerateObject()) metadata[item.Name] = item.Value.GetString()!;
                continue;
            }
            Assert.Equal("F32", entry.Value.GetProperty("dtype").GetString());
            var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var data = new float[(offsets[1] - offsets[0]) / 4];
            for (int i = 0; i < data.Length; i++)
                data[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan((int)(dataStart + offsets[0] + 4 * i)));
            Assert.Equal(shape.Aggregate(1L, (a, d) => a * d), data.Length);
            tensors.Add(new Tensor(entry.Name, shape, data));
        }
        return (tensors, metadata);
    }

    /// <summary>
    /// Writes tensors the way <c>safetensors.torch.save_file</c> does for float32 tensors: sorted by name, data laid
    /// out contiguously in that order, a compact JSON header with <c>__metadata__</c> first and each tensor's
    /// <c>dtype</c>, <c>shape</c>, <c>data_offsets</c>, padded with spaces to a multiple of 8 bytes.
    /// </summary>
    public static void WriteLikePyTorch(string path, IEnumerable<Tensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        var sorted = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("__metadata__");
            foreach (var (key, value) in metadata) writer.WriteString(key, value);
            writer.WriteEndObject();
            long offset = 0;
            foreach (var t in sorted)
            {
                writer.WriteStartObject(t.Name);
                writer.WriteString("dtype", "F32");
                writer.WriteStartArray("shape");
                foreach (var d in t.Shape) writer.WriteNumberValue(d);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                offset += 4L * t.Data.Length;
                writer.WriteNumberValue(offset);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
        }
        while (json.Length % 8 != 0) json.WriteByte((byte)' ');
        using var file = File.Create(path);
        Span<byte> word = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(word, (ulong)json.Length);
        file.Write(word);
        file.Write(json.ToArray());
        foreach (var t in sorted)
            foreach (var v in t.Data)
            {
                BinaryPrimitives.WriteSingleLittleEndian(word, v);
                file.Write(word[..4]);
            }
    }

    /// <summary>The <c>__metadata__</c> strings of a safetensors file, read from its header alone.</summary>
    public static Dictionary<string, string> Metadata(string path)
    {
        using var header = JsonDocument.Parse(HeaderText(path));
        return header.RootElement.TryGetProperty("__metadata__", out var metadata)
            ? metadata.EnumerateObject().ToDictionary(item => item.Name, item => item.Value.GetString()!)
            : [];
    }

    /// <summary>The header JSON text of a safetensors file (for assertions and messages).</summary>
    public static string HeaderText(string path)
    {
        using var file = File.OpenRead(path);
        Span<byte> word = stackalloc byte[8];
        file.ReadExactly(word);
        var header = new byte[BinaryPrimitives.ReadUInt64LittleEndian(word)];
        file.ReadExactly(header);
        return Encoding.UTF8.GetString(header);
    }
}
