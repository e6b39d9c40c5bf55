using System.Text;
using GateLoop.Runtime;
using GateLoop.Tests.Shared;

namespace GateLoop.Runtime.Tests;

public sealed class RequestParserTests
{
    static readonly RequestLimits Limits = new(MaxTokens: 100, MaxPromptBytes: 64);

    static GenerationRequest Parse(string json, RequestKind kind = RequestKind.Completion) =>
        RequestParser.Parse(kind, Encoding.UTF8.GetBytes(json), Limits, defaultSeed: 77);

    static RequestException Refused(string json, RequestKind kind = RequestKind.Completion) =>
        Assert.Throws<RequestException>(() => Parse(json, kind));

    [Fact]
    public void A_completion_request_is_read_with_its_defaults_and_every_field()
    {
        var plain = Parse("""{"model":"x","prompt":"héllo"}""");
        Assert.Equal("héllo"u8.ToArray(), plain.Prompt);
        Assert.Equal((RequestParser.DefaultCompletionTokens, 1.0, 0.9, 77L, false), (plain.MaxTokens, plain.Temperature, plain.TopKThreshold, plain.Seed, plain.Stream));
        Assert.Empty(plain.Stop);

        var full = Parse("""
            {"prompt":["ab"],"max_tokens":100,"temperature":0,"top_p":1,"n":1,"stream":true,"stream_options":{"include_usage":true},
             "seed":-5,"stop":["\n","é"],"user":"u","presence_penalty":0,"frequency_penalty":0,"logit_bias":{},"logprobs":null,
             "echo":false,"suffix":null,"best_of":1,"top_k_thres":0.5}
            """);
        Assert.Equal((100, 0.0, 0.5, -5L, true, true), (full.MaxTokens, full.Temperature, full.TopKThreshold, full.Seed, full.Stream, full.IncludeUsage));
        Assert.Equal(["\n"u8.ToArray(), "é"u8.ToArray()], full.Stop);
    }

    [Fact]
    public void Chat_messages_are_joined_by_the_template()
    {
        var chat = Parse("""
            {"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":"!"}],"name":"a"}],
             "max_completion_tokens":7,"stop":"\n"}
            """, RequestKind.Chat);
        Assert.Equal("system: Be brief.\nuser: Hi!\nassistant: ", Encoding.UTF8.GetString(chat.Prompt));
        Assert.Equal(7, chat.MaxTokens);
        Assert.Equal(RequestParser.DefaultChatTokens, Parse("""{"messages":[{"role":"user","content":"x"}]}""", RequestKind.Chat).MaxTokens);
    }

    [Theory]
    [InlineData("""{"prompt":"x","max_tokens":-1}""", "max_tokens", "must lie in [1, 100]")]
    [InlineData("""{"prompt":"x","max_tokens":101}""", "max_tokens", "this server's limit")]
    [InlineData("""{"prompt":"x","max_tokens":1.5}""", "max_tokens", "an integer")]
    [InlineData("""{"prompt":"x","max_tokens":"9"}""", "max_tokens", "not a string")]
    [InlineData("""{"prompt":"x","temperature":3}""", "temperature", "[0, 2]")]
    [InlineData("""{"prompt":"x","top_k_thres":1}""", "top_k_thres", "[0, 1)")]
    [InlineData("""{"prompt":"x","seed":1e40}""", "seed", "an integer")]
    [InlineData("""{"prompt":"x","n":2}""", "n", "one answer")]
    [InlineData("""{"prompt":"x","top_p":0.5}""", "top_p", "top_k_thres")]
    [InlineData("""{"prompt":"x","logprobs":2}""", "logprobs", "not implemented")]
    [InlineData("""{"prompt":"x","stream_options":{"include_usage":true}}""", "stream_options", "stream: true")]
    [InlineData("""{"prompt":"x","stop":["a","b","c","d","e"]}""", "stop", "at most 4")]
    [InlineData("""{"prompt":"x","stop":[""]}""", "stop", "1 to 256 bytes")]
    [InlineData("""{"prompt":"x","stop":7}""", "stop", "a string or a list")]
    [InlineData("""{"prompt":"x","frobnicate":1}""", "frobnicate", "unrecognized request argument")]
    [InlineData("""{"prompt":"x","messages":[]}""", "messages", "unrecognized")]
    [InlineData("""{"prompt":"x","prompt":"y"}""", "prompt", "twice")]
    [InlineData("""{"max_tokens":3}""", "prompt", "prompt is required")]
    [InlineData("""{"prompt":""}""", "prompt", "empty")]
    [InlineData("""{"prompt":["a","b"]}""", "prompt", "one string")]
    [InlineData("""{"prompt":[1,2]}""", "prompt", "token ids")]
    [InlineData("""{"prompt":"\ud800"}""", null, "surrogate")]
    [InlineData("""{"prompt":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}""", "prompt", "at most 64")]
    public void A_bad_completion_request_is_refused_naming_its_field(string json, string? param, string says)
    {
        var e = Refused(json);
        Assert.Equal(400, e.Status);
        Assert.Equal(param, e.Param);
        Assert.Contains(says, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("""{"messages":"hi"}""", "messages", "an array")]
    [InlineData("""{"messages":[]}""", "messages", "empty")]
    [InlineData("""{"messages":[{"role":"robot","content":"x"}]}""", "messages[0].role", "one of")]
    [InlineData("""{"messages":[{"role":"user"}]}""", "messages[0].content", "no content")]
    [InlineData("""{"messages":[{"content":"x"}]}""", "messages[0].role", "no role")]
    [InlineData("""{"messages":[{"role":"user","content":"x","tool_calls":[]}]}""", "messages[0]", "unrecognized message field")]
    [InlineData("""{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}""", "messages[0].content", "text parts")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"tools":[]}""", "tools", "unrecognized")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}""", "response_format", "text response format")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"prompt":"x"}""", "prompt", "unrecognized")]
    public void A_bad_chat_request_is_refused_naming_its_field(string json, string param, string says)
    {
        var e = Refused(json, RequestKind.Chat);
        Assert.Equal(param, e.Param);
        Assert.Contains(says, e.Message);
    }

    [Theory]
    [InlineData("{\"prompt\":", "not valid JSON")]
    [InlineData("[1]", "a JSON object, not an array")]
    [InlineData("", "not valid JSON")]
    [InlineData("{\"prompt\":\"x\"} trailing", "not valid JSON")]
    public void A_body_that_is_not_a_json_object_is_refused(string body, string says) => Assert.Contains(says, Refused(body).Message);

    [Fact]
    public void A_body_that_is_not_utf8_is_refused()
    {
        var e = Assert.Throws<RequestException>(() => RequestParser.Parse(RequestKind.Completion, [.. "{\"prompt\":\""u8, 0xC3, 0x28, .. "\"}"u8], Limits, 0));
        Assert.Equal((400, "invalid_encoding"), (e.Status, e.Code));
    }

    /// <summary>
    /// Seeded and bounded: valid requests of both kinds cut, spliced, with bytes changed and values of every JSON type put
    /// in every field. Each is read into a request within the limits or refused with a 400; nothing else is thrown.
    /// </summary>
    [Fact]
    public void Fuzzed_bodies_are_read_within_the_limits_or_refused_with_a_400()
    {
        string[] seeds =
        [
            """{"model":"m","prompt":"Hello","max_tokens":5,"temperature":0.7,"seed":3,"stop":["\n"],"stream":true,"stream_options":{"include_usage":true}}""",
            """{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"text","text":"yo"}]}],"max_completion_tokens":9,"top_k_thres":0.5}""",
        ];
        string[] values = ["null", "true", "0", "-1", "1e308", "-0.0", "99999999999", "\"\"", "\"\\ud83d\\ude00\"", "\"\\udc00\"", "[]", "{}", "[\"a\"]",
            "{\"type\":\"text\",\"text\":\"t\"}", "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]", "\"é\"", "1.5"];
        string[] fields = ["prompt", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "stream", "stream_options",
            "seed", "stop", "user", "logit_bias", "logprobs", "top_k_thres", "echo", "suffix", "best_of", "response_format", "content", "role"];
        var random = new Random(23);
        int read = 0, refused = 0;
        for (int i = 0; i < 4000; i++)
        {
            var kind = (RequestKind)(i % 2);
            var body = Encoding.UTF8.GetBytes(seeds[i % 2]).ToList();
            switch (random.Next(4))
            {
                case 0: // a field's value replaced
                    string field = fields[random.Next(fields.Length)], value = values[random.Next(values.Length)];
                    body = [.. Encoding.UTF8.GetBytes(seeds[i % 2].Replace($"\"{field}\":", $"\"{field}\":{value},\"x{i}\":"))];
                    if (random.Next(2) == 0) body = [.. Encoding.UTF8.GetBytes($"{{\"{field}\":{value}," + seeds[i % 2][1..])];
                    break;
                case 1: // cut
                    body = body.Take(random.Next(body.Count)).ToList();
                    break;
                default: // bytes changed, inserted or removed
                    for (int k = random.Next(1, 4); k > 0; k--)
                    {
                        int at = random.Next(body.Count);
                        switch (random.Next(3))
                        {
                            case 0: body[at] = (byte)random.Next(256); break;
                            case 1: body.Insert(at, (byte)"{}[]\",:\\0-e."[random.Next(12)]); break;
                            default: body.RemoveAt(at); break;
                        }
                    }
                    break;
            }
            try
            {
                var r = RequestParser.Parse(kind, body.ToArray(), Limits, defaultSeed: 1);
                Assert.InRange(r.Prompt.Length, 1, Limits.MaxPromptBytes);
                Assert.InRange(r.MaxTokens, 1, Limits.MaxTokens);
                Assert.InRange(r.Temperature, 0, 2);
                Assert.InRange(r.TopKThreshold, 0, 0.999999);
                Assert.True(r.Stop.Count <= 4 && r.Stop.All(s => s.Length is > 0 and <= 256));
                Assert.True(System.Text.Unicode.Utf8.IsValid(r.Prompt));
                read++;
            }
            catch (RequestException e)
            {
                Assert.Equal(400, e.Status);
                Assert.DoesNotContain('\n', e.Message);
                refused++;
            }
        }
        // Both outcomes occur, so the mutations neither all break the body nor all leave it alone.
        Assert.True(read > 200 && refused > 1000, $"{read} read, {refused} refused");
    }
}

public sealed class StreamTextTests
{
    static (string Text, List<string> Chunks, bool Stopped) Feed(byte[] bytes, params string[] stops)
    {
        var text = new StreamText([.. stops.Select(Encoding.UTF8.GetBytes)]);
        var chunks = new List<string>();
        foreach (var b in bytes)
        {
            chunks.Add(text.Add(b));
            if (text.Stopped) break;
        }
        chunks.Add(text.Finish());
        return (string.Concat(chunks), chunks, text.Stopped);
    }

    [Fact]
    public void A_character_waits_for_its_last_byte_and_a_stop_ends_the_text_before_it()
    {
        var (text, chunks, stopped) = Feed("aé€x"u8.ToArray());
        Assert.Equal(["a", "", "é", "", "", "€", "x", ""], chunks);
        Assert.False(stopped);
        (text, chunks, stopped) = Feed("one\ntwo\n\nthree"u8.ToArray(), "\n\n");
        Assert.Equal("one\ntwo", text);
        Assert.True(stopped);
        // The newline of "one\n" could begin the stop, so it waits until "t" shows it does not.
        Assert.Equal(["o", "n", "e", "", "\nt"], chunks.Take(5));
    }

    [Fact]
    public void Random_bytes_join_to_their_utf8_reading_up_to_the_first_stop_and_no_chunk_splits_a_character()
    {
        var random = new Random(5);
        string[][] stopSets = [[], ["ab"], ["é", "\n\n"], ["€uro", "a"], ["😀"]];
        for (int trial = 0; trial < 3000; trial++)
        {
            // Mostly text with multi-byte characters, some invalid bytes and cut sequences.
            var bytes = new List<byte>();
            while (bytes.Count < 40)
                bytes.AddRange(random.Next(6) switch
                {
                    0 => "é"u8.ToArray(), 1 => "€"u8.ToArray(), 2 => "😀"u8.ToArray(), 3 => [(byte)random.Next(256)],
                    4 => "😀"u8[..random.Next(1, 4)].ToArray(), _ => [(byte)"ab\n u"[random.Next(5)]],
                });
            var stops = stopSets[trial % stopSets.Length];
            var (text, chunks, stopped) = Feed([.. bytes], stops);
            var all = bytes.ToArray();
            int end = all.Length;
            for (int i = 1; i <= all.Length && end == all.Length; i++)
                foreach (var s in stops.Select(Encoding.UTF8.GetBytes))
                    if (all.AsSpan(0, i).EndsWith(s)) { end = i - s.Length; break; }
            Assert.Equal(Encoding.UTF8.GetString(all, 0, end), text);
            Assert.Equal(end < all.Length, stopped);
            Assert.All(chunks, c => Assert.True(c.Length == 0 || (!char.IsLowSurrogate(c[0]) && !char.IsHighSurrogate(c[^1])), $"chunk '{c}' splits a character"));
            // Nothing of a stop sequence is ever sent.
            Assert.All(stops, s => Assert.DoesNotContain(s, text));
        }
    }
}

public sealed class BatchSchedulerTests
{
    static GenerationRequest Request(byte[] prompt, int maxTokens, long seed, double temperature = 0.5, double threshold = 0, params byte[][] stops) =>
        new(RequestKind.Completion, prompt, maxTokens, temperature, threshold, seed, stops, Stream: true, IncludeUsage: false);

    static string Collect(ServedStream s) => string.Concat(s.Output.ReadAllAsync().ToBlockingEnumerable());

    // Weights four times PyTorch's initial scale, so that the logits, and the bytes drawn at temperature 0.5, depend
    // strongly on the state: a state moved to the wrong row changes them.
    static TransformerModel<float> Model(Device device, WeightFormat format)
    {
        var model = new PostHeadsGated(device);
        model.Initialize(seed: 3);
        model.WriteWeights([.. model.ReadWeights().Select(w => 4 * w)]);
        model.Inference.UseWeights(format);
        return model;
    }

    // Prompts of the test model's 11 tokens, of lengths around the prefill chunk and the one-row case.
    static List<GenerationRequest> Requests()
    {
        var random = new Random(8);
        int[] lengths = [1, 2, 7, 40, 255, 256, 257, 513, 3, 90, 1, 12];
        return [.. lengths.Select((n, i) => Request([.. Enumerable.Range(0, n).Select(_ => (byte)random.Next(11))], 20 + 7 * i, seed: 100 + i % 6))];
    }

    [Theory]
    [InlineData(WeightFormat.Fp32)]
    [InlineData(WeightFormat.Bf16)]
    [InlineData(WeightFormat.Int8)]
    public void A_streams_bytes_are_those_it_gets_alone_whatever_runs_beside_it(WeightFormat format)
    {
        using var device = Device.Create("cpu");
        var requests = Requests();
        List<string> alone;
        using (var scheduler = new BatchScheduler(Model(device, format), "test", maxStreams: 8, maxQueue: 0, _ => { }))
            alone = [.. requests.Select(r => Collect(scheduler.Submit(r)))];
        Assert.All(alone, (text, i) => Assert.Equal(requests[i].MaxTokens, text.Length));
        // Streams with equal seeds and prompts of equal bytes differ, so each stream's generator is its own.
        Assert.NotEqual(alone[0], alone[6]);

        // All at once through 5 slots: streams join while others run, leave at different steps, wait in the queue.
        using (var scheduler = new BatchScheduler(Model(device, format), "test", maxStreams: 5, maxQueue: 20, _ => { }))
        {
            var streams = requests.Select(scheduler.Submit).ToList();
            Assert.Equal(alone, streams.Select(Collect));
        }
    }

    [Theory]
    [InlineData(WeightFormat.Fp32)]
    [InlineData(WeightFormat.Int8)]
    public void A_rows_step_logits_are_the_same_bit_for_bit_in_every_batch_the_scheduler_steps(WeightFormat format)
    {
        using var device = Device.Create("cpu");
        using var model = Model(device, format);
        const int rows = 6;
        using var session = model.StartGeneration(rows);
        var random = new Random(2);
        session.Continue([.. Enumerable.Range(0, rows * 9).Select(_ => random.Next(11))], 9);
        var states = Enumerable.Range(0, rows).Select(r =>
        {
            var state = new float[session.StateElements];
            session.ReadState(r, state);
            return state;
        }).ToArray();
        Assert.NotEqual(states[0], states[1]);
        int[] tokens = [3, 1, 4, 1, 5, 9];
        model.Inference.RowByRow = true;
        var together = session.Step(tokens);
        int v = model.Vocabulary;
        for (int r = 0; r < rows; r++)
            foreach (int batch in new[] { 1, 2, 3 })
            {
                for (int i = 0; i < batch; i++) session.WriteState(i, states[(r + i) % rows]);
                session.UseSequences(batch);
                var alone = session.Step([.. Enumerable.Range(0, batch).Select(i => tokens[(r + i) % rows])]);
                Assert.Equal(together.AsSpan(r * v, v).ToArray(), alone.AsSpan(0, v).ToArray());
            }
        // With reduced weights, a lone row is what generation without the server computes (the same row product).
        if (format == WeightFormat.Fp32) return;
        model.Inference.RowByRow = false;
        session.WriteState(0, states[0]);
        session.UseSequences(1);
        Assert.Equal(together.AsSpan(0, v).ToArray(), session.Step([tokens[0]]));
    }

    [Fact]
    public void Stops_and_lengths_end_streams_with_their_reason()
    {
        using var device = Device.Create("cpu");
        using var scheduler = new BatchScheduler(Model(device, WeightFormat.Fp32), "test", 4, 4, _ => { });
        var free = scheduler.Submit(Request([1, 2, 3], 30, seed: 1));
        string text = Collect(free);
        Assert.Equal(("length", 30), (free.FinishReason, free.Generated));
        // Stop at the first two bytes this seed draws after its fifth: the text ends before them.
        var stop = Encoding.Latin1.GetBytes(text[5..7]);
        var stopped = scheduler.Submit(Request([1, 2, 3], 30, seed: 1, stops: stop));
        string cut = Collect(stopped);
        Assert.Equal("stop", stopped.FinishReason);
        Assert.Equal(text[..text.IndexOf(text[5..7], StringComparison.Ordinal)], cut);
        Assert.Equal(cut.Length + 2, stopped.Generated);
    }

    [Fact]
    public async Task A_full_queue_answers_429_a_cancelled_stream_frees_its_slot_and_draining_answers_503()
    {
        using var device = Device.Create("cpu");
        var lines = new List<string>();
        using var scheduler = new BatchScheduler(Model(device, WeightFormat.Fp32), "test", maxStreams: 1, maxQueue: 1, lines.Add);
        var running = scheduler.Submit(Request([1], 1_000_000, seed: 1));
        Assert.True(await running.Output.WaitToReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        var waiting = scheduler.Submit(Request([2], 5, seed: 2));
        var full = Assert.Throws<RequestException>(() => scheduler.Submit(Request([3], 5, seed: 3)));
        Assert.Equal((429, "rate_limit_exceeded"), (full.Status, full.Code));
        Assert.Equal((1, 1), scheduler.Load);

        // The running stream's client goes away: its slot goes to the waiting one, which completes.
        running.Cancel();
        Assert.Equal(5, Collect(waiting).Length);
        Assert.Equal((0, 0), scheduler.Load);

        var last = scheduler.Submit(Request([1], 1_000_000, seed: 4));
        Assert.True(await last.Output.WaitToReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        scheduler.Drain(TimeSpan.FromMilliseconds(200));
        Assert.Equal(503, Assert.Throws<RequestException>(() => scheduler.Submit(Request([1], 5, seed: 5))).Status);
        await scheduler.Drained.WaitAsync(TimeSpan.FromSeconds(10));
        Collect(last);
        Assert.Equal("length", last.FinishReason);
    }

    [Fact]
    public void A_model_without_a_recurrent_state_is_refused_and_a_prompt_outside_the_vocabulary_is_a_400()
    {
        using var device = Device.Create("cpu");
        using var attention = new AttnRotary(device);
        Assert.Contains("no recurrent state", Assert.Throws<UserInputException>(() => new BatchScheduler(attention, "attn", 4, 4, _ => { })).Message);
        using var scheduler = new BatchScheduler(Model(device, WeightFormat.Fp32), "test", 4, 4, _ => { });
        var e = Assert.Throws<RequestException>(() => scheduler.Submit(Request([1, 200], 5, seed: 1)));
        Assert.Equal((400, "prompt"), (e.Status, e.Param));
    }
}
