namespace GateLoop.Runtime;

/// <summary>
/// A problem with what the user supplied (a missing or corrupt file, a wrong option): the command line prints
/// <see cref="Exception.Message"/> as one line, without a stack trace, and exits non-zero. Messages say what is
/// wrong and what to do about it.
/// </summary>
/// <param name="message">One line: what is wrong and what to do.</param>
/// <param name="inner">The underlying error, kept for diagnostics.</param>
public sealed class UserInputException(string message, Exception? inner = null) : Exception(message, inner);
