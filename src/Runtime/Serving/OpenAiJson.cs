using System.Text.Encodings.Web;
using System.Text.Json;

namespace GateLoop.Runtime;

/// <summary>
/// The JSON an OpenAI-compatible server answers with: error objects, completion and chat-completion objects, their
/// streamed chunks, and the model list. Field names and shapes are OpenAI's, so its clients read them.
/// </summary>
public static class OpenAiJson
{
    /// <summary><c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
    public static byte[] Error(RequestException e) => Write(w =>
    {
        w.WriteStartObject("error");
        w.WriteString("message", e.Message);
        w.WriteString("type", e.Type);
        w.WriteString("param", e.Param);
        w.WriteString("code", e.Code);
        w.WriteEndObject();
    });

    /// <summary>The model list of <c>GET /v1/models</c>: the one model served.</summary>
    public static byte[] Models(string model, long created) => Write(w =>
    {
        w.WriteString("object", "list");
        w.WriteStartArray("data");
        w.WriteStartObject();
        w.WriteString("id", model);
        w.WriteString("object", "model");
        w.WriteNumber("created", created);
        w.WriteString("owned_by", "gateloop");
        w.WriteEndObject();
        w.WriteEndArray();
    });

    /// <summary>The whole answer to a request without <c>stream</c>.</summary>
    public static byte[] Answer(ServedStream s, string model, long created, string text) => Write(w =>
    {
        Header(w, s, model, created, s.Request.Kind == RequestKind.Chat ? "chat.completion" : "text_completion");
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        if (s.Request.Kind == RequestKind.Chat)
        {
            w.WriteStartObject("message");
            w.WriteString("role", "assistant");
            w.WriteString("content", text);
            w.WriteNull("refusal");
            w.WriteEndObject();
        }
        else w.WriteString("text", text);
        w.WriteNull("logprobs");
        w.WriteString("finish_reason", s.FinishReason);
        w.WriteEndObject();
        w.WriteEndArray();
        Usage(w, s);
    });

    /// <summary>
    /// One streamed chunk: <paramref name="text"/> (a chat's first chunk also names the role) and, on the last,
    /// the finish reason.
    /// </summary>
    public static byte[] Chunk(ServedStream s, string model, long created, string text, bool first, string? finishReason) => Write(w =>
    {
        bool chat = s.Request.Kind == RequestKind.Chat;
        Header(w, s, model, created, chat ? "chat.completion.chunk" : "text_completion");
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        if (chat)
        {
            w.WriteStartObject("delta");
            if (first) w.WriteString("role", "assistant");
            if (text.Length > 0 || first) w.WriteString("content", text);
            w.WriteEndObject();
        }
        else w.WriteString("text", text);
        w.WriteNull("logprobs");
        w.WriteString("finish_reason", finishReason);
        w.WriteEndObject();
        w.WriteEndArray();
        if (s.Request.IncludeUsage) w.WriteNull("usage");
    });

    /// <summary>The chunk after the last one when <c>stream_options.include_usage</c> asked for it: no choices, the usage.</summary>
    public static byte[] UsageChunk(ServedStream s, string model, long created) => Write(w =>
    {
        Header(w, s, model, created, s.Request.Kind == RequestKind.Chat ? "chat.completion.chunk" : "text_completion");
        w.WriteStartArray("choices");
        w.WriteEndArray();
        Usage(w, s);
    });

    static void Header(Utf8JsonWriter w, ServedStream s, string model, long created, string kind)
    {
        w.WriteString("id", $"{(s.Request.Kind == RequestKind.Chat ? "chatcmpl" : "cmpl")}-{created:x}-{s.Number}");
        w.WriteString("object", kind);
        w.WriteNumber("created", created);
        w.WriteString("model", model);
    }

    // Tokens are bytes: the prompt's, and those generated (a stop sequence included).
    static void Usage(Utf8JsonWriter w, ServedStream s)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", s.Request.Prompt.Length);
        w.WriteNumber("completion_tokens", s.Generated);
        w.WriteNumber("total_tokens", s.Request.Prompt.Length + s.Generated);
        w.WriteEndObject();
    }

    static byte[] Write(Action<Utf8JsonWriter> body)
    {
        using var buffer = new MemoryStream();
        // Text as it is (JSON's own escapes only), so that a curl shows what the model wrote.
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }
}
