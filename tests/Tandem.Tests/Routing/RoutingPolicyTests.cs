using NUnit.Framework;
using Tandem.Interop;

namespace Tandem.Tests.Routing;

/// <summary>
/// The built-in routing policies' managed decisions (ALGORITHMS.md 6.2, 7.2) on hand-made contexts, their native
/// descriptions, and the defaults they share with the native core. That the managed and native decisions agree on
/// real generations is checked in <see cref="RouteCallbackTests"/>.
/// </summary>
[TestFixture]
public sealed unsafe class RoutingPolicyTests
{
    [Test]
    public void EntropyThresholdPolicy_discards_an_uncertain_small_token_and_hands_back_after_a_confident_large_one()
    {
        var policy = new EntropyThresholdPolicy(0.3f);
        Assert.Multiple(() =>
        {
            Assert.That(policy.Decide(Context(PairModelKind.Small, normalized: 0.31)), Is.EqualTo(RouteDecision.DiscardAndSwitch));
            Assert.That(policy.Decide(Context(PairModelKind.Small, normalized: 0.3f)), Is.EqualTo(RouteDecision.Keep), "strictly above");
            Assert.That(policy.Decide(Context(PairModelKind.Small, normalized: 0.05)), Is.EqualTo(RouteDecision.Keep));
            Assert.That(policy.Decide(Context(PairModelKind.Large, normalized: 0.9)), Is.EqualTo(RouteDecision.Keep));
            Assert.That(policy.Decide(Context(PairModelKind.Large, normalized: 0.1, sinceSwitch: 1)), Is.EqualTo(RouteDecision.KeepAndSwitch));
        });
    }

    [Test]
    public void Infinite_thresholds_never_or_always_route_to_the_large_model()
    {
        var never = new EntropyThresholdPolicy(float.PositiveInfinity);
        var always = new EntropyThresholdPolicy(float.NegativeInfinity);
        foreach (double h in new[] { 0.0, 0.5, 1.0 })
        {
            Assert.That(never.Decide(Context(PairModelKind.Small, normalized: h)), Is.EqualTo(RouteDecision.Keep));
            Assert.That(always.Decide(Context(PairModelKind.Small, normalized: h)), Is.EqualTo(RouteDecision.DiscardAndSwitch));
            Assert.That(always.Decide(Context(PairModelKind.Large, normalized: h, sinceSwitch: 7)), Is.EqualTo(RouteDecision.Keep));
        }
    }

    [Test]
    public void HandbackAfter_counts_consecutive_confident_large_tokens_and_restarts_on_an_uncertain_one()
    {
        var policy = new EntropyThresholdPolicy(0.3f, handbackAfter: 2);
        // The large model's run: confident, uncertain, confident, confident -> hands back on the fourth.
        double[] entropies = [0.1, 0.5, 0.1, 0.1];
        var decisions = entropies.Select((h, i) => policy.Decide(Context(PairModelKind.Large, normalized: h, sinceSwitch: i))).ToArray();
        Assert.That(decisions, Is.EqualTo(new[] { RouteDecision.Keep, RouteDecision.Keep, RouteDecision.Keep, RouteDecision.KeepAndSwitch }));

        // A new large run (TokensSinceSwitch 0) starts counting afresh: one confident token is not enough.
        Assert.That(policy.Decide(Context(PairModelKind.Large, normalized: 0.1, sinceSwitch: 0)), Is.EqualTo(RouteDecision.Keep));
    }

    [Test]
    public void MaxLargeSpan_hands_back_after_that_many_large_tokens_however_uncertain()
    {
        var policy = new EntropyThresholdPolicy(0.3f, maxLargeSpan: 3);
        Assert.That(policy.Decide(Context(PairModelKind.Large, normalized: 0.9, sinceSwitch: 1)), Is.EqualTo(RouteDecision.Keep));
        Assert.That(policy.Decide(Context(PairModelKind.Large, normalized: 0.9, sinceSwitch: 2)), Is.EqualTo(RouteDecision.KeepAndSwitch));
    }

    [Test]
    public void ConfidencePolicy_routes_when_the_max_probability_is_below_the_threshold()
    {
        var policy = new ConfidencePolicy(0.5f);
        Assert.That(policy.Decide(Context(PairModelKind.Small, maxProb: 0.49)), Is.EqualTo(RouteDecision.DiscardAndSwitch));
        Assert.That(policy.Decide(Context(PairModelKind.Small, maxProb: 0.5f)), Is.EqualTo(RouteDecision.Keep));
        Assert.That(policy.Decide(Context(PairModelKind.Large, maxProb: 0.3)), Is.EqualTo(RouteDecision.Keep));
        Assert.That(policy.Decide(Context(PairModelKind.Large, maxProb: 0.9)), Is.EqualTo(RouteDecision.KeepAndSwitch));
    }

    [Test]
    public void EvidencePolicy_by_default_routes_on_high_EU_whatever_the_AU()
    {
        var policy = new EvidencePolicy(0.1f);
        Assert.That(policy.RouteOn, Is.EquivalentTo(new[] { UncertaintyQuadrant.DoesNotKnow, UncertaintyQuadrant.LacksKnowledge }));
        Assert.That(policy.AuThreshold, Is.Null);
        foreach (double au in new[] { 0.0, 0.3, 0.69 })
        {
            Assert.That(policy.Decide(Context(PairModelKind.Small, au: au, eu: 0.2)), Is.EqualTo(RouteDecision.DiscardAndSwitch));
            Assert.That(policy.Decide(Context(PairModelKind.Small, au: au, eu: 0.05)), Is.EqualTo(RouteDecision.Keep));
        }
    }

    [Test]
    public void EvidencePolicy_on_chosen_quadrants_looks_at_AU_too()
    {
        // Only quadrant I ("I do not know": high AU and high EU) routes; II (one suggested answer) does not.
        var policy = new EvidencePolicy(euThreshold: 0.1f, auThreshold: 0.3f, routeOn: [UncertaintyQuadrant.DoesNotKnow]);
        Assert.That(policy.Decide(Context(PairModelKind.Small, au: 0.5, eu: 0.2)), Is.EqualTo(RouteDecision.DiscardAndSwitch));
        Assert.That(policy.Decide(Context(PairModelKind.Small, au: 0.1, eu: 0.2)), Is.EqualTo(RouteDecision.Keep));
        Assert.That(policy.Decide(Context(PairModelKind.Small, au: 0.5, eu: 0.05)), Is.EqualTo(RouteDecision.Keep));
    }

    [TestCase(0.5, 0.2, UncertaintyQuadrant.DoesNotKnow)]
    [TestCase(0.1, 0.2, UncertaintyQuadrant.LacksKnowledge)]
    [TestCase(0.1, 0.05, UncertaintyQuadrant.Sure)]
    [TestCase(0.5, 0.05, UncertaintyQuadrant.SeveralAnswers)]
    [TestCase(0.3, 0.1, UncertaintyQuadrant.Sure)] // on both thresholds: high means strictly above
    public void Quadrant_classifies_AU_and_EU_against_their_thresholds(double au, double eu, UncertaintyQuadrant expected)
    {
        Assert.That(Quadrant.Classify(au, eu, auThreshold: 0.3, euThreshold: 0.1), Is.EqualTo(expected));
        Assert.That((int)expected, Is.InRange(1, 4));
        Assert.That(Quadrant.HasHighEu(expected), Is.EqualTo(eu > 0.1));
    }

    [Test]
    public void Quadrant_rejects_NaN()
    {
        Assert.Throws<ArgumentException>(() => Quadrant.Classify(double.NaN, 0.1, 0.3, 0.1));
        Assert.Throws<ArgumentException>(() => Quadrant.Classify(0.1, 0.1, 0.3, double.NaN));
    }

    [Test]
    public void WindowedEntropyPolicy_switches_on_the_window_mean_and_holds_the_large_model_for_MinLargeTokens()
    {
        var policy = new WindowedEntropyPolicy(tau: 1.5f, minLargeTokens: 3);
        var regenerating = new WindowedEntropyPolicy(tau: 1.5f, regenerateOnSwitch: true);
        Assert.Multiple(() =>
        {
            Assert.That(policy.Decide(Context(PairModelKind.Small, windowBits: 1.6)), Is.EqualTo(RouteDecision.KeepAndSwitch));
            Assert.That(regenerating.Decide(Context(PairModelKind.Small, windowBits: 1.6)), Is.EqualTo(RouteDecision.DiscardAndSwitch));
            Assert.That(policy.Decide(Context(PairModelKind.Small, windowBits: 1.5f)), Is.EqualTo(RouteDecision.Keep));
            // The window mean decides, not this token's own entropy.
            Assert.That(policy.Decide(Context(PairModelKind.Small, normalized: 1, windowBits: 0.2)), Is.EqualTo(RouteDecision.Keep));
            Assert.That(policy.Decide(Context(PairModelKind.Large, windowBits: 1.0, sinceSwitch: 1)), Is.EqualTo(RouteDecision.Keep));
            Assert.That(policy.Decide(Context(PairModelKind.Large, windowBits: 1.0, sinceSwitch: 2)), Is.EqualTo(RouteDecision.KeepAndSwitch));
            Assert.That(policy.Decide(Context(PairModelKind.Large, windowBits: 1.7, sinceSwitch: 9)), Is.EqualTo(RouteDecision.Keep));
        });
    }

    [Test]
    public void Policies_reject_a_NaN_threshold_and_out_of_range_counts()
    {
        Assert.Throws<ArgumentException>(() => new EntropyThresholdPolicy(float.NaN));
        Assert.Throws<ArgumentException>(() => new ConfidencePolicy(float.NaN));
        Assert.Throws<ArgumentException>(() => new EvidencePolicy(float.NaN));
        Assert.Throws<ArgumentException>(() => new WindowedEntropyPolicy(float.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => new EntropyThresholdPolicy(0.3f, handbackAfter: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ConfidencePolicy(0.3f, maxLargeSpan: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WindowedEntropyPolicy(window: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WindowedEntropyPolicy(minLargeTokens: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new EvidencePolicy(0.1f, 0.3f, [(UncertaintyQuadrant)7]));
    }

    [Test]
    public void Built_ins_describe_themselves_to_the_native_core_in_their_own_mode_only()
    {
        Assert.Multiple(() =>
        {
            var entropy = Describe(new EntropyThresholdPolicy(0.25f, handbackAfter: 3, maxLargeSpan: 9), PairMode.RStitch)!.Value;
            Assert.That(entropy.signal, Is.EqualTo((int)tdm_route_signal.TDM_SIGNAL_ENTROPY_NORMALIZED));
            Assert.That(entropy.threshold, Is.EqualTo(0.25f));
            Assert.That(entropy.handback_after, Is.EqualTo(3u));
            Assert.That(entropy.max_large_span, Is.EqualTo(9u));
            Assert.That(entropy.struct_size, Is.EqualTo((uint)sizeof(tdm_route_policy)));

            var confidence = Describe(new ConfidencePolicy(0.6f), PairMode.RStitch)!.Value;
            Assert.That(confidence.signal, Is.EqualTo((int)tdm_route_signal.TDM_SIGNAL_MAX_PROB));
            Assert.That(confidence.threshold, Is.EqualTo(0.6f));

            var evidence = Describe(new EvidencePolicy(0.07f), PairMode.RStitch)!.Value;
            Assert.That(evidence.signal, Is.EqualTo((int)tdm_route_signal.TDM_SIGNAL_EU));
            Assert.That(evidence.threshold, Is.EqualTo(0.07f));

            var ead = Describe(new WindowedEntropyPolicy(2.5f, window: 7, minLargeTokens: 4, regenerateOnSwitch: true), PairMode.Ead)!.Value;
            Assert.That(ead.signal, Is.EqualTo((int)tdm_route_signal.TDM_SIGNAL_ENTROPY_BITS));
            Assert.That(ead.threshold, Is.EqualTo(2.5f));
            Assert.That(ead.window, Is.EqualTo(7u));
            Assert.That(ead.min_large_tokens, Is.EqualTo(4u));
            Assert.That(ead.regenerate_on_switch, Is.EqualTo(1));

            // Outside their mode, or a quadrant rule the native signals cannot express: the managed Decide runs.
            Assert.That(Describe(new EntropyThresholdPolicy(), PairMode.Ead), Is.Null);
            Assert.That(Describe(new WindowedEntropyPolicy(), PairMode.RStitch), Is.Null);
            Assert.That(Describe(new EvidencePolicy(0.1f, 0.3f, [UncertaintyQuadrant.DoesNotKnow]), PairMode.RStitch), Is.Null);
        });
    }

    [Test]
    public void Default_thresholds_are_the_native_defaults()
    {
        tdm_route_policy stitch, ead;
        NativeMethods.tdm_route_policy_init(&stitch, (int)tdm_pair_mode.TDM_MODE_RSTITCH);
        NativeMethods.tdm_route_policy_init(&ead, (int)tdm_pair_mode.TDM_MODE_EAD);

        var entropy = new EntropyThresholdPolicy();
        Assert.That(stitch.signal, Is.EqualTo((int)tdm_route_signal.TDM_SIGNAL_ENTROPY_NORMALIZED));
        Assert.That(entropy.Threshold, Is.EqualTo(stitch.threshold));
        Assert.That((uint)entropy.HandbackAfter, Is.EqualTo(stitch.handback_after));
        Assert.That((uint)entropy.MaxLargeSpan, Is.EqualTo(stitch.max_large_span));

        var windowed = new WindowedEntropyPolicy();
        Assert.That(windowed.Tau, Is.EqualTo(ead.threshold));
        Assert.That((uint)windowed.Window, Is.EqualTo(ead.window));
        Assert.That((uint)windowed.MinLargeTokens, Is.EqualTo(ead.min_large_tokens));
        Assert.That(windowed.RegenerateOnSwitch ? 1 : 0, Is.EqualTo(ead.regenerate_on_switch));
    }

    private static tdm_route_policy? Describe(INativeRoutingPolicy policy, PairMode mode) =>
        policy.TryDescribe(mode, out var native) ? native : null;

    /// <summary>A proposal whose statistics carry the given values (the rest are irrelevant to the policies).</summary>
    internal static RouteContext Context(PairModelKind active, double normalized = 0.1, double maxProb = 0.9, double au = 0.1,
        double eu = 0.01, double windowBits = 0.5, int sinceSwitch = 0)
    {
        var stats = new TokenStats(normalized * Math.Log(512), normalized * Math.Log(512) / Math.Log(2), normalized, maxProb,
            LogSumExp: 3, au, eu, [7, 3], [12f, 11f], [(float)maxProb, 0.05f]);
        return new RouteContext(active, Token: 7, Position: 20, sinceSwitch, windowBits, stats);
    }
}
