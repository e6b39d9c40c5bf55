using System.IO.Compression;
using GateLoop.Runtime;

namespace GateLoop.Runtime.Tests;

/// <summary>Corpus loading and splitting, the batch sampler and the resumable random generator.</summary>
public sealed class CorpusTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("gateloop-corpus-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    static byte[] Text(int length) => Enumerable.Range(0, length).Select(i => (byte)('a' + i % 26)).ToArray();

    static void AssertSplit(Corpus corpus, byte[] expected)
    {
        var trainEnd = expected.Length * 90 / 100;
        var validEnd = expected.Length * 95 / 100;
        Assert.Equal(expected[..trainEnd], corpus.Train.ToArray());
        Assert.Equal(expected[trainEnd..validEnd], corpus.Valid.ToArray());
        Assert.Equal(expected[validEnd..], corpus.Test.ToArray());
    }

    [Fact]
    public void Raw_file_is_split_90_5_5()
    {
        var bytes = Text(1000);
        var path = Path.Combine(directory, "small.txt");
        File.WriteAllBytes(path, bytes);
        var corpus = Corpus.Load(path);
        AssertSplit(corpus, bytes);
        Assert.Equal("small.txt: 900 / 50 / 50 bytes", corpus.Describe());
    }

    [Fact]
    public void Gzip_file_is_unpacked()
    {
        var bytes = Text(4321);
        var path = Path.Combine(directory, "small.txt.gz");
        using (var gzip = new GZipStream(File.Create(path), CompressionLevel.Optimal))
            gzip.Write(bytes);
        var corpus = Corpus.Load(path);
        AssertSplit(corpus, bytes);
        Assert.Equal((3888, 216, 217), (corpus.Train.Length, corpus.Valid.Length, corpus.Test.Length));
    }

    [Fact]
    public void Zip_uses_the_entry_asked_for_else_the_enwik8_entry_else_the_first()
    {
        var enwik8 = Text(2000);
        var path = Path.Combine(directory, "data.zip");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            WriteEntry(zip, "readme.txt", "not this"u8.ToArray());
            WriteEntry(zip, "enwik8", enwik8);
        }
        var corpus = Corpus.Load(path);
        AssertSplit(corpus, enwik8);
        Assert.Equal("enwik8", corpus.Entry);
        Assert.Equal("data.zip (entry enwik8 of its 2 files; Corpus.Load(entry) picks another): 1,800 / 100 / 100 bytes", corpus.Describe());
        Assert.Equal("readme.txt", Corpus.Load(path, "readme.txt").Entry);
        Assert.Equal($"zip archive {path} has no file README; pass one of its 2 files with Corpus.Load(entry): readme.txt, enwik8",
            Assert.Throws<UserInputException>(() => Corpus.Load(path, "README")).Message);

        var other = Path.Combine(directory, "other.zip");
        var first = Text(300);
        using (var zip = ZipFile.Open(other, ZipArchiveMode.Create))
        {
            WriteEntry(zip, "first.txt", first);
            WriteEntry(zip, "second.txt", "second"u8.ToArray());
        }
        AssertSplit(Corpus.Load(other), first);
        Assert.Equal("first.txt", Corpus.Load(other).Entry);

        var text = Path.Combine(directory, "plain.txt");
        File.WriteAllBytes(text, first);
        Assert.Null(Corpus.Load(text).Entry);
        Assert.StartsWith("Corpus.Load(entry) first.txt picks a file inside a .zip archive",
            Assert.Throws<UserInputException>(() => Corpus.Load(text, "first.txt")).Message);
    }

    [Fact]
    public void Truncated_concatenated_or_corrupt_archives_are_refused()
    {
        var bytes = Text(5000);
        var gzipped = new MemoryStream();
        using (var gzip = new GZipStream(gzipped, CompressionLevel.Optimal, leaveOpen: true))
            gzip.Write(bytes);
        var truncated = Path.Combine(directory, "truncated.gz");
        File.WriteAllBytes(truncated, gzipped.ToArray()[..^4]);
        Assert.StartsWith($"data file {truncated} is truncated or damaged (its gzip trailer does not match",
            Assert.Throws<UserInputException>(() => Corpus.Load(truncated)).Message);
        var tiny = Path.Combine(directory, "tiny.gz");
        File.WriteAllBytes(tiny, gzipped.ToArray()[..5]); // shorter than a trailer
        Assert.StartsWith($"data file {tiny} is truncated or damaged", Assert.Throws<UserInputException>(() => Corpus.Load(tiny)).Message);
        var concatenated = Path.Combine(directory, "twice.gz");
        File.WriteAllBytes(concatenated, [.. gzipped.ToArray(), .. gzipped.ToArray()]);
        Assert.EndsWith("if it is several gzip files concatenated, unpack it and pass the raw file with Corpus.Load(path)",
            Assert.Throws<UserInputException>(() => Corpus.Load(concatenated)).Message);

        // A stored entry with one byte flipped unpacks without complaint; only its CRC-32 tells.
        var zipped = new MemoryStream();
        using (var zip = new ZipArchive(zipped, ZipArchiveMode.Create, leaveOpen: true))
        using (var stream = zip.CreateEntry("corpus.txt", CompressionLevel.NoCompression).Open())
            stream.Write(bytes);
        var damaged = zipped.ToArray();
        damaged[damaged.AsSpan().IndexOf(bytes.AsSpan(0, 100)) + 1000] ^= 1;
        var badCrc = Path.Combine(directory, "bad-crc.zip");
        File.WriteAllBytes(badCrc, damaged);
        Assert.StartsWith($"entry corpus.txt of {badCrc} is damaged (its CRC-32 does not match",
            Assert.Throws<UserInputException>(() => Corpus.Load(badCrc)).Message);
    }

    static void WriteEntry(ZipArchive zip, string name, byte[] bytes)
    {
        using var stream = zip.CreateEntry(name).Open();
        stream.Write(bytes);
    }

    [Fact]
    public void Split_points_follow_enwik8_layout_or_proportion()
    {
        Assert.Equal((90_000_000, 95_000_000, 100_000_000), Corpus.SplitPoints(100_000_000, enwik8Layout: true));
        Assert.Equal((90_000_000, 95_000_000, 100_000_000), Corpus.SplitPoints(123_456_789, enwik8Layout: true));
        // Proportional arithmetic is done in 64 bits: len * 95 overflows int above 22.6 MB.
        Assert.Equal((900_000_000, 950_000_000, 1_000_000_000), Corpus.SplitPoints(1_000_000_000, enwik8Layout: false));
        Assert.Equal((9, 9, 10), Corpus.SplitPoints(10, enwik8Layout: false));
        Assert.Equal((18, 19, 20), Corpus.SplitPoints(20, enwik8Layout: false));
        Assert.Equal((0, 0, 1), Corpus.SplitPoints(1, enwik8Layout: false));
    }

    [Fact]
    public void Missing_empty_and_damaged_files_give_clear_errors()
    {
        var missing = Path.Combine(directory, "nope.txt");
        Assert.Equal(
            $"data file {missing} not found; pass an existing file with Corpus.Load(path), or run `gateloop download enwik8`",
            Assert.Throws<UserInputException>(() => Corpus.Load(missing)).Message);

        Assert.Equal($"data file {directory} is a directory; pass one of the files in it with Corpus.Load(path)",
            Assert.Throws<UserInputException>(() => Corpus.Load(directory)).Message);

        var empty = Path.Combine(directory, "empty.txt");
        File.WriteAllBytes(empty, []);
        Assert.Contains("is empty", Assert.Throws<UserInputException>(() => Corpus.Load(empty)).Message);

        var badZip = Path.Combine(directory, "bad.zip");
        File.WriteAllText(badZip, "this is not a zip archive at all");
        var zipError = Assert.Throws<UserInputException>(() => Corpus.Load(badZip)).Message;
        Assert.StartsWith($"cannot read data file {badZip} as a zip archive", zipError);

        var badGz = Path.Combine(directory, "bad.gz");
        File.WriteAllText(badGz, "this is not gzip either");
        Assert.StartsWith($"cannot read data file {badGz} as a gz archive",
            Assert.Throws<UserInputException>(() => Corpus.Load(badGz)).Message);

        var emptyZip = Path.Combine(directory, "empty.zip");
        ZipFile.Open(emptyZip, ZipArchiveMode.Create).Dispose();
        Assert.Contains("holds no files", Assert.Throws<UserInputException>(() => Corpus.Load(emptyZip)).Message);

        Assert.Throws<UserInputException>(() => Corpus.FromBytes([], "test"));
    }

    [Fact]
    public void Default_corpus_is_the_reference_pack_xml()
    {
        var corpus = Corpus.LoadDefault();
        var total = corpus.Train.Length + corpus.Valid.Length + corpus.Test.Length;
        Assert.True(total > 10_000_000, $"only {total} bytes");
        Assert.Contains("reference-pack XML files", corpus.Source);
        // The files are concatenated as they are (byte-order marks included), so an XML declaration comes first.
        Assert.Contains("<?xml", System.Text.Encoding.UTF8.GetString(corpus.Train.Span[..16]));
    }

    [Fact]
    public void Sampler_windows_lie_inside_the_split_and_cover_every_start()
    {
        const int length = 20, seq = 10, batch = 7;
        var bytes = Enumerable.Range(0, length).Select(i => (byte)i).ToArray();
        var sampler = new BatchSampler(bytes, "train", batch, seq, new Rng(1));
        var tokens = new int[batch * (seq + 1)];
        var starts = new HashSet<int>();
        for (var draw = 0; draw < 200; draw++)
        {
            sampler.Fill(tokens);
            for (var row = 0; row < batch; row++)
            {
                var start = tokens[row * (seq + 1)];
                for (var i = 0; i <= seq; i++)
                    Assert.Equal(start + i, tokens[row * (seq + 1) + i]);
                starts.Add(start);
            }
        }
        // Starts 0 ..= len − seq − 1: every window that fits, the last one included.
        Assert.Equal(Enumerable.Range(0, length - seq), starts.Order());
    }

    [Fact]
    public void Sampler_is_deterministic_and_resumes_from_saved_state()
    {
        var bytes = Text(5000);
        int[] Draw(Rng rng)
        {
            var tokens = new int[4 * 65];
            new BatchSampler(bytes, "train", 4, 64, rng).Fill(tokens);
            return tokens;
        }
        Assert.Equal(Draw(new Rng(7)), Draw(new Rng(7)));
        Assert.NotEqual(Draw(new Rng(7)), Draw(new Rng(8)));

        var rng = new Rng(7);
        Draw(rng);
        var saved = rng.State;
        var expected = Draw(rng);
        var resumed = new Rng(0) { State = saved };
        Assert.Equal(expected, Draw(resumed));
    }

    [Fact]
    public void Sampler_rejects_a_split_shorter_than_one_window()
    {
        var e = Assert.Throws<UserInputException>(() => new BatchSampler(new byte[256], "valid", 1, 256, new Rng(0)));
        Assert.Equal(
            "data shorter than one window of BatchSampler(seqLen) 256: the valid split has 256 bytes, a window needs seq+1 = 257; use a smaller BatchSampler(seqLen) or a bigger file",
            e.Message);
        // Exactly one window fits.
        var tokens = new int[257];
        new BatchSampler(new byte[257], "valid", 1, 256, new Rng(0)).Fill(tokens);
    }

    [Fact]
    public void Rng_matches_reference_xoshiro256starstar_seeded_by_splitmix64()
    {
        // From the authors' C code (prng.di.unimi.it), state filled by splitmix64 from seed 42.
        var rng = new Rng(42UL);
        Assert.Equal(0x15780B2E0C2EC716UL, rng.NextULong());
        Assert.Equal(0x6104D9866D113A7EUL, rng.NextULong());
        Assert.Equal(0xAE17533239E499A1UL, rng.NextULong());
        Assert.Equal(0xECB8AD4703B360A1UL, rng.NextULong());
        Assert.Equal(new Rng(42UL).NextULong(), new Rng(42).NextULong());
    }

    [Fact]
    public void Rng_state_round_trip_continues_the_same_stream()
    {
        var rng = new Rng(123);
        for (var i = 0; i < 10; i++)
            rng.NextULong();
        var saved = rng.State;
        var expected = Enumerable.Range(0, 50).Select(_ => (rng.NextULong(), rng.NextInt(1000), rng.NextDouble())).ToList();
        var restored = new Rng(999) { State = saved };
        Assert.Equal(expected, Enumerable.Range(0, 50).Select(_ => (restored.NextULong(), restored.NextInt(1000), restored.NextDouble())).ToList());

        saved[0] ^= 1; // State hands out a copy.
        Assert.NotEqual(saved, rng.State);
        Assert.Throws<UserInputException>(() => rng.State = new ulong[4]);
        Assert.Throws<UserInputException>(() => rng.State = new ulong[3]);
    }

    [Fact]
    public void Rng_ranges_are_respected_and_roughly_uniform()
    {
        var rng = new Rng(5);
        var counts = new int[7];
        for (var i = 0; i < 70_000; i++)
            counts[rng.NextInt(7)]++;
        Assert.All(counts, c => Assert.InRange(c, 9_500, 10_500));
        for (var i = 0; i < 10_000; i++)
            Assert.InRange(rng.NextDouble(), 0.0, Math.BitDecrement(1.0));
        Assert.Equal(0, rng.NextInt(1));
        Assert.InRange(rng.NextInt(int.MaxValue), 0, int.MaxValue - 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => rng.NextInt(0));
    }
}
