using Tandem.Interop;

namespace Tandem;

/// <summary>
/// A built-in policy that the native core can run itself from a <c>tdm_route_policy</c>, so that a generation needs
/// no call into .NET per token. Internal: only the built-ins, whose managed <see cref="IRoutingPolicy.Decide"/>
/// makes the same decisions, may claim it.
/// </summary>
internal interface INativeRoutingPolicy : IRoutingPolicy
{
    /// <summary>
    /// Describes the policy for <paramref name="mode"/>'s native loop; false when that loop cannot express it (then
    /// the managed <see cref="IRoutingPolicy.Decide"/> runs through the callback instead).
    /// </summary>
    bool TryDescribe(PairMode mode, out tdm_route_policy policy);
}
