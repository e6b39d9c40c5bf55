using System.Globalization;

namespace GateLoop.Runtime;

/// <summary>
/// A problem with what the user supplied (a missing or corrupt file, a wrong option): the command line prints
/// <see cref="Exception.Message"/> as one line, without a stack trace, and exits non-zero. Messages say what is
/// wrong and what to do about it.
/// </summary>
/// <param name="message">One line: what is wrong and what to do.</param>
/// <param name="inner">The underlying error, kept for diagnostics.</param>
public sealed class UserInputException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>
    /// Throws unless <paramref name="value"/> is finite. <c>nan</c> and <c>Infinity</c> parse as numbers, but as a
    /// rate, clip or temperature they poison every later step and cannot be written to JSON.
    /// </summary>
    /// <param name="value">The parsed value.</param>
    /// <param name="option">The option it came from, e.g. <c>--clip</c>, named in the message.</param>
    /// <exception cref="UserInputException"><paramref name="value"/> is NaN or infinite.</exception>
    public static void ThrowIfNotFinite(double value, string option)
    {
        if (!double.IsFinite(value))
            throw new UserInputException(string.Create(CultureInfo.InvariantCulture,
                $"{option} must be a finite number, got {value}; pass an ordinary number such as 0.5, or leave the option out for its default"));
    }
}
