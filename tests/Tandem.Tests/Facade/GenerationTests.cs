using System.Diagnostics;
using System.Text.Json.Nodes;
using NUnit.Framework;
using Tandem.Tests.Support;

namespace Tandem.Tests.Facade;

/// <summary>
/// <see cref="Model.GenerateAsync(string, GenerationOptions?, CancellationToken)"/>: what it streams, each of its
/// stop conditions, and cancellation (between tokens, and inside a long prefill through the native abort callback).
/// </summary>
[TestFixture]
public sealed class GenerationTests
{
    [Test]
    public async Task Greedy_generation_reproduces_transformers_and_streams_what_the_tokenizer_decodes()
    {
        var golden = Golden.Load("llama-f32");
        var greedy = golden.Json.Greedy;
        Assert.That(golden.Json.Prompts[0].Ids, Is.EqualTo(greedy.PromptIds), "the greedy golden continues prompt 0");
        int steps = greedy.Margins.TakeWhile(m => m >= 1e-4).Count();
        using var model = Model.Load(golden.Folder);

        var tokens = await Collect(model.GenerateAsync(golden.Json.Prompts[0].Text,
            new GenerationOptions(MaxTokens: steps, Temperature: 0, IgnoreEos: true)));

        Assert.That(tokens.Select(t => t.Id), Is.EqualTo(greedy.Tokens.Take(steps)));
        Assert.That(tokens.Take(steps - 1).Select(t => t.Finish), Has.All.EqualTo(FinishReason.None));
        Assert.That(tokens[^1].Finish, Is.EqualTo(FinishReason.MaxTokens));
        Assert.That(tokens.Select(t => t.TokenText), Is.EqualTo(tokens.Select(t => model.Tokenizer.DecodeToken(t.Id))));
        Assert.That(string.Concat(tokens.Select(t => t.Text)), Is.EqualTo(model.Tokenizer.Decode(tokens.Select(t => t.Id).ToArray())));
    }

    [Test]
    public async Task Each_token_carries_the_statistics_of_the_distribution_it_was_drawn_from()
    {
        var golden = Golden.Load("qwen2-tied-f32");
        int[] prompt = golden.Json.Prompts[0].Ids;
        using var model = Model.Load(golden.Folder);

        var tokens = await Collect(model.GenerateAsync(prompt, new GenerationOptions(MaxTokens: 6, Seed: 3)));

        using var session = model.CreateSession();
        session.Prefill(prompt);
        foreach (var token in tokens)
        {
            var stats = session.Stats(0);
            Assert.Multiple(() =>
            {
                Assert.That(token.Entropy, Is.EqualTo(stats.Entropy).Within(1e-5));
                Assert.That(token.Au, Is.EqualTo(stats.Au).Within(1e-5));
                Assert.That(token.Eu, Is.EqualTo(stats.Eu).Within(1e-5));
                Assert.That(token.MaxProb, Is.EqualTo(stats.MaxProb).Within(1e-6));
            });
            session.Decode(token.Id);
        }
    }

    [Test]
    public async Task Generation_stops_at_an_end_of_sequence_id_and_streams_it_unless_IgnoreEos()
    {
        // A copy of llama-f32 whose config names as end-of-sequence the first greedy token that differs from the
        // first one, so greedy generation must stop exactly where that token first appears.
        var golden = Golden.Load("llama-f32");
        int[] expected = golden.Json.Greedy.Tokens;
        int eos = expected.First(t => t != expected[0]);
        int stopAt = Array.IndexOf(expected, eos);
        string folder = CopyWithEos(golden.Folder, eos);
        try
        {
            using var model = Model.Load(folder);
            Assert.That(model.Info.EosTokenIds, Does.Contain(eos));
            int[] prompt = golden.Json.Greedy.PromptIds;

            var stopped = await Collect(model.GenerateAsync(prompt, new GenerationOptions(MaxTokens: 32, Temperature: 0)));
            var ignored = await Collect(model.GenerateAsync(prompt, new GenerationOptions(MaxTokens: stopAt + 3, Temperature: 0, IgnoreEos: true)));

            Assert.That(stopped.Select(t => t.Id), Is.EqualTo(expected.Take(stopAt + 1)));
            Assert.That(stopped[^1].Finish, Is.EqualTo(FinishReason.EndOfSequence));
            Assert.That(stopped[^1].FinishDetail, Does.Contain(eos.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            Assert.That(ignored.Select(t => t.Id), Is.EqualTo(expected.Take(stopAt + 3)));
            Assert.That(ignored[^1].Finish, Is.EqualTo(FinishReason.MaxTokens));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public async Task Generation_stops_at_the_kv_capacity_and_says_so()
    {
        var golden = Golden.Load("llama-f32");
        int[] prompt = golden.Json.Prompts[0].Ids;
        using var model = Model.Load(golden.Folder);

        var tokens = await Collect(model.GenerateAsync(prompt,
            new GenerationOptions(MaxTokens: 100, Temperature: 0, Session: new SessionOptions(KvCapacity: prompt.Length + 3), IgnoreEos: true)));

        Assert.That(tokens, Has.Count.EqualTo(3), "prompt + generated tokens fill the capacity exactly");
        Assert.That(tokens[^1].Finish, Is.EqualTo(FinishReason.ContextLimit));
        Assert.That(tokens[^1].FinishDetail, Does.Contain("KV capacity").And.Contain((prompt.Length + 3).ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Test]
    public async Task Generation_stops_at_max_position_embeddings_and_says_so()
    {
        using var model = Model.Load(Repository.Fixture("llama-f32"));
        int context = model.Info.ContextLength;
        int[] prompt = [.. Enumerable.Range(0, context - 4).Select(i => 2 + i % (model.Info.VocabSize - 2))];

        var tokens = await Collect(model.GenerateAsync(prompt, new GenerationOptions(MaxTokens: 100, Temperature: 0, IgnoreEos: true)));

        Assert.That(tokens, Has.Count.EqualTo(4));
        Assert.That(tokens[^1].Finish, Is.EqualTo(FinishReason.ContextLimit));
        Assert.That(tokens[^1].FinishDetail, Does.Contain("max_position_embeddings"));
    }

    [Test]
    public void Cancelling_between_tokens_stops_the_stream_with_OperationCanceledException()
    {
        using var model = Model.Load(Repository.Fixture("llama-f32"));
        using var cancel = new CancellationTokenSource();
        var received = new List<GeneratedToken>();

        Assert.CatchAsync<OperationCanceledException>(async () =>
        {
            await foreach (var token in model.GenerateAsync("The quick brown fox", new GenerationOptions(MaxTokens: 50, IgnoreEos: true), cancel.Token))
            {
                received.Add(token);
                if (received.Count == 3)
                {
                    cancel.Cancel();
                }
            }
        });
        Assert.That(received, Has.Count.EqualTo(3));
    }

    [Test]
    public void An_already_cancelled_token_generates_nothing()
    {
        using var model = Model.Load(Repository.Fixture("llama-f32"));
        int count = 0;
        Assert.CatchAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in model.GenerateAsync("hello", cancellationToken: new CancellationToken(canceled: true)))
            {
                count++;
            }
        });
        Assert.That(count, Is.Zero);
    }

    [Test]
    public void Cancelling_a_long_prefill_stops_it_between_layers_and_rolls_the_session_back()
    {
        var golden = Golden.Load("long-llama-bf16");
        int[] ids = golden.Json.Long!.Ids;
        using var model = Model.Load(golden.Folder);
        using var session = model.CreateSession();
        session.Prefill([1, 2, 3]);

        // How long an uncancelled prefill takes here (second run: the first pays for warm-up).
        var clock = Stopwatch.StartNew();
        for (int run = 0; run < 2; run++)
        {
            clock.Restart();
            session.Prefill(ids);
            session.Truncate(3);
        }
        var duration = clock.Elapsed;

        // Cancel a quarter of the way in; on a machine so fast that the prefill wins the race, cancel earlier.
        OperationCanceledException? cancelled = null;
        for (var delay = duration / 4; cancelled is null && delay > TimeSpan.FromMicroseconds(50); delay /= 2)
        {
            using var cancel = new CancellationTokenSource(delay);
            try
            {
                session.Prefill(ids, cancellationToken: cancel.Token);
                session.Truncate(3);
            }
            catch (OperationCanceledException e)
            {
                cancelled = e;
            }
        }

        Assert.That(cancelled, Is.Not.Null, $"no cancellation observed (an uncancelled prefill takes {duration.TotalMilliseconds:0.0} ms)");
        Assert.That(TandemException.StatusOf(cancelled!), Is.EqualTo(TandemStatus.Cancelled), "stopped by the native abort callback");
        Assert.That(session.Length, Is.EqualTo(3), "rolled back to the length before the call");

        // And it still works: from empty, the long prompt gives transformers' logits.
        session.Truncate(0);
        session.Prefill(ids, new PrefillOptions(AllLogits: true));
        GoldenLogitsTests.AssertRowsMatch(session, golden.LongTailLogits(), golden.Json.Long.TailPositions[0], bf16: true,
            "after a cancelled prefill");
    }

    private static async Task<List<GeneratedToken>> Collect(IAsyncEnumerable<GeneratedToken> stream)
    {
        var tokens = new List<GeneratedToken>();
        await foreach (var token in stream)
        {
            tokens.Add(token);
        }
        return tokens;
    }

    private static string CopyWithEos(string source, int eos)
    {
        string folder = Directory.CreateTempSubdirectory("tandem-eos-").FullName;
        foreach (string file in Directory.GetFiles(source))
        {
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        }
        foreach (string name in new[] { "config.json", "generation_config.json" })
        {
            string path = Path.Combine(folder, name);
            if (File.Exists(path))
            {
                var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
                json["eos_token_id"] = eos;
                File.WriteAllText(path, json.ToJsonString());
            }
        }
        return folder;
    }
}
