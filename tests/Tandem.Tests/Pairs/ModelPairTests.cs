using NUnit.Framework;
using Tandem.Interop;
using Tandem.Tests.Support;

namespace Tandem.Tests.Pairs;

/// <summary>
/// <see cref="ModelPair"/> on the fixture pair: the losslessness of greedy speculative decoding, the threshold
/// extremes of R-Stitch and EAD, the committed sequence and cache lengths, statistics, and the generation's life cycle
/// (runs once, superseded, disposed, cancelled).
/// </summary>
[TestFixture]
public sealed class ModelPairTests
{
    private PairFixture _fixture = null!;

    [OneTimeSetUp]
    public void Load() => _fixture = new PairFixture();

    [OneTimeTearDown]
    public void Unload() => _fixture.Dispose();

    [Test]
    public async Task The_large_mode_writes_what_the_large_model_generates_alone()
    {
        foreach (int[] prompt in PairFixture.Prompts)
        {
            var (records, output, stats) = _fixture.Run(prompt, PairFixture.Greedy(PairMode.Large));
            var alone = new List<int>();
            await foreach (var token in _fixture.Large.GenerateAsync(prompt, new GenerationOptions(MaxTokens: 20, Temperature: 0, IgnoreEos: true)))
            {
                alone.Add(token.Id);
            }
            Assert.That(output, Is.EqualTo(alone));
            Assert.That(records.Select(r => (r.Model, r.Outcome)), Has.All.EqualTo((PairModelKind.Large, TokenOutcome.Written)));
            Assert.That(stats.TokensLarge, Is.EqualTo(20));
            Assert.That(stats.LargeShare, Is.EqualTo(1.0));
        }
    }

    [TestCase(1, false)]
    [TestCase(3, false)]
    [TestCase(4, true)]
    [TestCase(7, false)]
    public void Greedy_speculative_decoding_writes_exactly_the_large_models_greedy_output(int draftLength, bool adaptive)
    {
        foreach (int[] prompt in PairFixture.Prompts)
        {
            var large = _fixture.Run(prompt, PairFixture.Greedy(PairMode.Large, tokens: 24));
            var speculative = _fixture.Run(prompt,
                PairFixture.Greedy(PairMode.Speculative, tokens: 24) with { DraftLength = draftLength, AdaptiveDraft = adaptive });

            Assert.That(speculative.Output, Is.EqualTo(large.Output), $"prompt of {prompt.Length} tokens");
            var records = speculative.Records;
            Assert.That(records.Count(r => r.Outcome == TokenOutcome.Accepted), Is.EqualTo(speculative.Stats.Accepted));
            Assert.That(records.Where(r => r.Outcome is TokenOutcome.Accepted or TokenOutcome.Rejected).Select(r => r.Model),
                Has.All.EqualTo(PairModelKind.Small));
            Assert.That(records.Where(r => r.Outcome is TokenOutcome.Corrected or TokenOutcome.Bonus).Select(r => r.Model),
                Has.All.EqualTo(PairModelKind.Large));
            Assert.That(speculative.Stats.Verifications, Is.GreaterThan(0));
            Assert.That(speculative.Stats.AcceptanceRate, Is.InRange(0.0, 1.0));
            AssertCommittedRecordsAreTheOutput(prompt, records, speculative.Output);
        }
    }

    [Test]
    public void Sampled_speculative_decoding_is_reproducible_from_its_seed()
    {
        int[] prompt = PairFixture.Prompts[1];
        var options = PairFixture.Greedy(PairMode.Speculative, tokens: 24) with { Temperature = 1f, Seed = 42 };
        var first = _fixture.Run(prompt, options);
        var again = _fixture.Run(prompt, options);
        Assert.That(again.Output, Is.EqualTo(first.Output));
        Assert.That(again.Records, Is.EqualTo(first.Records));
        AssertCommittedRecordsAreTheOutput(prompt, first.Records, first.Output);
        Assert.That(first.Stats.Drafted, Is.GreaterThan(0));
    }

    [Test]
    public void RStitch_and_EAD_at_their_threshold_extremes_reproduce_one_model_alone()
    {
        foreach (int[] prompt in PairFixture.Prompts)
        {
            int[] small = _fixture.Run(prompt, PairFixture.Greedy(PairMode.Small)).Output;
            int[] large = _fixture.Run(prompt, PairFixture.Greedy(PairMode.Large)).Output;
            Assert.That(small, Is.Not.EqualTo(large), "the fixture models must disagree for this test to mean anything");

            var never = _fixture.Run(prompt, PairFixture.Greedy(PairMode.RStitch, policy: new EntropyThresholdPolicy(float.PositiveInfinity)));
            var always = _fixture.Run(prompt, PairFixture.Greedy(PairMode.RStitch, policy: new EntropyThresholdPolicy(float.NegativeInfinity)));
            var eadNever = _fixture.Run(prompt, PairFixture.Greedy(PairMode.Ead, policy: new WindowedEntropyPolicy(float.PositiveInfinity)));
            var eadAlways = _fixture.Run(prompt,
                PairFixture.Greedy(PairMode.Ead, policy: new WindowedEntropyPolicy(float.NegativeInfinity, regenerateOnSwitch: true)));

            Assert.Multiple(() =>
            {
                Assert.That(never.Output, Is.EqualTo(small));
                Assert.That(never.Stats.LargeShare, Is.EqualTo(0.0));
                Assert.That(always.Output, Is.EqualTo(large));
                Assert.That(always.Stats.LargeShare, Is.EqualTo(1.0));
                Assert.That(always.Records.Count(r => r.Outcome == TokenOutcome.Discarded), Is.EqualTo(1), "only the first small proposal");
                Assert.That(eadNever.Output, Is.EqualTo(small));
                Assert.That(eadAlways.Output, Is.EqualTo(large));
            });
        }
    }

    [Test]
    public async Task After_every_step_the_caches_hold_at_most_the_committed_sequence()
    {
        int[] prompt = PairFixture.Prompts[2];
        foreach (var options in new[]
                 {
                     PairFixture.Greedy(PairMode.Speculative, tokens: 30),
                     PairFixture.Greedy(PairMode.RStitch, tokens: 30, new EntropyThresholdPolicy(0.5f)),
                     PairFixture.Greedy(PairMode.Ead, tokens: 30, new WindowedEntropyPolicy(6f)),
                 })
        {
            var generation = _fixture.Pair.GenerateAsync(prompt, options);
            await foreach (var record in generation)
            {
                int committed = _fixture.Pair.CommittedTokens().Length;
                Assert.That(committed, Is.EqualTo(prompt.Length + generation.Output.Count));
                Assert.That(_fixture.Pair.CacheLength(PairModelKind.Small), Is.LessThanOrEqualTo(committed));
                Assert.That(_fixture.Pair.CacheLength(PairModelKind.Large), Is.LessThanOrEqualTo(committed));
            }
            Assert.That(_fixture.Pair.CommittedTokens(), Is.EqualTo(prompt.Concat(generation.Output)));
            Assert.That(generation.IsFinished);
            Assert.That(generation.Output, Has.Count.EqualTo(30));
        }
    }

    [Test]
    public void Statistics_count_what_the_records_show()
    {
        int[] prompt = PairFixture.Prompts[0];
        var (records, output, stats) = _fixture.Run(prompt, PairFixture.Greedy(PairMode.RStitch, tokens: 30, new EntropyThresholdPolicy(0.6f)));
        var committed = records.Where(r => r.Committed).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(stats.Tokens, Is.EqualTo(output.Length));
            Assert.That(stats.TokensLarge, Is.EqualTo(committed.Count(r => r.Model == PairModelKind.Large)));
            Assert.That(stats.TokensSmall, Is.EqualTo(committed.Count(r => r.Model == PairModelKind.Small)));
            Assert.That(stats.Discarded, Is.EqualTo(records.Count(r => r.Outcome == TokenOutcome.Discarded)));
            Assert.That(stats.LargeShare, Is.EqualTo((double)stats.TokensLarge / output.Length));
            Assert.That(stats.SecondsTotal, Is.GreaterThan(0));
            Assert.That(stats.ForwardsSmall, Is.GreaterThan(0));
            Assert.That(records.Select(r => r.EntropyNormalized), Has.All.InRange(0.0, 1.0));
            Assert.That(records.Select(r => r.MaxProb), Has.All.InRange(0.0, 1.0));
            Assert.That(records.Select(r => r.Eu), Has.All.InRange(0.0, 1.0));
        });
        AssertCommittedRecordsAreTheOutput(prompt, records, output);
    }

    [Test]
    public void The_pair_keeps_its_models_alive_after_they_are_disposed()
    {
        var small = Model.Load(Repository.Fixture("llama-f32"));
        var large = Model.Load(Repository.Fixture("mistral-swa-f32"));
        using var pair = ModelPair.Create(small, large);
        small.Dispose();
        large.Dispose();
        var generation = pair.GenerateAsync(PairFixture.Prompts[0], PairFixture.Greedy(PairMode.Speculative, tokens: 8));
        generation.RunToEnd();
        Assert.That(generation.Output, Has.Count.EqualTo(8));
    }

    [Test]
    public void Models_with_different_tokenizers_cannot_pair()
    {
        using var llama = Model.Load(Repository.Fixture("llama-f32"));
        using var qwen = Model.Load(Repository.Fixture("qwen2-tied-f32"));
        var error = Assert.Throws<TandemException>(() => ModelPair.Create(llama, qwen))!;
        Assert.That(error.Status, Is.EqualTo(TandemStatus.InvalidModel));
        Assert.That(error.Message, Is.Not.Empty);
    }

    [Test]
    public void A_generation_runs_once_and_a_later_one_supersedes_it()
    {
        int[] prompt = PairFixture.Prompts[0];
        var first = _fixture.Pair.GenerateAsync(prompt, PairFixture.Greedy(PairMode.Small, tokens: 4));
        first.RunToEnd();
        Assert.Throws<InvalidOperationException>(() => first.RunToEnd());
        Assert.Throws<InvalidOperationException>(() => first.GetAsyncEnumerator());

        var interrupted = _fixture.Pair.GenerateAsync(prompt, PairFixture.Greedy(PairMode.Small, tokens: 10));
        var later = _fixture.Pair.GenerateAsync(prompt, PairFixture.Greedy(PairMode.Large, tokens: 3));
        Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            int seen = 0;
            await foreach (var _ in interrupted)
            {
                if (++seen == 2)
                {
                    later.RunToEnd();
                }
            }
        });
        Assert.That(interrupted.Output, Has.Count.EqualTo(2));
        Assert.That(later.Output, Has.Count.EqualTo(3));
        Assert.That(later.Stats, Is.Not.Null);
    }

    [Test]
    public void Cancelling_before_or_during_a_generation_raises_OperationCanceledException_and_leaves_the_pair_usable()
    {
        int[] prompt = PairFixture.Prompts[1];
        var cancelled = _fixture.Pair.GenerateAsync(prompt, PairFixture.Greedy(PairMode.Speculative, tokens: 40),
            new CancellationToken(canceled: true));
        Assert.Catch<OperationCanceledException>(() => cancelled.RunToEnd());
        Assert.That(cancelled.Output, Is.Empty);

        using var source = new CancellationTokenSource();
        var received = new List<PairToken>();
        var running = _fixture.Pair.GenerateAsync(prompt, PairFixture.Greedy(PairMode.RStitch, tokens: 40));
        Assert.CatchAsync<OperationCanceledException>(async () =>
        {
            await foreach (var record in running.WithCancellation(source.Token))
            {
                received.Add(record);
                if (received.Count == 3)
                {
                    source.Cancel();
                }
            }
        });
        Assert.That(received, Has.Count.EqualTo(3));
        Assert.That(running.IsFinished, Is.False);
        Assert.That(running.Stats, Is.Not.Null, "statistics of the part that ran");

        var after = _fixture.Run(prompt, PairFixture.Greedy(PairMode.Small, tokens: 5));
        Assert.That(after.Output, Has.Length.EqualTo(5));
    }

    [Test]
    public void Cancelling_inside_a_step_stops_it_through_the_native_abort_and_undoes_the_step()
    {
        // The policy keeps three small tokens, then cancels and hands the position to the large model: the forward
        // pass that needs polls the native abort, so the fourth step fails as a whole instead of completing.
        int[] prompt = PairFixture.Prompts[0];
        using var source = new CancellationTokenSource();
        var policy = new CancellingPolicy(source, cancelAt: 4);
        var generation = _fixture.Pair.GenerateAsync(prompt, PairFixture.Greedy(PairMode.RStitch, tokens: 20, policy), source.Token);

        Assert.Catch<OperationCanceledException>(() => generation.RunToEnd());
        Assert.That(policy.Calls, Is.EqualTo(4));
        Assert.That(generation.Output, Has.Count.EqualTo(3));
        Assert.That(_fixture.Pair.CommittedTokens(), Is.EqualTo(prompt.Concat(generation.Output)), "the failed step left no trace");
    }

    private sealed class CancellingPolicy(CancellationTokenSource source, int cancelAt) : IRoutingPolicy
    {
        public int Calls { get; private set; }

        public RouteDecision Decide(in RouteContext context)
        {
            if (++Calls != cancelAt)
            {
                return RouteDecision.Keep;
            }
            source.Cancel();
            return RouteDecision.DiscardAndSwitch;
        }
    }

    [Test]
    public void A_disposed_pair_refuses_new_and_running_generations()
    {
        using var fixture = new PairFixture();
        var generation = fixture.Pair.GenerateAsync(PairFixture.Prompts[0], PairFixture.Greedy(PairMode.Small, tokens: 10));
        Assert.ThrowsAsync<ObjectDisposedException>(async () =>
        {
            await foreach (var _ in generation)
            {
                fixture.Pair.Dispose();
            }
        });
        Assert.Throws<ObjectDisposedException>(() => fixture.Pair.GenerateAsync(PairFixture.Prompts[0]));
        Assert.Throws<ObjectDisposedException>(() => fixture.Pair.CommittedTokens());
    }

    [Test]
    public void Bad_input_is_an_argument_error_before_or_when_the_generation_starts()
    {
        var pair = _fixture.Pair;
        int[] prompt = PairFixture.Prompts[0];
        Assert.Multiple(() =>
        {
            Assert.Throws<ArgumentException>(() => pair.GenerateAsync(ReadOnlySpan<int>.Empty));
            Assert.Catch<ArgumentException>(() => pair.GenerateAsync(prompt, new PairOptions(Temperature: float.NaN)));
            Assert.Catch<ArgumentException>(() => pair.GenerateAsync(prompt, new PairOptions(TopP: 0)));
            Assert.Catch<ArgumentException>(() => pair.GenerateAsync(prompt, new PairOptions(StatsTopK: 0)));
            Assert.Catch<ArgumentException>(() => pair.GenerateAsync(prompt, new PairOptions(MaxNewTokens: -1)));
            Assert.Catch<ArgumentException>(() => pair.GenerateAsync(prompt, new PairOptions(DraftLength: 0)));
            Assert.Catch<ArgumentException>(() => pair.GenerateAsync(prompt, new PairOptions(DraftConfidence: 1.5f)));
            Assert.Catch<ArgumentException>(() => pair.GenerateAsync(prompt, new PairOptions(Mode: (PairMode)9)));
            Assert.Catch<ArgumentException>(() => pair.GenerateAsync(prompt,
                new PairOptions(Mode: PairMode.Speculative, Policy: new EntropyThresholdPolicy())));
            Assert.Catch<ArgumentException>(() => pair.GenerateAsync(prompt,
                new PairOptions(Mode: PairMode.Ead, Policy: new WindowedEntropyPolicy(window: PairOptions.MaxEntropyWindow + 1))));
            Assert.Catch<ArgumentOutOfRangeException>(() => pair.GenerateAsync([3, 512, 4], PairFixture.Greedy(PairMode.Small)).RunToEnd());
            Assert.Catch<ArgumentOutOfRangeException>(() => pair.CacheLength((PairModelKind)2));
        });
    }

    [Test]
    public unsafe void PairOptions_defaults_are_the_native_defaults()
    {
        tdm_pair_options init;
        NativeMethods.tdm_pair_options_init(&init);
        tdm_pair_options native = init; // a copy the assertion lambdas may capture
        var managed = new PairOptions();
        Assert.Multiple(() =>
        {
            Assert.That((int)managed.Mode, Is.EqualTo(native.mode));
            Assert.That(managed.Temperature, Is.EqualTo(native.temperature));
            Assert.That(managed.TopK, Is.EqualTo(native.top_k));
            Assert.That(managed.TopP, Is.EqualTo(native.top_p));
            Assert.That(managed.Seed, Is.EqualTo(native.seed));
            Assert.That((uint)managed.StatsTopK, Is.EqualTo(native.stats_top_k));
            Assert.That((uint)managed.MaxNewTokens, Is.EqualTo(native.max_new_tokens));
            Assert.That(managed.StopAtEos ? 1 : 0, Is.EqualTo(native.stop_at_eos));
            Assert.That((uint)managed.DraftLength, Is.EqualTo(native.draft_length));
            Assert.That(managed.AdaptiveDraft ? 1 : 0, Is.EqualTo(native.adaptive_draft));
            Assert.That(managed.DraftConfidence, Is.EqualTo(native.draft_confidence));
        });
        Assert.That(native.policy == null && native.route == null && native.abort == null, "no policy, callback or abort by default");
        // And ToNative carries every field.
        var custom = new PairOptions(PairMode.Ead, 0.7f, 5, 0.9f, 11, 3, 17, false, 6, true, 0.4f);
        tdm_pair_options mapped = custom.ToNative();
        Assert.That((mapped.mode, mapped.temperature, mapped.top_k, mapped.top_p, mapped.seed, mapped.stats_top_k, mapped.max_new_tokens,
                mapped.stop_at_eos, mapped.draft_length, mapped.adaptive_draft, mapped.draft_confidence),
            Is.EqualTo(((int)PairMode.Ead, 0.7f, 5, 0.9f, 11UL, 3u, 17u, (byte)0, 6u, (byte)1, 0.4f)));
    }

    /// <summary>The committed records, in order, are the output, one per position after the prompt.</summary>
    internal static void AssertCommittedRecordsAreTheOutput(int[] prompt, IReadOnlyList<PairToken> records, IReadOnlyList<int> output)
    {
        var committed = records.Where(r => r.Committed).ToArray();
        Assert.That(committed.Select(r => r.Token), Is.EqualTo(output));
        Assert.That(committed.Select(r => r.Position), Is.EqualTo(Enumerable.Range(prompt.Length, output.Count).Select(p => (long)p)));
        foreach (var dropped in records.Where(r => !r.Committed))
        {
            Assert.That(dropped.Position, Is.InRange((long)prompt.Length, prompt.Length + output.Count - 1),
                "a dropped proposal was for a position that another token then took");
        }
    }
}
