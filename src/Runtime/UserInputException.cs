using System.Globalization;
using System.Text;

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
    /// <param name="option">The option it came from, e.g. <c>TrainOptions.Clip</c>, named in the message.</param>
    /// <exception cref="UserInputException"><paramref name="value"/> is NaN or infinite.</exception>
    public static void ThrowIfNotFinite(double value, string option)
    {
        if (!double.IsFinite(value))
            throw new UserInputException(string.Create(CultureInfo.InvariantCulture,
                $"{option} must be a finite number, got {value}; pass an ordinary number such as 0.5, or leave the option out for its default"));
    }

    const int KeptAtEachEnd = 100;

    /// <summary>
    /// Text taken from a file (a tensor name, a parser's error), fit to quote in a one-line message: line breaks
    /// and other control characters are escaped as in JSON, and longer text keeps only its start and its end.
    /// </summary>
    internal static string Printable(string text)
    {
        if (text.Length > 2 * KeptAtEachEnd) text = $"{text[..KeptAtEachEnd]}…{text[^KeptAtEachEnd..]}";
        var printable = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c == '\n') printable.Append("\\n");
            else if (c == '\r') printable.Append("\\r");
            else if (c == '\t') printable.Append("\\t");
            // U+2028 and U+2029 break lines too, though they are not control characters.
            else if (char.IsControl(c) || c is '\u2028' or '\u2029') printable.Append($"\\u{(int)c:x4}");
            else printable.Append(c);
        }
        return printable.ToString();
    }
}
