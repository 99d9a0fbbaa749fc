using Tandem.Interop;

namespace Tandem;

/// <summary>
/// What a <see cref="IRoutingPolicy"/> sees: the active model's proposal for the next position and the
/// temperature-1 statistics of the distribution it came from (<c>tdm_route_info</c>).
/// </summary>
/// <param name="Active">The model that proposed the token.</param>
/// <param name="Token">The proposed token id.</param>
/// <param name="Position">Its index in the committed sequence, prompt included.</param>
/// <param name="TokensSinceSwitch">Tokens the active model has committed since it became active (this one not
/// counted).</param>
/// <param name="WindowMeanBits">EAD's rolling mean of the entropy in bits over the last
/// <see cref="IRoutingPolicy.EntropyWindow"/> committed tokens and this proposal (the mean of those available at the
/// start).</param>
/// <param name="Stats">Entropy, max probability, LogTokU AU/EU and the top-K of the active model's distribution.</param>
public readonly record struct RouteContext(
    PairModelKind Active,
    int Token,
    long Position,
    int TokensSinceSwitch,
    double WindowMeanBits,
    TokenStats Stats)
{
    internal static RouteContext FromNative(in tdm_route_info info) => new(
        (PairModelKind)info.active,
        info.token,
        checked((long)info.position),
        checked((int)info.tokens_since_switch),
        info.window_mean_bits,
        TokenStats.FromNative(in info.stats));
}
