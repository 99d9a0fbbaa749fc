using Tandem.Interop;

namespace Tandem;

/// <summary>
/// Entropy Adaptive Decoding (ALGORITHMS.md 7): the rolling mean of the active model's entropy in bits over the last
/// <see cref="Window"/> tokens decides. The small model writes while the mean is at most <see cref="Tau"/>; above it
/// the large model takes over for the next token (or, with <see cref="RegenerateOnSwitch"/>, for the token that
/// triggered the switch), and hands back once the mean is at most <see cref="Tau"/> again and it has written at least
/// <see cref="MinLargeTokens"/> tokens.
/// </summary>
/// <remarks>
/// In <see cref="PairMode.Ead"/> the native core runs this policy itself. τ = +∞ gives the small model's output;
/// τ = −∞ with <see cref="RegenerateOnSwitch"/> gives the large model's.
/// </remarks>
public sealed class WindowedEntropyPolicy : IRoutingPolicy, INativeRoutingPolicy
{
    /// <summary>The native default τ in bits.</summary>
    public const float DefaultTau = 1.5f;

    /// <summary>The paper's window, w = 5.</summary>
    public const int DefaultWindow = 5;

    /// <param name="tau">Threshold on the window mean, in bits; ±∞ allowed, NaN not.</param>
    /// <param name="window">Tokens in the rolling window, in [1, <see cref="PairOptions.MaxEntropyWindow"/>] (fewer at the
    /// start: the mean of those available).</param>
    /// <param name="minLargeTokens">Tokens the large model writes before it may hand back, ≥ 1.</param>
    /// <param name="regenerateOnSwitch">Drop the small token that triggered a switch and let the large model write
    /// that position.</param>
    public WindowedEntropyPolicy(float tau = DefaultTau, int window = DefaultWindow, int minLargeTokens = 1,
        bool regenerateOnSwitch = false)
    {
        Tau = StitchRule.RequireThreshold(tau, nameof(tau));
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(window, PairOptions.MaxEntropyWindow);
        ArgumentOutOfRangeException.ThrowIfLessThan(minLargeTokens, 1);
        Window = window;
        MinLargeTokens = minLargeTokens;
        RegenerateOnSwitch = regenerateOnSwitch;
    }

    /// <summary>Threshold on the window mean entropy, in bits.</summary>
    public float Tau { get; }

    /// <summary>Tokens in the rolling window.</summary>
    public int Window { get; }

    int IRoutingPolicy.EntropyWindow => Window;

    /// <summary>Tokens the large model writes before it may hand back.</summary>
    public int MinLargeTokens { get; }

    /// <summary>Whether the large model rewrites the token that triggered a switch to it.</summary>
    public bool RegenerateOnSwitch { get; }

    /// <inheritdoc/>
    public RouteDecision Decide(in RouteContext context)
    {
        bool high = (float)context.WindowMeanBits > Tau;
        if (context.Active == PairModelKind.Small)
        {
            if (!high)
            {
                return RouteDecision.Keep;
            }
            return RegenerateOnSwitch ? RouteDecision.DiscardAndSwitch : RouteDecision.KeepAndSwitch;
        }
        // TokensSinceSwitch does not count the token being decided, which is committed either way.
        return !high && context.TokensSinceSwitch + 1 >= MinLargeTokens ? RouteDecision.KeepAndSwitch : RouteDecision.Keep;
    }

    bool INativeRoutingPolicy.TryDescribe(PairMode mode, out tdm_route_policy policy)
    {
        policy = mode == PairMode.Ead ? Describe() : default;
        return mode == PairMode.Ead;
    }

    internal unsafe tdm_route_policy Describe()
    {
        tdm_route_policy policy;
        NativeMethods.tdm_route_policy_init(&policy, (int)tdm_pair_mode.TDM_MODE_EAD);
        policy.signal = (int)tdm_route_signal.TDM_SIGNAL_ENTROPY_BITS;
        policy.threshold = Tau;
        policy.window = (uint)Window;
        policy.min_large_tokens = (uint)MinLargeTokens;
        policy.regenerate_on_switch = RegenerateOnSwitch ? (byte)1 : (byte)0;
        return policy;
    }

    public override string ToString() =>
        $"EAD, mean entropy over {Window} tokens > {Tau} bits, at least {MinLargeTokens} large tokens" +
        (RegenerateOnSwitch ? ", regenerate on switch" : "");
}
