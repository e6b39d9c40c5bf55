using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace GateLoop.Runtime;

/// <summary>
/// A communicator over MPI. One thread owns MPI (it initializes it and makes every call, so MPI_THREAD_FUNNELED is
/// enough) and runs the collectives in the order they were started. Non-blocking collectives (MPI_Iallreduce) progress
/// only inside MPI calls, so they would need such a thread anyway to move while the backward computes; on it, the blocking
/// calls use the library's tuned algorithms (96 MB over two ranks of Open MPI 4.1 here: 110–380 ms blocking against
/// 310–410 ms for MPI_Iallreduce polled to completion, in one run). Callers wait
/// on the thread, never inside MPI, so a wait can notice that a rank on this host has ended (its process is gone) and stop
/// with a message instead of hanging; ranks on other hosts are the launcher's to watch (<c>mpirun</c> and Hydra end a job
/// when one of its processes dies, <c>srun</c> with <c>--kill-on-bad-exit</c>).
/// </summary>
sealed class MpiCommunicator : Communicator
{
    readonly MpiLibrary mpi;
    readonly BlockingCollection<Operation> queue = new();
    readonly (int Rank, int Process)[] neighbours;
    readonly string host = Environment.MachineName;
    int rank, size;
    string version = "";
    bool closed, broken;

    public MpiCommunicator(MpiLibrary mpi, Launch launch)
    {
        this.mpi = mpi;
        new Thread(Serve) { IsBackground = true, Name = "MPI" }.Start();
        neighbours = [];
        Run("MPI initialization", () =>
        {
            (rank, size) = mpi.Initialize();
            version = mpi.Version();
        }).Wait();
        if (size != launch.Size)
            // Every rank is a world of one then, and fails alike.
            throw new WorldException(
                $"the launcher started {launch.Size} ranks ({launch.Variable}) but {mpi.File} joined a world of {size}: the launcher and the MPI library are of " +
                "different MPIs (mpirun of Open MPI starts programs linked to libmpi.so.40, mpiexec of MPICH those linked to libmpich.so.12); " +
                "launch with the other one, or name the matching library in GATELOOP_MPI_LIBRARY", everyRank: true);
        // Who runs where: a wait watches the processes of the ranks on this host.
        byte[] mine = Identity(Environment.ProcessId), all = new byte[mine.Length * size];
        AllGather(mine, all);
        neighbours = [.. Enumerable.Range(0, size)
            .Where(r => r != rank && all.AsSpan(r * mine.Length + 4, mine.Length - 4).SequenceEqual(mine.AsSpan(4)))
            .Select(r => (r, BitConverter.ToInt32(all, r * mine.Length)))];
    }

    public override int Rank => rank;

    public override int Size => size;

    public override string Description => $"{version} ({mpi.File})";

    // A process id and a digest of the host and its process-id namespace: ranks with equal digests see each other's processes.
    static byte[] Identity(int process)
    {
        string space = new FileInfo("/proc/self/ns/pid").LinkTarget ?? "";
        var digest = System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes($"{Environment.MachineName}\n{space}"));
        return [.. BitConverter.GetBytes(process), .. digest.AsSpan(0, 16)];
    }

    public override Collective StartAllReduceSum(nint data, long count) => Run("an all-reduce", () =>
    {
        // MPI counts are ints: a longer buffer goes in pieces.
        for (long at = 0; at < count; at += Piece)
            mpi.AllReduceSum(data + (nint)(at * sizeof(float)), (int)Math.Min(Piece, count - at), doubles: false);
    });

    const int Piece = 1 << 28;

    public override unsafe void AllReduceSum(Span<double> values)
    {
        fixed (double* data = values)
        {
            nint pointer = (nint)data;
            int count = values.Length;
            Run("an all-reduce", () => mpi.AllReduceSum(pointer, count, doubles: true)).Wait();
        }
    }

    public override unsafe void Broadcast(Span<byte> data, int root = 0)
    {
        fixed (byte* bytes = data)
        {
            nint pointer = (nint)bytes;
            long count = data.Length;
            Run("a broadcast", () =>
            {
                for (long at = 0; at < count; at += Piece) mpi.Broadcast(pointer + (nint)at, (int)Math.Min(Piece, count - at), root);
            }).Wait();
        }
    }

    public override unsafe void AllGather(ReadOnlySpan<byte> mine, Span<byte> all)
    {
        if (all.Length != (long)mine.Length * size) throw new ArgumentException($"expected {size} × {mine.Length} bytes, got {all.Length}", nameof(all));
        fixed (byte* from = mine)
        fixed (byte* to = all)
        {
            (nint source, nint target, int count) = ((nint)from, (nint)to, mine.Length);
            Run("a gather", () => mpi.AllGather(source, count, target)).Wait();
        }
    }

    public override void Barrier() => Run("a barrier", mpi.Barrier).Wait();

    /// <summary>Finalizes MPI after the run's last collective; without it (an error), the process leaves MPI as it is.</summary>
    public override void Close()
    {
        if (closed || broken) return;
        closed = true;
        Run("MPI_Finalize", mpi.Close).Wait();
    }

    // An error leaves MPI unfinalized: MPI_Finalize waits for every rank, and a rank that failed alone must exit so that the
    // launcher ends the others, rather than wait for ranks that wait for it.
    public override void Dispose() => queue.CompleteAdding();

    Operation Run(string what, Action call)
    {
        var operation = new Operation(this, what, call);
        queue.Add(operation);
        return operation;
    }

    void Serve()
    {
        foreach (var operation in queue.GetConsumingEnumerable()) operation.Execute();
    }

    // A rank on this host whose process has ended (or is a zombie) will never join the collective being waited for.
    void CheckNeighbours(string what)
    {
        foreach (var (other, process) in neighbours)
        {
            if (Alive(process)) continue;
            broken = true;
            throw new WorldException($"rank {other} (process {process} on {host}) has ended, so {what} it was part of cannot finish", everyRank: false);
        }
    }

    static bool Alive(int process)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{process}/stat");
            char state = stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault();
            return state is not ('Z' or 'X' or 'x');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return !(e is FileNotFoundException or DirectoryNotFoundException);
        }
    }

    sealed class Operation(MpiCommunicator owner, string what, Action call) : Collective
    {
        readonly ManualResetEventSlim done = new();
        Exception? error;

        public void Execute()
        {
            long start = Stopwatch.GetTimestamp();
            try { call(); }
            catch (Exception e) { error = e; }
            Seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            done.Set();
        }

        public override void Wait()
        {
            // Often enough that a rank's end is reported within a second, seldom enough to cost nothing.
            while (!done.Wait(100)) owner.CheckNeighbours(what);
            if (error is not null) throw new InvalidOperationException($"{what} failed: {error.Message}", error);
        }
    }
}
