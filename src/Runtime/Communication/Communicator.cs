using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace GateLoop.Runtime;

/// <summary>
/// The processes of one data-parallel job and the collectives it needs: in-place sums, broadcasts from one rank, gathers
/// and barriers, in the same order on every rank. <see cref="FromEnvironment"/> joins the job a launcher started
/// (<c>mpirun</c>, <c>mpiexec</c>, <c>srun</c>) through MPI, or makes a world of one without loading MPI at all.
/// Buffers are host memory: device memory is staged through the host by its user (<see cref="GradientReducer"/>).
/// A GPU collective library (NCCL, bootstrapped by broadcasting its unique id over this communicator) would be another
/// implementation working on device pointers.
/// </summary>
public abstract class Communicator : IDisposable
{
    /// <summary>This process's rank, 0 to <see cref="Size"/> − 1.</summary>
    public abstract int Rank { get; }

    /// <summary>The number of ranks.</summary>
    public abstract int Size { get; }

    /// <summary>The implementation, for logs: <c>Open MPI v4.1.4 (libmpi.so.40)</c>, or <c>one process</c>.</summary>
    public abstract string Description { get; }

    /// <summary>Rank 0: the one that writes files and reports.</summary>
    public bool IsRoot => Rank == 0;

    /// <summary>
    /// Starts an in-place sum over every rank of <paramref name="count"/> floats at <paramref name="data"/> and returns at
    /// once; the memory must stay where it is, untouched, until the returned operation has finished. Operations run one
    /// after another in the order they were started, which must be the same on every rank.
    /// </summary>
    public abstract Collective StartAllReduceSum(nint data, long count);

    /// <summary>Sums <paramref name="values"/> over every rank in place; returns when done.</summary>
    public abstract void AllReduceSum(Span<double> values);

    /// <summary>Copies rank <paramref name="root"/>'s <paramref name="data"/> into every rank's.</summary>
    public abstract void Broadcast(Span<byte> data, int root = 0);

    /// <summary>Every rank's <paramref name="mine"/> (the same length on all) in rank order into <paramref name="all"/>.</summary>
    public abstract void AllGather(ReadOnlySpan<byte> mine, Span<byte> all);

    /// <summary>Returns once every rank has called it.</summary>
    public abstract void Barrier();

    /// <summary>
    /// Ends the use of the communicator after the run's last collective, on every rank (MPI_Finalize). A process that
    /// fails leaves without it, so that the launcher ends the job on its exit instead of the other ranks waiting for it.
    /// </summary>
    public virtual void Close() { }

    /// <inheritdoc />
    public virtual void Dispose() { }

    /// <summary>Sums one value over every rank.</summary>
    public double Sum(double value)
    {
        Span<double> one = [value];
        AllReduceSum(one);
        return one[0];
    }

    /// <summary>True on every rank when <paramref name="mine"/> is true on any.</summary>
    public bool Any(bool mine) => Sum(mine ? 1 : 0) > 0;

    /// <summary>Sums <paramref name="values"/> over every rank in place, through a pinned copy when they are managed memory.</summary>
    public unsafe void AllReduceSum(Span<float> values)
    {
        fixed (float* data = values) StartAllReduceSum((nint)data, values.Length).Wait();
    }

    /// <summary>
    /// Refuses to go on unless every rank was started with the same <paramref name="settings"/> (names and values, in the
    /// same order): rank 0's are broadcast, each rank compares them with its own, and the lowest rank that differs says
    /// how, so every rank throws the same one-line <see cref="WorldException"/> naming the first difference and the two
    /// configuration digests.
    /// </summary>
    public void Agree(IReadOnlyList<(string Name, string Value)> settings)
    {
        if (Size == 1) return;
        string Text(IEnumerable<(string Name, string Value)> s) => string.Join("\n", s.Select(p => $"{p.Name}={p.Value}"));
        byte[] mine = Encoding.UTF8.GetBytes(Text(settings)), root = BroadcastBytes(mine, 0);
        var rootSettings = Encoding.UTF8.GetString(root).Split('\n').Select(line => line.Split('=', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "");
        string? difference = null;
        if (!mine.AsSpan().SequenceEqual(root))
        {
            var (name, value) = settings.FirstOrDefault(p => rootSettings.GetValueOrDefault(p.Name) != p.Value);
            difference = name is null
                ? $"rank {Rank} and rank 0 have different settings"
                : $"rank {Rank} has {name} {Quote(value)}, rank 0 {Quote(rootSettings.GetValueOrDefault(name))}";
            difference += $" (configuration digest {Digest(mine)} against rank 0's {Digest(root)})";
        }
        // The lowest rank that differs tells every rank what it found.
        Span<byte> flags = new byte[Size];
        AllGather([difference is null ? (byte)0 : (byte)1], flags);
        int first = flags.IndexOf((byte)1);
        if (first < 0) return;
        string message = Encoding.UTF8.GetString(BroadcastBytes(Encoding.UTF8.GetBytes(difference ?? ""), first));
        throw new WorldException($"the ranks were not started alike: {message}; start every rank with the same command, model and data", everyRank: true);
    }

    static string Quote(string? value) => value is null ? "(not set)" : $"'{UserInputException.Printable(value)}'";

    static string Digest(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes))[..12];

    /// <summary>
    /// Refuses to go on unless every rank holds the same <paramref name="state"/> (compared by SHA-256); the message names
    /// <paramref name="what"/> and the first rank that differs.
    /// </summary>
    public void CheckSame(ReadOnlySpan<byte> state, string what)
    {
        if (Size == 1) return;
        byte[] digest = SHA256.HashData(state), all = new byte[digest.Length * Size];
        AllGather(digest, all);
        for (int r = 1; r < Size; r++)
            if (!all.AsSpan(r * digest.Length, digest.Length).SequenceEqual(all.AsSpan(0, digest.Length)))
                throw new WorldException($"{what} of rank {r} differ from rank 0's (SHA-256 {Convert.ToHexStringLower(all.AsSpan(r * digest.Length, 6))}… against " +
                    $"{Convert.ToHexStringLower(all.AsSpan(0, 6))}…); the ranks no longer train one model: report this with the command that ran", everyRank: true);
    }

    // Lengths first, so that ranks holding texts of different lengths agree on the second broadcast.
    byte[] BroadcastBytes(byte[] mine, int root)
    {
        var length = BitConverter.GetBytes(mine.Length);
        Broadcast(length, root);
        var bytes = Rank == root ? mine : new byte[BitConverter.ToInt32(length)];
        Broadcast(bytes, root);
        return bytes;
    }

    /// <summary>
    /// The job this process belongs to: when a launcher started it as one of several ranks (its environment says so:
    /// <c>OMPI_COMM_WORLD_SIZE</c> from Open MPI, <c>PMI_SIZE</c> from MPICH's Hydra or Slurm's PMI-2, or
    /// <c>SLURM_STEP_NUM_TASKS</c> from <c>srun</c>), MPI joined through the system's library
    /// (<c>GATELOOP_MPI_LIBRARY</c> names another file); otherwise a world of one, and MPI is not loaded.
    /// </summary>
    /// <exception cref="UserInputException">Started as a rank, but no MPI library loads, or MPI sees another world size than the launcher.</exception>
    public static Communicator FromEnvironment()
    {
        var launch = Launch.FromEnvironment();
        if (launch.Size <= 1) return new SingleProcessCommunicator();
        string? chosen = Environment.GetEnvironmentVariable("GATELOOP_MPI_LIBRARY");
        // The launcher's own library first: a process of one MPI started by the other's launcher would be a singleton.
        IEnumerable<string> files = chosen is { Length: > 0 } ? [chosen]
            : launch.Variable.StartsWith("OMPI_", StringComparison.Ordinal) ? MpiLibrary.Candidates : Enumerable.Reverse(MpiLibrary.Candidates);
        var library = MpiLibrary.Load(files, out string reasons)
            ?? throw new UserInputException(
                $"started as rank {launch.Rank} of {launch.Size} ({launch.Variable}), but no MPI library could be loaded ({reasons}); " +
                "install the MPI the launcher belongs to (Debian: apt-get install openmpi-bin, or mpich), or name its library in GATELOOP_MPI_LIBRARY");
        return new MpiCommunicator(library, launch);
    }
}

/// <summary>How the launcher started this process: its rank and the world's size, and the variable that said so.</summary>
public readonly record struct Launch(int Rank, int Size, string Variable)
{
    /// <summary>Reads the launcher's variables; a process nobody launched is rank 0 of 1.</summary>
    public static Launch FromEnvironment()
    {
        foreach (var (size, rank) in new[] { ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"), ("PMI_SIZE", "PMI_RANK"), ("SLURM_STEP_NUM_TASKS", "SLURM_PROCID") })
            if (int.TryParse(Environment.GetEnvironmentVariable(size), out int n) && int.TryParse(Environment.GetEnvironmentVariable(rank), out int r))
                return new Launch(r, n, size);
        return new Launch(0, 1, "");
    }
}

/// <summary>A world of one: every collective leaves the data as it is.</summary>
public sealed class SingleProcessCommunicator : Communicator
{
    /// <inheritdoc />
    public override int Rank => 0;

    /// <inheritdoc />
    public override int Size => 1;

    /// <inheritdoc />
    public override string Description => "one process";

    /// <inheritdoc />
    public override Collective StartAllReduceSum(nint data, long count) => Collective.Done;

    /// <inheritdoc />
    public override void AllReduceSum(Span<double> values) { }

    /// <inheritdoc />
    public override void Broadcast(Span<byte> data, int root = 0) { }

    /// <inheritdoc />
    public override void AllGather(ReadOnlySpan<byte> mine, Span<byte> all) => mine.CopyTo(all);

    /// <inheritdoc />
    public override void Barrier() { }
}

/// <summary>
/// A collective in flight. <see cref="Wait"/> returns when it has finished on this rank; while waiting, a communicator
/// may find that a rank it waits for has ended and throw <see cref="WorldException"/> instead of waiting forever.
/// </summary>
public class Collective
{
    /// <summary>An operation that finished when it started.</summary>
    public static readonly Collective Done = new();

    /// <summary>Seconds the operation itself took, from its start on the communication thread to its end (0 for a world of one).</summary>
    public double Seconds { get; protected set; }

    /// <summary>Returns when the operation has finished.</summary>
    public virtual void Wait() { }
}

/// <summary>
/// A distributed run cannot go on: the ranks disagree (every rank throws the same one, and rank 0 reports it) or a rank
/// ended (each rank that noticed reports it).
/// </summary>
/// <param name="message">One line: what happened and what to do.</param>
/// <param name="everyRank">Every rank throws this same message, so only rank 0 needs to print it.</param>
public sealed class WorldException(string message, bool everyRank) : Exception(message)
{
    /// <summary>Every rank throws this same message, so only rank 0 needs to print it.</summary>
    public bool EveryRank { get; } = everyRank;
}
