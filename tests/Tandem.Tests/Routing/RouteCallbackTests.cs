using NUnit.Framework;
using Tandem.Tests.Pairs;

namespace Tandem.Tests.Routing;

/// <summary>
/// Managed routing policies called from native code through the one trampoline: what they see, that they stay alive
/// across garbage collections, that an exception comes back to the caller as itself (never crossing native frames),
/// and that each built-in's managed decisions equal the native core's.
/// </summary>
[TestFixture]
public sealed class RouteCallbackTests
{
    private PairFixture _fixture = null!;

    [OneTimeSetUp]
    public void Load() => _fixture = new PairFixture();

    [OneTimeTearDown]
    public void Unload() => _fixture.Dispose();

    [Test]
    public void A_policy_sees_each_proposal_with_the_statistics_of_its_record()
    {
        int[] prompt = PairFixture.Prompts[1];
        var recorder = new RecordingPolicy(new EntropyThresholdPolicy(0.6f));
        var (records, output, stats) = _fixture.Run(prompt, PairFixture.Greedy(PairMode.RStitch, tokens: 30, recorder));

        Assert.That(stats.Switches, Is.GreaterThan(0), "the threshold should make both models write");
        Assert.That(recorder.Seen, Has.Count.EqualTo(records.Count), "one decision per proposal");
        for (int i = 0; i < records.Count; i++)
        {
            RouteContext context = recorder.Seen[i];
            PairToken record = records[i];
            Assert.That((context.Active, context.Token, context.Position), Is.EqualTo((record.Model, record.Token, record.Position)));
            Assert.That(context.Stats.Entropy, Is.EqualTo(record.Entropy));
            Assert.That(context.Stats.EntropyNormalized, Is.EqualTo(record.EntropyNormalized));
            Assert.That(context.Stats.MaxProb, Is.EqualTo(record.MaxProb));
            Assert.That((context.Stats.Au, context.Stats.Eu), Is.EqualTo((record.Au, record.Eu)));
            Assert.That(context.Stats.TopIds, Has.Count.EqualTo(2));
            Assert.That(context.Stats.TopIds[0], Is.EqualTo(record.Token), "greedy: the proposal is the top token");
            Assert.That(context.WindowMeanBits, Is.GreaterThanOrEqualTo(0));
        }
        ModelPairTests.AssertCommittedRecordsAreTheOutput(prompt, records, output);
    }

    [Test]
    public void The_policy_survives_garbage_collections_during_the_generation()
    {
        // Nothing but the generation refers to this policy; it forces full collections inside the native step.
        var generation = _fixture.Pair.GenerateAsync(PairFixture.Prompts[0],
            PairFixture.Greedy(PairMode.RStitch, tokens: 25, new CollectingPolicy()));
        var records = generation.RunToEnd();
        Assert.That(generation.Output, Has.Count.EqualTo(25));
        Assert.That(records, Has.Count.GreaterThanOrEqualTo(25));
        Assert.That(((CollectingPolicy)generation.Options.Policy!).Calls, Is.EqualTo(records.Count));
    }

    [Test]
    public void A_throwing_policy_stops_the_generation_with_its_own_exception_and_the_pair_stays_usable()
    {
        int[] prompt = PairFixture.Prompts[0];
        var policy = new ThrowingPolicy(failAt: 5);
        var generation = _fixture.Pair.GenerateAsync(prompt, PairFixture.Greedy(PairMode.RStitch, tokens: 20, policy));

        var error = Assert.Throws<PolicyFailure>(() => generation.RunToEnd())!;
        Assert.That(error.Message, Is.EqualTo("decision 5 failed"));
        Assert.That(error.StackTrace, Does.Contain(nameof(ThrowingPolicy.Decide)), "rethrown with the policy's own stack");
        Assert.That(generation.Output, Has.Count.EqualTo(4), "the four decisions before the failure were committed");
        Assert.That(generation.Stats, Is.Not.Null);

        // Streaming reports it the same way, and the pair goes on working.
        var streamed = _fixture.Pair.GenerateAsync(prompt, PairFixture.Greedy(PairMode.Ead, tokens: 20, new ThrowingPolicy(failAt: 1)));
        Assert.ThrowsAsync<PolicyFailure>(async () =>
        {
            await foreach (var _ in streamed)
            {
            }
        });
        var after = _fixture.Run(prompt, PairFixture.Greedy(PairMode.RStitch, tokens: 6));
        Assert.That(after.Output, Has.Length.EqualTo(6));
    }

    [Test]
    public void A_policy_answer_that_is_not_a_decision_is_an_InvalidOperationException()
    {
        var generation = _fixture.Pair.GenerateAsync(PairFixture.Prompts[0],
            PairFixture.Greedy(PairMode.RStitch, tokens: 5, new ConstantPolicy((RouteDecision)9)));
        var error = Assert.Throws<InvalidOperationException>(() => generation.RunToEnd())!;
        Assert.That(error.Message, Does.Contain("9"));
    }

    [Test]
    public void A_decision_the_native_loop_refuses_is_a_Callback_error_with_its_message()
    {
        // Discarding every proposal would discard the replacement too, which the loop refuses.
        var generation = _fixture.Pair.GenerateAsync(PairFixture.Prompts[0],
            PairFixture.Greedy(PairMode.RStitch, tokens: 5, new ConstantPolicy(RouteDecision.DiscardAndSwitch)));
        var error = Assert.Throws<TandemException>(() => generation.RunToEnd())!;
        Assert.That(error.Status, Is.EqualTo(TandemStatus.Callback));
        Assert.That(error.Message, Does.Contain("discard"));
    }

    private static IEnumerable<TestCaseData> BuiltIns()
    {
        // Thresholds near the middle of what the fixture models produce, so that both models write.
        yield return new TestCaseData(PairMode.RStitch, (Func<Quantiles, IRoutingPolicy>)(q => new EntropyThresholdPolicy((float)q.Normalized)))
            .SetName("EntropyThresholdPolicy");
        yield return new TestCaseData(PairMode.RStitch, (Func<Quantiles, IRoutingPolicy>)(q => new EntropyThresholdPolicy((float)q.Normalized, handbackAfter: 2, maxLargeSpan: 5)))
            .SetName("EntropyThresholdPolicy, handback 2, span 5");
        yield return new TestCaseData(PairMode.RStitch, (Func<Quantiles, IRoutingPolicy>)(q => new ConfidencePolicy((float)q.MaxProb)))
            .SetName("ConfidencePolicy");
        yield return new TestCaseData(PairMode.RStitch, (Func<Quantiles, IRoutingPolicy>)(q => new EvidencePolicy((float)q.Eu)))
            .SetName("EvidencePolicy");
        yield return new TestCaseData(PairMode.Ead, (Func<Quantiles, IRoutingPolicy>)(q => new WindowedEntropyPolicy((float)q.Bits, window: 3, minLargeTokens: 2)))
            .SetName("WindowedEntropyPolicy");
        yield return new TestCaseData(PairMode.Ead, (Func<Quantiles, IRoutingPolicy>)(q => new WindowedEntropyPolicy((float)q.Bits, regenerateOnSwitch: true)))
            .SetName("WindowedEntropyPolicy, regenerate");
    }

    [TestCaseSource(nameof(BuiltIns))]
    public void A_built_in_decides_the_same_run_natively_and_through_the_callback(PairMode mode, Func<Quantiles, IRoutingPolicy> make)
    {
        foreach (int[] prompt in PairFixture.Prompts)
        {
            var quantiles = Quantiles.Of(_fixture.Run(prompt, PairFixture.Greedy(PairMode.Small, tokens: 30)).Records);
            var native = _fixture.Run(prompt, PairFixture.Greedy(mode, tokens: 30, make(quantiles)));
            var managed = _fixture.Run(prompt, PairFixture.Greedy(mode, tokens: 30, new ManagedOnly(make(quantiles))));

            Assert.That(native.Stats.Switches, Is.GreaterThan(0), "both models should write for the comparison to mean anything");
            Assert.That(managed.Records, Is.EqualTo(native.Records));
            Assert.That(managed.Stats.Switches, Is.EqualTo(native.Stats.Switches));
        }
    }

    /// <summary>Medians of the small model's statistics over a run.</summary>
    public sealed record Quantiles(double Normalized, double MaxProb, double Eu, double Bits)
    {
        public static Quantiles Of(IReadOnlyList<PairToken> records) => new(
            Median(records.Select(r => r.EntropyNormalized)), Median(records.Select(r => r.MaxProb)),
            Median(records.Select(r => r.Eu)), Median(records.Select(r => r.Entropy / Math.Log(2))));

        private static double Median(IEnumerable<double> values)
        {
            double[] sorted = [.. values.Order()];
            return sorted[sorted.Length / 2];
        }
    }

    /// <summary>Hides the built-in behind an ordinary interface, so it runs through the trampoline.</summary>
    private sealed class ManagedOnly(IRoutingPolicy inner) : IRoutingPolicy
    {
        public RouteDecision Decide(in RouteContext context) => inner.Decide(context);

        public int EntropyWindow => inner.EntropyWindow;
    }

    private sealed class RecordingPolicy(IRoutingPolicy inner) : IRoutingPolicy
    {
        public List<RouteContext> Seen { get; } = [];

        public RouteDecision Decide(in RouteContext context)
        {
            Seen.Add(context);
            return inner.Decide(context);
        }
    }

    private sealed class CollectingPolicy : IRoutingPolicy
    {
        private readonly EntropyThresholdPolicy _inner = new(0.6f);

        public int Calls { get; private set; }

        public RouteDecision Decide(in RouteContext context)
        {
            Calls++;
            _ = new byte[1 << 16];
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            return _inner.Decide(context);
        }
    }

    private sealed class ThrowingPolicy(int failAt) : IRoutingPolicy
    {
        private int _calls;

        public RouteDecision Decide(in RouteContext context) =>
            ++_calls == failAt ? throw new PolicyFailure($"decision {_calls} failed") : RouteDecision.Keep;
    }

    private sealed class ConstantPolicy(RouteDecision decision) : IRoutingPolicy
    {
        public RouteDecision Decide(in RouteContext context) => decision;
    }

    private sealed class PolicyFailure(string message) : Exception(message);
}
