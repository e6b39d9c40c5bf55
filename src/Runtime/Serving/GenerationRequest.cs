namespace GateLoop.Runtime;

/// <summary>Which OpenAI endpoint a request came to: it decides the shape of the answer.</summary>
public enum RequestKind
{
    /// <summary><c>POST /v1/completions</c>: a prompt, answered with text.</summary>
    Completion,

    /// <summary><c>POST /v1/chat/completions</c>: messages joined by <see cref="ChatTemplate"/>, answered with an assistant message.</summary>
    Chat,
}

/// <summary>One generation a client asked for, checked and in the model's terms (bytes).</summary>
/// <param name="Kind">The endpoint.</param>
/// <param name="Prompt">The prompt's UTF-8 bytes, the tokens of a byte-level model; never empty.</param>
/// <param name="MaxTokens">Bytes to generate at most.</param>
/// <param name="Temperature">Sampling temperature (0: greedy).</param>
/// <param name="TopKThreshold">The seed's top-k threshold: 0.9 keeps the top 10% of the vocabulary.</param>
/// <param name="Seed">Seeds this stream's own random generator, so its bytes do not depend on other streams.</param>
/// <param name="Stop">UTF-8 sequences that end the generation; the answer stops before the first one.</param>
/// <param name="Stream">Answer with server-sent events as bytes are drawn.</param>
/// <param name="IncludeUsage">With <paramref name="Stream"/>, end with a chunk that holds the usage (<c>stream_options.include_usage</c>).</param>
public sealed record GenerationRequest(RequestKind Kind, byte[] Prompt, int MaxTokens, double Temperature,
    double TopKThreshold, long Seed, IReadOnlyList<byte[]> Stop, bool Stream, bool IncludeUsage);

/// <summary>A request the server refuses: an HTTP status and an OpenAI-style error object's fields.</summary>
public sealed class RequestException(int status, string message, string? param = null, string? code = null) : Exception(message)
{
    /// <summary>The HTTP status (a 4xx: the client's request is at fault, or the server is full).</summary>
    public int Status { get; } = status;

    /// <summary>The request field at fault, when one is.</summary>
    public string? Param { get; } = param;

    /// <summary>A short machine-readable reason (<c>invalid_value</c>, <c>rate_limit_exceeded</c>, …).</summary>
    public string? Code { get; } = code;

    /// <summary>OpenAI's error type for <see cref="Status"/>.</summary>
    public string Type => Status switch
    {
        404 => "not_found_error",
        413 => "invalid_request_error",
        429 => "rate_limit_error",
        503 => "server_unavailable",
        >= 500 => "server_error",
        _ => "invalid_request_error",
    };
}

/// <summary>
/// How chat messages become the prompt of a byte-level language model (not a chat model): each message as a line
/// <c>role: content</c>, then <c>assistant:</c> and a space, which the model continues.
/// </summary>
public static class ChatTemplate
{
    /// <summary>The prompt for <paramref name="messages"/> (role, content) pairs.</summary>
    public static string Prompt(IEnumerable<(string Role, string Content)> messages) =>
        string.Concat(messages.Select(m => $"{m.Role}: {m.Content}\n")) + "assistant: ";
}
