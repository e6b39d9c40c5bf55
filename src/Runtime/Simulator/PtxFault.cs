namespace GateLoop.Runtime;

/// <summary>
/// What the PTX simulator refuses: a construct it does not implement, or something a GPU would do wrong or leave
/// undefined (an access outside every buffer of the launch, a barrier not every thread reaches, a division
/// by zero). The message names the kernel, the PTX line and, at run time, the thread.
/// </summary>
public sealed class PtxFault(string kernel, int line, string source, string what, string? thread = null)
    : Exception($"{kernel}, PTX line {line} ({source}){(thread is null ? "" : $", {thread}")}: {what}")
{
    /// <summary>The kernel's entry name.</summary>
    public string Kernel { get; } = kernel;

    /// <summary>The 1-based line of the kernel's PTX module.</summary>
    public int Line { get; } = line;

    /// <summary>The PTX text of that line.</summary>
    public string Instruction { get; } = source;
}
