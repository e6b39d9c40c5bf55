namespace GateLoop.Runtime;

/// <summary>
/// Asks the generator for host twins of a hand-written static partial class of kernels, as every generated
/// kernels class has: a nested <c>Host</c> class of range entries, passed to <see cref="Device.Launch{T1}"/> beside
/// each kernel for the <c>cpu</c> device to call.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
sealed class HostTwinsAttribute : Attribute;
