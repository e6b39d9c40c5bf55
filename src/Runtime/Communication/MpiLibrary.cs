using System.Runtime.InteropServices;

namespace GateLoop.Runtime;

/// <summary>
/// The few MPI functions a data-parallel run needs, bound at run time from the system's MPI library, so that MPI stays an
/// optional system package: Open MPI (<c>libmpi.so.40</c>) or MPICH and its ABI family (<c>libmpich.so.12</c>: Intel MPI,
/// Cray MPICH, MVAPICH). The two differ in how they spell handles: Open MPI's are pointers to exported globals
/// (<c>ompi_mpi_comm_world</c>), MPICH's are integer constants, and <c>MPI_IN_PLACE</c> is <c>(void*)1</c> in one and
/// <c>(void*)-1</c> in the other. Every handle is held as <see cref="nint"/>; an MPICH handle, an <c>int</c>, is passed in
/// the low half of the argument register, where the C callee reads it. Only the thread that called <see cref="Initialize"/>
/// may call the others (MPI_THREAD_FUNNELED).
/// </summary>
sealed unsafe class MpiLibrary
{
    /// <summary>The library files tried, Open MPI first; the unversioned <c>libmpi.so</c> is a -dev package's link.</summary>
    public static readonly string[] Candidates = ["libmpi.so.40", "libmpich.so.12"];

    readonly delegate* unmanaged<int*, byte***, int, int*, int> initThread;
    readonly delegate* unmanaged<nint, int*, int> commRank, commSize;
    readonly delegate* unmanaged<nint, nint, int, nint, nint, nint, int> allreduce;
    readonly delegate* unmanaged<nint, int, nint, int, nint, int> bcast;
    readonly delegate* unmanaged<nint, int, nint, nint, int, nint, nint, int> allgather;
    readonly delegate* unmanaged<nint, int> barrier;
    readonly delegate* unmanaged<int> finalize;
    readonly delegate* unmanaged<byte*, int*, int> libraryVersion;
    readonly nint world, floatType, doubleType, byteType, sum, inPlace;

    MpiLibrary(string file, nint handle)
    {
        File = file;
        nint Function(string name) => NativeLibrary.GetExport(handle, name);
        initThread = (delegate* unmanaged<int*, byte***, int, int*, int>)Function("MPI_Init_thread");
        commRank = (delegate* unmanaged<nint, int*, int>)Function("MPI_Comm_rank");
        commSize = (delegate* unmanaged<nint, int*, int>)Function("MPI_Comm_size");
        allreduce = (delegate* unmanaged<nint, nint, int, nint, nint, nint, int>)Function("MPI_Allreduce");
        bcast = (delegate* unmanaged<nint, int, nint, int, nint, int>)Function("MPI_Bcast");
        allgather = (delegate* unmanaged<nint, int, nint, nint, int, nint, nint, int>)Function("MPI_Allgather");
        barrier = (delegate* unmanaged<nint, int>)Function("MPI_Barrier");
        finalize = (delegate* unmanaged<int>)Function("MPI_Finalize");
        libraryVersion = (delegate* unmanaged<byte*, int*, int>)Function("MPI_Get_library_version");
        if (NativeLibrary.TryGetExport(handle, "ompi_mpi_comm_world", out world))
        {
            IsOpenMpi = true;
            (floatType, doubleType, byteType, sum, inPlace) =
                (Function("ompi_mpi_float"), Function("ompi_mpi_double"), Function("ompi_mpi_byte"), Function("ompi_mpi_op_sum"), 1);
        }
        else (world, floatType, doubleType, byteType, sum, inPlace) = (0x44000000, 0x4c00040a, 0x4c00080b, 0x4c00010d, 0x58000003, -1);
    }

    /// <summary>The file that was loaded.</summary>
    public string File { get; }

    /// <summary>Open MPI (handles are exported globals) rather than the MPICH ABI (integer constants).</summary>
    public bool IsOpenMpi { get; }

    /// <summary>
    /// Loads the first of <paramref name="files"/> that the dynamic loader finds; null when none is installed, with the
    /// loader's reasons in <paramref name="reasons"/>.
    /// </summary>
    public static MpiLibrary? Load(IEnumerable<string> files, out string reasons)
    {
        var failures = new List<string>();
        foreach (var file in files)
        {
            if (NativeLibrary.TryLoad(file, out var handle)) { reasons = ""; return new MpiLibrary(file, handle); }
            failures.Add($"{file} not found");
        }
        reasons = string.Join(", ", failures);
        return null;
    }

    /// <summary>MPI_Init_thread(FUNNELED); returns this process's rank and the world's size.</summary>
    public (int Rank, int Size) Initialize()
    {
        int provided, rank, size;
        Check(initThread(null, null, 1, &provided), "MPI_Init_thread");
        Check(commRank(world, &rank), "MPI_Comm_rank");
        Check(commSize(world, &size), "MPI_Comm_size");
        return (rank, size);
    }

    /// <summary>The library's own name for itself (<c>MPI_Get_library_version</c>), first line only.</summary>
    public string Version()
    {
        // MPI_MAX_LIBRARY_VERSION_STRING is 256 in Open MPI and 8192 in MPICH.
        var text = stackalloc byte[8192];
        int length;
        Check(libraryVersion(text, &length), "MPI_Get_library_version");
        return System.Text.Encoding.UTF8.GetString(text, Math.Max(0, length)).Split('\n', ',')[0].Trim('\0', ' ');
    }

    /// <summary>In-place sum over every rank of <paramref name="count"/> floats, or doubles, at <paramref name="data"/>.</summary>
    public void AllReduceSum(nint data, int count, bool doubles) =>
        Check(allreduce(inPlace, data, count, doubles ? doubleType : floatType, sum, world), "MPI_Allreduce");

    /// <summary>Copies <paramref name="count"/> bytes at <paramref name="data"/> from rank <paramref name="root"/> to every rank.</summary>
    public void Broadcast(nint data, int count, int root) => Check(bcast(data, count, byteType, root, world), "MPI_Bcast");

    /// <summary>Every rank's <paramref name="count"/> bytes, in rank order, into <paramref name="all"/> on every rank.</summary>
    public void AllGather(nint mine, int count, nint all) => Check(allgather(mine, count, byteType, all, count, byteType, world), "MPI_Allgather");

    /// <summary>Returns once every rank has called it.</summary>
    public void Barrier() => Check(barrier(world), "MPI_Barrier");

    /// <summary>MPI_Finalize: the last call.</summary>
    public void Close() => Check(finalize(), "MPI_Finalize");

    // The default error handler aborts the job on an error, so a return code other than 0 is not expected; checked anyway.
    static void Check(int code, string function)
    {
        if (code != 0) throw new InvalidOperationException($"{function} returned MPI error {code}");
    }
}
