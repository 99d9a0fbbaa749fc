using Tandem.Interop;

namespace Tandem;

/// <summary>Run statistics of a <see cref="PairGeneration"/> (<c>tdm_pair_stats</c>), the prompt's prefill included.</summary>
/// <param name="TokensSmall">Committed tokens written by the small model.</param>
/// <param name="TokensLarge">Committed tokens written by the large model.</param>
/// <param name="Drafted">Speculative: draft tokens proposed.</param>
/// <param name="Accepted">Speculative: draft tokens accepted.</param>
/// <param name="Verifications">Speculative: verification passes of the large model.</param>
/// <param name="MeanAccepted">Speculative: accepted drafts per verification.</param>
/// <param name="Discarded">Routing: proposals dropped.</param>
/// <param name="Switches">Routing: changes of the writing model.</param>
/// <param name="ForwardsSmall">Forward passes (prefill, catch-up, decode) of the small model.</param>
/// <param name="ForwardsLarge">Forward passes of the large model.</param>
/// <param name="SecondsSmall">Wall time in the small model's forward passes.</param>
/// <param name="SecondsLarge">Wall time in the large model's forward passes.</param>
/// <param name="SecondsTotal">Wall time of the whole generation.</param>
public sealed record PairStats(
    long TokensSmall,
    long TokensLarge,
    long Drafted,
    long Accepted,
    long Verifications,
    double MeanAccepted,
    long Discarded,
    long Switches,
    long ForwardsSmall,
    long ForwardsLarge,
    double SecondsSmall,
    double SecondsLarge,
    double SecondsTotal)
{
    /// <summary>Committed tokens, both models.</summary>
    public long Tokens => TokensSmall + TokensLarge;

    /// <summary>The fraction of committed tokens the large model wrote; null before any token.</summary>
    public double? LargeShare => Tokens > 0 ? (double)TokensLarge / Tokens : null;

    /// <summary>Speculative: the fraction of drafts accepted; null when nothing was drafted.</summary>
    public double? AcceptanceRate => Drafted > 0 ? (double)Accepted / Drafted : null;

    /// <summary>Committed tokens per second of <see cref="SecondsTotal"/>; null before any time passed.</summary>
    public double? TokensPerSecond => SecondsTotal > 0 ? Tokens / SecondsTotal : null;

    internal static PairStats FromNative(in tdm_pair_stats s) => new(
        checked((long)s.tokens_small), checked((long)s.tokens_large), checked((long)s.drafted), checked((long)s.accepted),
        checked((long)s.verifications), s.mean_accepted, checked((long)s.discarded), checked((long)s.switches),
        checked((long)s.forwards_small), checked((long)s.forwards_large), s.seconds_small, s.seconds_large, s.seconds_total);
}
