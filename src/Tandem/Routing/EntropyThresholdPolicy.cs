using Tandem.Interop;

namespace Tandem;

/// <summary>
/// R-Stitch with normalized entropy (ALGORITHMS.md 6.1, paper v4/v5): a token is uncertain when H / ln V is above
/// <see cref="Threshold"/>. The small model writes; an uncertain small token is dropped and the large model writes
/// that position; it hands back once it is confident again.
/// </summary>
/// <remarks>
/// In <see cref="PairMode.RStitch"/> the native core runs this policy itself (<c>TDM_SIGNAL_ENTROPY_NORMALIZED</c>).
/// +∞ never routes to the large model (small model only); −∞ always does and never hands back (large model only).
/// </remarks>
public sealed class EntropyThresholdPolicy : IRoutingPolicy, INativeRoutingPolicy
{
    /// <summary>The native default threshold of R-Stitch (normalized entropy).</summary>
    public const float DefaultThreshold = 0.3f;

    private readonly StitchRule _rule;

    /// <param name="threshold">Normalized entropy in [0, 1] above which a token is uncertain; ±∞ allowed, NaN not.</param>
    /// <param name="handbackAfter">Consecutive confident large-model tokens before the small model writes again, ≥ 1.</param>
    /// <param name="maxLargeSpan">Hand back after this many large-model tokens regardless; 0 = never.</param>
    public EntropyThresholdPolicy(float threshold = DefaultThreshold, int handbackAfter = 1, int maxLargeSpan = 0)
    {
        Threshold = StitchRule.RequireThreshold(threshold, nameof(threshold));
        _rule = new StitchRule(handbackAfter, maxLargeSpan);
    }

    /// <summary>Normalized entropy above which a token is uncertain.</summary>
    public float Threshold { get; }

    /// <summary>Consecutive confident large-model tokens before handing back.</summary>
    public int HandbackAfter => _rule.HandbackAfter;

    /// <summary>Large-model tokens after which it hands back regardless; 0 = never.</summary>
    public int MaxLargeSpan => _rule.MaxLargeSpan;

    /// <summary>Whether a distribution with these statistics is uncertain under this policy.</summary>
    public bool IsUncertain(TokenStats stats) => (float)stats.EntropyNormalized > Threshold;

    /// <inheritdoc/>
    public RouteDecision Decide(in RouteContext context) => _rule.Decide(context, IsUncertain(context.Stats));

    bool INativeRoutingPolicy.TryDescribe(PairMode mode, out tdm_route_policy policy)
    {
        policy = mode == PairMode.RStitch ? _rule.Describe(tdm_route_signal.TDM_SIGNAL_ENTROPY_NORMALIZED, Threshold) : default;
        return mode == PairMode.RStitch;
    }

    public override string ToString() => $"R-Stitch, normalized entropy > {Threshold}";
}
