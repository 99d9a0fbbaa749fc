namespace Tandem;

/// <summary>
/// Decides, token by token, which model of a <see cref="ModelPair"/> writes (R-Stitch and EAD modes,
/// ALGORITHMS.md sections 6 and 7). The active model proposes a token; the policy keeps it or drops it and says who
/// writes next.
/// </summary>
/// <remarks>
/// The built-in policies (<see cref="EntropyThresholdPolicy"/>, <see cref="ConfidencePolicy"/>,
/// <see cref="EvidencePolicy"/>, <see cref="WindowedEntropyPolicy"/>) run inside the native core when they are used
/// in the mode they were written for, without a call into .NET per token. Any other policy is called once per
/// decision, synchronously, on the thread that runs the step, before the step returns. If <see cref="Decide"/>
/// throws, the step stops, the pair is left as it was before that decision, and the generation rethrows the same
/// exception.
/// </remarks>
public interface IRoutingPolicy
{
    /// <summary>Decides what happens to the proposal described by <paramref name="context"/>.</summary>
    RouteDecision Decide(in RouteContext context);

    /// <summary>
    /// The window, in committed tokens, of the rolling entropy mean the native loop reports as
    /// <see cref="RouteContext.WindowMeanBits"/>; EAD's w = 5 unless a policy says otherwise.
    /// </summary>
    int EntropyWindow => WindowedEntropyPolicy.DefaultWindow;
}

/// <summary>What a <see cref="IRoutingPolicy"/> does with a proposed token (<c>tdm_route_decision</c>).</summary>
public enum RouteDecision
{
    /// <summary>Commit the token; the same model writes the next one.</summary>
    Keep = 0,
    /// <summary>Commit the token; the other model writes the next one.</summary>
    KeepAndSwitch = 1,
    /// <summary>Drop the token; the other model writes this position instead.</summary>
    DiscardAndSwitch = 2,
}
