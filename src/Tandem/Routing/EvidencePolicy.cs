using Tandem.Interop;

namespace Tandem;

/// <summary>
/// R-Stitch driven by LogTokU evidence (ALGORITHMS.md 5): a token is uncertain when its (AU, EU) falls in one of the
/// quadrants of <see cref="RouteOn"/>. The default, quadrants I and II, is "EU above <see cref="EuThreshold"/>": the
/// model lacks evidence, whatever its aleatoric uncertainty. Otherwise the rule is
/// <see cref="EntropyThresholdPolicy"/>'s.
/// </summary>
/// <remarks>
/// The EU-only rule runs inside the native core in <see cref="PairMode.RStitch"/> (<c>TDM_SIGNAL_EU</c>); a rule on
/// other quadrants needs AU too and runs as a managed callback. AU and EU use the generation's
/// <see cref="PairOptions.StatsTopK"/> (K = 2 by default, as the paper's downstream tasks do).
/// </remarks>
public sealed class EvidencePolicy : IRoutingPolicy, INativeRoutingPolicy
{
    private static readonly UncertaintyQuadrant[] HighEu = [UncertaintyQuadrant.DoesNotKnow, UncertaintyQuadrant.LacksKnowledge];

    private readonly StitchRule _rule;

    /// <summary>Routes on high EU (quadrants I and II).</summary>
    /// <param name="euThreshold">EU above which a token lacks evidence; EU is in (0, 1]. ±∞ allowed, NaN not.</param>
    /// <param name="handbackAfter">Consecutive confident large-model tokens before the small model writes again, ≥ 1.</param>
    /// <param name="maxLargeSpan">Hand back after this many large-model tokens regardless; 0 = never.</param>
    public EvidencePolicy(float euThreshold, int handbackAfter = 1, int maxLargeSpan = 0)
    {
        EuThreshold = StitchRule.RequireThreshold(euThreshold, nameof(euThreshold));
        RouteOn = new HashSet<UncertaintyQuadrant>(HighEu);
        _rule = new StitchRule(handbackAfter, maxLargeSpan);
    }

    /// <summary>Routes on the quadrants <paramref name="routeOn"/>, e.g. only I ("does not know").</summary>
    /// <param name="euThreshold">EU above which EU is high.</param>
    /// <param name="auThreshold">AU above which AU is high; with K = 2, AU is in [0, ln 2].</param>
    /// <param name="routeOn">The quadrants in which a token counts as uncertain.</param>
    /// <param name="handbackAfter">Consecutive confident large-model tokens before the small model writes again, ≥ 1.</param>
    /// <param name="maxLargeSpan">Hand back after this many large-model tokens regardless; 0 = never.</param>
    public EvidencePolicy(float euThreshold, float auThreshold, IEnumerable<UncertaintyQuadrant> routeOn,
        int handbackAfter = 1, int maxLargeSpan = 0)
    {
        ArgumentNullException.ThrowIfNull(routeOn);
        EuThreshold = StitchRule.RequireThreshold(euThreshold, nameof(euThreshold));
        AuThreshold = StitchRule.RequireThreshold(auThreshold, nameof(auThreshold));
        var quadrants = new HashSet<UncertaintyQuadrant>();
        foreach (var quadrant in routeOn)
        {
            if (!Enum.IsDefined(quadrant))
            {
                throw new ArgumentOutOfRangeException(nameof(routeOn), quadrant, "not a quadrant");
            }
            quadrants.Add(quadrant);
        }
        RouteOn = quadrants;
        _rule = new StitchRule(handbackAfter, maxLargeSpan);
    }

    /// <summary>EU above which EU is high.</summary>
    public float EuThreshold { get; }

    /// <summary>AU above which AU is high; null for the EU-only rule, which does not look at AU.</summary>
    public float? AuThreshold { get; }

    /// <summary>The quadrants in which a token counts as uncertain.</summary>
    public IReadOnlySet<UncertaintyQuadrant> RouteOn { get; }

    /// <summary>Consecutive confident large-model tokens before handing back.</summary>
    public int HandbackAfter => _rule.HandbackAfter;

    /// <summary>Large-model tokens after which it hands back regardless; 0 = never.</summary>
    public int MaxLargeSpan => _rule.MaxLargeSpan;

    private bool IsEuOnly => RouteOn.SetEquals(HighEu);

    /// <summary>Whether a distribution with these statistics is uncertain under this policy.</summary>
    public bool IsUncertain(TokenStats stats)
    {
        ArgumentNullException.ThrowIfNull(stats);
        if (IsEuOnly)
        {
            return (float)stats.Eu > EuThreshold;
        }
        return RouteOn.Contains(Quadrant.Classify((float)stats.Au, (float)stats.Eu, AuThreshold!.Value, EuThreshold));
    }

    /// <inheritdoc/>
    public RouteDecision Decide(in RouteContext context) => _rule.Decide(context, IsUncertain(context.Stats));

    bool INativeRoutingPolicy.TryDescribe(PairMode mode, out tdm_route_policy policy)
    {
        bool native = mode == PairMode.RStitch && IsEuOnly;
        policy = native ? _rule.Describe(tdm_route_signal.TDM_SIGNAL_EU, EuThreshold) : default;
        return native;
    }

    public override string ToString() => IsEuOnly
        ? $"R-Stitch, EU > {EuThreshold}"
        : $"R-Stitch, quadrants {string.Join(",", RouteOn.Order())} (AU > {AuThreshold}, EU > {EuThreshold})";
}
