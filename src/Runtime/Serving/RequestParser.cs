using System.Text;
using System.Text.Json;

namespace GateLoop.Runtime;

/// <summary>What a server lets one request ask for.</summary>
/// <param name="MaxTokens">The largest <c>max_tokens</c>.</param>
/// <param name="MaxPromptBytes">The longest prompt, in UTF-8 bytes (after the chat template).</param>
public sealed record RequestLimits(int MaxTokens = 4096, int MaxPromptBytes = 65536);

/// <summary>
/// Reads the body of an OpenAI completions or chat-completions request into a <see cref="GenerationRequest"/>, or
/// refuses it with a <see cref="RequestException"/> (400) naming the field at fault. Every field OpenAI defines for the
/// endpoint is recognized; those this server cannot honour are accepted only at their neutral value (<c>n</c> = 1,
/// <c>top_p</c> = 1, no penalties, no log-probabilities), and a field OpenAI does not define is refused, as OpenAI
/// refuses it. <c>top_k_thres</c> is the seed's top-k threshold, an extension.
/// </summary>
public static class RequestParser
{
    static readonly JsonDocumentOptions Options = new() { MaxDepth = 16 };
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Default <c>max_tokens</c>: OpenAI's for completions; chat (unbounded at OpenAI) gets a paragraph.</summary>
    public const int DefaultCompletionTokens = 16, DefaultChatTokens = 256;

    static readonly HashSet<string> Common =
    [
        "model", "max_tokens", "temperature", "top_p", "n", "stream", "stream_options", "seed", "stop", "user",
        "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_k_thres",
    ];
    static readonly HashSet<string> CompletionOnly = ["prompt", "echo", "suffix", "best_of"];
    static readonly HashSet<string> ChatOnly = ["messages", "max_completion_tokens", "top_logprobs", "response_format"];
    static readonly HashSet<string> Roles = ["system", "developer", "user", "assistant"];

    /// <summary>Parses <paramref name="body"/> (UTF-8 JSON) sent to the <paramref name="kind"/> endpoint, within <paramref name="limits"/>.</summary>
    /// <param name="kind">The endpoint.</param>
    /// <param name="body">The request body.</param>
    /// <param name="limits">What one request may ask for.</param>
    /// <param name="defaultSeed">The seed when the request gives none.</param>
    /// <exception cref="RequestException">The body is not a request this server can answer; the message says why.</exception>
    public static GenerationRequest Parse(RequestKind kind, ReadOnlySpan<byte> body, RequestLimits limits, long defaultSeed)
    {
        if (!System.Text.Unicode.Utf8.IsValid(body))
            throw Bad("the body is not valid UTF-8; send JSON encoded as UTF-8", null, "invalid_encoding");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body.ToArray(), Options);
        }
        catch (JsonException e)
        {
            throw Bad($"the body is not valid JSON ({FirstSentence(e.Message)}); send one JSON object encoded as UTF-8", null, "invalid_json");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Bad($"the body must be a JSON object, not {Describe(root)}", null, "invalid_json");
            var fields = new Dictionary<string, JsonElement>();
            foreach (var property in root.EnumerateObject())
            {
                string name = property.Name;
                if (!Common.Contains(name) && !(kind == RequestKind.Completion ? CompletionOnly : ChatOnly).Contains(name))
                    throw Bad($"unrecognized request argument supplied: {Shorten(name)}", name, "unknown_parameter");
                if (!fields.TryAdd(name, property.Value)) throw Bad($"{name} is given twice", name);
            }
            try { return Read(kind, fields, limits, defaultSeed); }
            catch (InvalidOperationException e)
            {
                // What the reader leaves to the reading of a string: an escape that spells no character (a lone surrogate).
                throw Bad($"a string of the body is not text ({FirstSentence(e.Message)})", null, "invalid_value");
            }
        }
    }

    static GenerationRequest Read(RequestKind kind, Dictionary<string, JsonElement> f, RequestLimits limits, long defaultSeed)
    {
        // Any model name is taken: one model is served, and the answers name it.
        Text(f, "model");
        bool stream = Bool(f, "stream") ?? false;
        bool includeUsage = false;
        if (Given(f, "stream_options") is { } options)
        {
            if (options.ValueKind != JsonValueKind.Object) throw WrongType("stream_options", "an object", options);
            if (!stream) throw Bad("stream_options is only allowed with stream: true", "stream_options");
            foreach (var p in options.EnumerateObject())
            {
                if (p.Name != "include_usage") throw Bad($"unrecognized stream option: {Shorten(p.Name)}", "stream_options");
                includeUsage = p.Value.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False or JsonValueKind.Null => false,
                    _ => throw WrongType("stream_options.include_usage", "a boolean", p.Value),
                };
            }
        }
        int maxTokens = Integer(f, kind == RequestKind.Chat && Given(f, "max_completion_tokens") is not null ? "max_completion_tokens" : "max_tokens",
            kind == RequestKind.Completion ? DefaultCompletionTokens : DefaultChatTokens, 1, limits.MaxTokens, "this server's limit");
        double temperature = Number(f, "temperature", 1.0, 0, 2);
        double threshold = Number(f, "top_k_thres", 0.9, 0, 1);
        if (threshold >= 1) throw Bad("top_k_thres must lie in [0, 1): 0.9 keeps the top 10% of the bytes", "top_k_thres", "invalid_value");
        long seed = Given(f, "seed") is { } s ? s.ValueKind == JsonValueKind.Number && s.TryGetInt64(out long v) ? v
            : throw WrongType("seed", "an integer", s) : defaultSeed;

        Neutral(f, "n", 1, "this server draws one answer per request");
        Neutral(f, "best_of", 1, "this server draws one answer per request");
        Neutral(f, "top_p", 1, "nucleus sampling is not implemented; use top_k_thres");
        Neutral(f, "presence_penalty", 0, "penalties are not implemented");
        Neutral(f, "frequency_penalty", 0, "penalties are not implemented");
        if (Given(f, "logit_bias") is { } bias && (bias.ValueKind != JsonValueKind.Object || bias.EnumerateObject().Any()))
            throw Bad("logit_bias is not implemented; leave it out", "logit_bias", "unsupported_value");
        if (Given(f, "logprobs") is { } logprobs && logprobs.ValueKind != JsonValueKind.False)
            throw Bad("log-probabilities are not implemented; leave logprobs out", "logprobs", "unsupported_value");
        if (Given(f, "top_logprobs") is not null) throw Bad("log-probabilities are not implemented; leave top_logprobs out", "top_logprobs", "unsupported_value");
        if (Bool(f, "echo") == true) throw Bad("echo is not implemented; leave it out", "echo", "unsupported_value");
        if (Text(f, "suffix") is not null) throw Bad("suffix (insertion) is not implemented; leave it out", "suffix", "unsupported_value");
        Text(f, "user");
        if (Given(f, "response_format") is { } format &&
            !(format.ValueKind == JsonValueKind.Object && format.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String
              && type.ValueEquals("text") && format.EnumerateObject().Count() == 1))
            throw Bad("only the text response format is available: response_format {\"type\": \"text\"}, or leave it out", "response_format", "unsupported_value");

        string prompt = kind == RequestKind.Completion ? CompletionPrompt(f) : ChatTemplate.Prompt(Messages(f));
        byte[] bytes = Utf8(prompt, kind == RequestKind.Completion ? "prompt" : "messages");
        if (bytes.Length == 0) throw Bad("the prompt is empty; give at least one character for the model to continue", "prompt", "invalid_value");
        if (bytes.Length > limits.MaxPromptBytes)
            throw Bad($"the prompt is {bytes.Length:N0} bytes; this server takes at most {limits.MaxPromptBytes:N0}", kind == RequestKind.Completion ? "prompt" : "messages", "invalid_value");
        return new GenerationRequest(kind, bytes, maxTokens, temperature, threshold, seed, Stops(f), stream, includeUsage);
    }

    static string CompletionPrompt(Dictionary<string, JsonElement> f)
    {
        var prompt = Given(f, "prompt") ?? throw Bad("prompt is required: the text for the model to continue", "prompt", "missing_required_parameter");
        if (prompt.ValueKind == JsonValueKind.String) return prompt.GetString()!;
        if (prompt.ValueKind == JsonValueKind.Array && prompt.GetArrayLength() == 1 && prompt[0].ValueKind == JsonValueKind.String)
            return prompt[0].GetString()!;
        throw prompt.ValueKind == JsonValueKind.Array
            ? Bad("prompt must be one string (a list of prompts, or of token ids, is not accepted)", "prompt", "invalid_type")
            : WrongType("prompt", "a string", prompt);
    }

    static List<(string, string)> Messages(Dictionary<string, JsonElement> f)
    {
        var messages = Given(f, "messages") ?? throw Bad("messages is required: a list of {role, content} objects", "messages", "missing_required_parameter");
        if (messages.ValueKind != JsonValueKind.Array) throw WrongType("messages", "an array", messages);
        if (messages.GetArrayLength() == 0) throw Bad("messages is empty; give at least one message", "messages", "invalid_value");
        var list = new List<(string, string)>();
        int i = 0;
        foreach (var m in messages.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw WrongType(at, "an object", m);
            string? role = null, content = null;
            foreach (var p in m.EnumerateObject())
                switch (p.Name)
                {
                    case "role":
                        role = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : throw WrongType($"{at}.role", "a string", p.Value);
                        if (!Roles.Contains(role!)) throw Bad($"{at}.role must be one of {string.Join(", ", Roles)}, got '{Shorten(role!)}'", $"{at}.role", "invalid_value");
                        break;
                    case "content": content = Content(p.Value, $"{at}.content"); break;
                    case "name":
                        if (p.Value.ValueKind != JsonValueKind.String) throw WrongType($"{at}.name", "a string", p.Value);
                        break;
                    default: throw Bad($"unrecognized message field: {Shorten(p.Name)} (a message has role, content and name)", at, "unknown_parameter");
                }
            if (role is null) throw Bad($"{at} has no role", $"{at}.role", "missing_required_parameter");
            if (content is null) throw Bad($"{at} has no content", $"{at}.content", "missing_required_parameter");
            list.Add((role, content));
        }
        return list;
    }

    // A string, or a list of text parts (how newer clients send it), joined.
    static string Content(JsonElement content, string at)
    {
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) throw WrongType(at, "a string or a list of text parts", content);
        var text = new StringBuilder();
        foreach (var part in content.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || !type.ValueEquals("text")
                || !part.TryGetProperty("text", out var value) || value.ValueKind != JsonValueKind.String || part.EnumerateObject().Count() != 2)
                throw Bad($"{at} may hold only text parts ({{\"type\": \"text\", \"text\": \"...\"}}): the model reads bytes of text", at, "invalid_value");
            text.Append(value.GetString());
        }
        return text.ToString();
    }

    static List<byte[]> Stops(Dictionary<string, JsonElement> f)
    {
        if (Given(f, "stop") is not { } stop) return [];
        var strings = stop.ValueKind switch
        {
            JsonValueKind.String => [stop],
            JsonValueKind.Array => stop.EnumerateArray().ToList(),
            _ => throw WrongType("stop", "a string or a list of strings", stop),
        };
        if (strings.Count > 4) throw Bad($"stop holds {strings.Count} sequences; at most 4 are allowed", "stop", "invalid_value");
        return strings.Select(s => s.ValueKind == JsonValueKind.String ? Utf8(s.GetString()!, "stop") : throw WrongType("stop", "a list of strings", s))
            .Select(b => b.Length is > 0 and <= 256 ? b : throw Bad("each stop sequence must be 1 to 256 bytes long", "stop", "invalid_value"))
            .ToList();
    }

    // JSON escapes can spell a lone surrogate (\ud800), which no UTF-8 can hold.
    static byte[] Utf8(string text, string field)
    {
        try { return StrictUtf8.GetBytes(text); }
        catch (EncoderFallbackException) { throw Bad($"{field} holds an unpaired surrogate escape (\\ud800…\\udfff alone), which is not text", field, "invalid_value"); }
    }

    static JsonElement? Given(Dictionary<string, JsonElement> f, string name) =>
        f.TryGetValue(name, out var e) && e.ValueKind != JsonValueKind.Null ? e : null;

    static string? Text(Dictionary<string, JsonElement> f, string name) => Given(f, name) is not { } e ? null
        : e.ValueKind == JsonValueKind.String ? e.GetString() : throw WrongType(name, "a string", e);

    static bool? Bool(Dictionary<string, JsonElement> f, string name) => Given(f, name) is not { } e ? null
        : e.ValueKind is JsonValueKind.True or JsonValueKind.False ? e.GetBoolean() : throw WrongType(name, "a boolean", e);

    static int Integer(Dictionary<string, JsonElement> f, string name, int fallback, int min, int max, string maxName)
    {
        if (Given(f, name) is not { } e) return fallback;
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v)) throw WrongType(name, "an integer", e);
        if (v < min || v > max) throw Bad($"{name} must lie in [{min}, {max}] ({maxName}), got {v}", name, "invalid_value");
        return (int)v;
    }

    static double Number(Dictionary<string, JsonElement> f, string name, double fallback, double min, double max)
    {
        if (Given(f, name) is not { } e) return fallback;
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out double v) || !double.IsFinite(v)) throw WrongType(name, "a number", e);
        if (v < min || v > max) throw Bad($"{name} must lie in [{min}, {max}], got {v}", name, "invalid_value");
        return v;
    }

    static void Neutral(Dictionary<string, JsonElement> f, string name, double neutral, string why)
    {
        if (Given(f, name) is not { } e) return;
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out double v)) throw WrongType(name, "a number", e);
        if (v != neutral) throw Bad($"{name} must be {neutral} here: {why}", name, "unsupported_value");
    }

    static RequestException Bad(string message, string? param, string code = "invalid_value") => new(400, message, param, code);

    static RequestException WrongType(string name, string expected, JsonElement e) => Bad($"{name} must be {expected}, not {Describe(e)}", name, "invalid_type");

    static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => $"the number {Shorten(e.GetRawText())}",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    // A client's text inside an error message stays short and on one line.
    static string Shorten(string text)
    {
        var flat = new string([.. text.Take(40).Select(c => char.IsControl(c) ? ' ' : c)]);
        return text.Length > 40 ? flat + "…" : flat;
    }

    static string FirstSentence(string message) => message.Split(". ")[0].TrimEnd('.');
}
