namespace GateLoop.Runtime;

/// <summary>
/// A small deterministic random generator (xoshiro256**, seeded through SplitMix64) whose whole state can be
/// saved in a checkpoint and restored, so that <c>--resume</c> continues exactly the same random stream.
/// </summary>
public sealed class Rng
{
    ulong s0, s1, s2, s3;

    /// <summary>Seeds the generator from <paramref name="seed"/>; equal seeds give equal streams.</summary>
    public Rng(ulong seed)
    {
        // SplitMix64 spreads any seed (0 included) over the 256-bit state, as the xoshiro authors recommend.
        var x = seed;
        s0 = SplitMix64(ref x);
        s1 = SplitMix64(ref x);
        s2 = SplitMix64(ref x);
        s3 = SplitMix64(ref x);
    }

    /// <summary>Seeds the generator from a command-line seed; negative values are taken as their two's complement.</summary>
    public Rng(int seed)
        : this(unchecked((ulong)seed))
    {
    }

    /// <summary>
    /// The four 64-bit state words. Getting returns a copy; setting restores a saved state (four words, not all
    /// zero), after which the generator continues the stream the state was taken from.
    /// </summary>
    /// <exception cref="UserInputException">The saved state is not four words or is all zero.</exception>
    public ulong[] State
    {
        get => [s0, s1, s2, s3];
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (!IsState(value))
                throw new UserInputException(
                    $"the saved random generator state must be 4 words, not all zero (got {value.Length} words); the checkpoint is damaged, start a new run without Trainer.Run(resumeFrom)");
            (s0, s1, s2, s3) = (value[0], value[1], value[2], value[3]);
        }
    }

    /// <summary>Whether <paramref name="words"/> can be a state: four words, not all zero (xoshiro stays at zero).</summary>
    internal static bool IsState(ulong[] words) => words.Length == 4 && (words[0] | words[1] | words[2] | words[3]) != 0;

    /// <summary>The next 64 uniformly random bits.</summary>
    public ulong NextULong()
    {
        var result = ulong.RotateLeft(s1 * 5, 7) * 9;
        var t = s1 << 17;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = ulong.RotateLeft(s3, 45);
        return result;
    }

    /// <summary>A uniformly distributed integer in [0, <paramref name="maxExclusive"/>), without modulo bias.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxExclusive"/> is not positive.</exception>
    public int NextInt(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExclusive);
        // Lemire's multiply-shift: the high word of x·n is uniform once the few low words below 2^64 mod n are rejected.
        var n = (ulong)maxExclusive;
        var high = Math.BigMul(NextULong(), n, out var low);
        if (low < n)
        {
            var threshold = (0 - n) % n;
            while (low < threshold)
                high = Math.BigMul(NextULong(), n, out low);
        }
        return (int)high;
    }

    /// <summary>A uniformly distributed double in [0, 1), with 53 random bits.</summary>
    public double NextDouble() => (NextULong() >> 11) * (1.0 / (1UL << 53));

    static ulong SplitMix64(ref ulong x)
    {
        var z = x += 0x9E3779B97F4A7C15;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
