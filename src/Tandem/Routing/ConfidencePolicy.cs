using Tandem.Interop;

namespace Tandem;

/// <summary>
/// R-Stitch with a confidence threshold (ALGORITHMS.md 6.1, paper v1): a token is uncertain when its distribution's
/// largest probability is below <see cref="Threshold"/>. Otherwise the rule is <see cref="EntropyThresholdPolicy"/>'s.
/// </summary>
/// <remarks>
/// In <see cref="PairMode.RStitch"/> the native core runs this policy itself (<c>TDM_SIGNAL_MAX_PROB</c>).
/// A threshold of 0 never routes to the large model; one above 1 always does and never hands back.
/// </remarks>
public sealed class ConfidencePolicy : IRoutingPolicy, INativeRoutingPolicy
{
    private readonly StitchRule _rule;

    /// <param name="threshold">Max probability below which a token is uncertain; ±∞ allowed, NaN not.</param>
    /// <param name="handbackAfter">Consecutive confident large-model tokens before the small model writes again, ≥ 1.</param>
    /// <param name="maxLargeSpan">Hand back after this many large-model tokens regardless; 0 = never.</param>
    public ConfidencePolicy(float threshold, int handbackAfter = 1, int maxLargeSpan = 0)
    {
        Threshold = StitchRule.RequireThreshold(threshold, nameof(threshold));
        _rule = new StitchRule(handbackAfter, maxLargeSpan);
    }

    /// <summary>Max probability below which a token is uncertain.</summary>
    public float Threshold { get; }

    /// <summary>Consecutive confident large-model tokens before handing back.</summary>
    public int HandbackAfter => _rule.HandbackAfter;

    /// <summary>Large-model tokens after which it hands back regardless; 0 = never.</summary>
    public int MaxLargeSpan => _rule.MaxLargeSpan;

    /// <summary>Whether a distribution with these statistics is uncertain under this policy.</summary>
    public bool IsUncertain(TokenStats stats) => (float)stats.MaxProb < Threshold;

    /// <inheritdoc/>
    public RouteDecision Decide(in RouteContext context) => _rule.Decide(context, IsUncertain(context.Stats));

    bool INativeRoutingPolicy.TryDescribe(PairMode mode, out tdm_route_policy policy)
    {
        policy = mode == PairMode.RStitch ? _rule.Describe(tdm_route_signal.TDM_SIGNAL_MAX_PROB, Threshold) : default;
        return mode == PairMode.RStitch;
    }

    public override string ToString() => $"R-Stitch, max probability < {Threshold}";
}
