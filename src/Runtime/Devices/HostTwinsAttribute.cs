namespace GateLoop.Runtime;

/// <summary>
/// Asks the generator for host twins of a hand-written static partial class of kernels, as every generated
/// kernels class has: a nested <c>Host</c> class the <c>cpu</c> device calls instead (see <see cref="Device"/>).
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
sealed class HostTwinsAttribute : Attribute;
