using Tandem.Interop;

namespace Tandem;

/// <summary>
/// The R-Stitch routing rule (ALGORITHMS.md 6.2) shared by the built-in threshold policies, which differ only in the
/// uncertainty signal: the small model writes; an uncertain small token is dropped and the large model writes that
/// position; the large model's tokens are always kept, and it hands back after <see cref="HandbackAfter"/>
/// consecutive confident tokens, or after <see cref="MaxLargeSpan"/> tokens regardless (0 = never).
/// </summary>
/// <remarks>
/// Counting consecutive confident tokens needs state across decisions: it lives here and restarts whenever the large
/// model becomes active (its <see cref="RouteContext.TokensSinceSwitch"/> is 0). With the default
/// <see cref="HandbackAfter"/> of 1 the rule is stateless. Run by the native core the count lives in the pair; only
/// the managed <see cref="Decide"/> (a built-in outside its mode, or called directly) uses this one, so one policy
/// object with <see cref="HandbackAfter"/> &gt; 1 should not decide for two generations at once.
/// </remarks>
internal sealed class StitchRule
{
    private int _confidentLargeTokens;

    public StitchRule(int handbackAfter, int maxLargeSpan)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(handbackAfter, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(maxLargeSpan);
        HandbackAfter = handbackAfter;
        MaxLargeSpan = maxLargeSpan;
    }

    public int HandbackAfter { get; }

    public int MaxLargeSpan { get; }

    public RouteDecision Decide(in RouteContext context, bool uncertain)
    {
        if (context.Active == PairModelKind.Small)
        {
            return uncertain ? RouteDecision.DiscardAndSwitch : RouteDecision.Keep;
        }
        if (context.TokensSinceSwitch == 0)
        {
            _confidentLargeTokens = 0;
        }
        _confidentLargeTokens = uncertain ? 0 : _confidentLargeTokens + 1;
        bool spanDone = MaxLargeSpan > 0 && context.TokensSinceSwitch + 1 >= MaxLargeSpan;
        return _confidentLargeTokens >= HandbackAfter || spanDone ? RouteDecision.KeepAndSwitch : RouteDecision.Keep;
    }

    public unsafe tdm_route_policy Describe(tdm_route_signal signal, float threshold)
    {
        tdm_route_policy policy;
        NativeMethods.tdm_route_policy_init(&policy, (int)tdm_pair_mode.TDM_MODE_RSTITCH);
        policy.signal = (int)signal;
        policy.threshold = threshold;
        policy.handback_after = (uint)HandbackAfter;
        policy.max_large_span = (uint)MaxLargeSpan;
        return policy;
    }

    internal static float RequireThreshold(float threshold, string paramName)
    {
        if (float.IsNaN(threshold))
        {
            throw new ArgumentException("the threshold is NaN", paramName);
        }
        return threshold;
    }
}
