using System.Text;

namespace GateLoop.EndToEnd.Tests;

/// <summary>
/// Small English-like corpora made by the tests: the start of <c>System.Runtime.xml</c> from the .NET reference
/// pack (found the way the CLI's default corpus is), or, where no pack is installed, seeded pseudo-English.
/// </summary>
public static class TestCorpus
{
    /// <summary>
    /// The training corpus length. Its valid split (10,048 bytes) and test split (10,049 bytes) straddle a multiple
    /// of 64, so valid and test, and seq 64 and seq 32, give different evaluation token counts.
    /// </summary>
    public const int TrainingLength = 200_970;

    /// <summary>The evaluation file length: valid split 2,048 bytes, test split 2,049 bytes (same property, smaller).</summary>
    public const int EvaluationLength = 40_970;

    /// <summary>The first <paramref name="length"/> bytes starting at <paramref name="offset"/> of the source text.</summary>
    public static byte[] Make(int offset, int length)
    {
        var source = ReferencePackXml() ?? Generated(offset + length);
        Assert.True(source.Length >= offset + length, $"the source text has only {source.Length:N0} bytes");
        return source.AsSpan(offset, length).ToArray();
    }

    /// <summary>Where <c>gateloop</c>'s corpus splits a file: first 90% train, next 5% valid, the rest test.</summary>
    public static (byte[] Train, byte[] Valid, byte[] Test) Split(byte[] bytes)
    {
        int trainEnd = (int)(bytes.Length * 90L / 100), validEnd = (int)(bytes.Length * 95L / 100);
        return (bytes[..trainEnd], bytes[trainEnd..validEnd], bytes[validEnd..]);
    }

    /// <summary>Entropy in bits of the byte frequencies of <paramref name="bytes"/> (a unigram model's bits per character).</summary>
    public static double UnigramEntropyBits(byte[] bytes)
    {
        var counts = new long[256];
        foreach (var b in bytes) counts[b]++;
        double h = 0;
        foreach (var c in counts)
        {
            if (c == 0) continue;
            double p = (double)c / bytes.Length;
            h -= p * Math.Log2(p);
        }
        return h;
    }

    static byte[]? ReferencePackXml()
    {
        // typeof(object) lives in <root>/shared/Microsoft.NETCore.App/<version>/; the packs are under <root>/packs.
        var runtime = Path.GetDirectoryName(typeof(object).Assembly.Location);
        if (string.IsNullOrEmpty(runtime)) return null;
        var packs = Path.GetFullPath(Path.Combine(runtime, "..", "..", "..", "packs", "Microsoft.NETCore.App.Ref"));
        if (!Directory.Exists(packs)) return null;
        var file = Directory.GetDirectories(packs)
            .OrderByDescending(d => Version.TryParse(Path.GetFileName(d).Split('-')[0], out var v) ? v : new Version())
            .SelectMany(d => Directory.Exists(Path.Combine(d, "ref")) ? Directory.GetDirectories(Path.Combine(d, "ref")) : [])
            .Select(d => Path.Combine(d, "System.Runtime.xml"))
            .FirstOrDefault(File.Exists);
        return file is null ? null : File.ReadAllBytes(file);
    }

    /// <summary>Sentences of common English words, Zipf-distributed, from a fixed seed.</summary>
    static byte[] Generated(int length)
    {
        string[] words =
        [
            "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not", "he",
            "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were", "their", "one",
            "all", "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would", "who", "so", "no", "value",
            "method", "returns", "string", "object", "specified", "instance", "current", "element", "collection", "number",
        ];
        var rng = new Random(20240601);
        double[] cumulative = new double[words.Length];
        double sum = 0;
        for (int i = 0; i < words.Length; i++) cumulative[i] = sum += 1.0 / (i + 1);
        var text = new StringBuilder(length + 100);
        while (text.Length < length)
        {
            int count = 4 + rng.Next(10);
            for (int w = 0; w < count; w++)
            {
                double u = rng.NextDouble() * sum;
                string word = words[Array.FindIndex(cumulative, c => c >= u)];
                text.Append(w == 0 ? char.ToUpperInvariant(word[0]) + word[1..] : word).Append(w + 1 < count ? ' ' : '.');
            }
            text.Append(rng.Next(5) == 0 ? '\n' : ' ');
        }
        return Encoding.ASCII.GetBytes(text.ToString());
    }
}
