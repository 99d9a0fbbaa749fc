namespace Tandem;

/// <summary>What happened to a token a <see cref="ModelPair"/> proposed (<c>tdm_token_outcome</c>).</summary>
public enum TokenOutcome
{
    /// <summary>Committed, written by a single model (Large, Small, R-Stitch, EAD).</summary>
    Written = 0,
    /// <summary>Speculative: a draft token the large model accepted (committed).</summary>
    Accepted = 1,
    /// <summary>Speculative: a draft token the large model rejected (not committed).</summary>
    Rejected = 2,
    /// <summary>Speculative: the large model's token after a rejection (committed).</summary>
    Corrected = 3,
    /// <summary>Speculative: the large model's free token after a fully accepted draft (committed).</summary>
    Bonus = 4,
    /// <summary>Routing: a proposal the policy dropped (not committed).</summary>
    Discarded = 5,
}

/// <summary>
/// One token a <see cref="ModelPair"/> proposed or wrote, with the temperature-1 statistics of the distribution that
/// produced it (<c>tdm_token_record</c>). Rejected and discarded proposals are reported too, in order.
/// </summary>
/// <param name="Token">The token id.</param>
/// <param name="Model">The model that proposed or wrote it.</param>
/// <param name="Outcome">What happened to it.</param>
/// <param name="Position">Its index in the sequence (prompt included) it was proposed for.</param>
/// <param name="Entropy">Entropy in nats.</param>
/// <param name="EntropyNormalized">Entropy / ln V, in [0, 1].</param>
/// <param name="MaxProb">The largest probability.</param>
/// <param name="Au">LogTokU aleatoric uncertainty (K = <see cref="PairOptions.StatsTopK"/>).</param>
/// <param name="Eu">LogTokU epistemic uncertainty.</param>
public readonly record struct PairToken(
    int Token,
    PairModelKind Model,
    TokenOutcome Outcome,
    long Position,
    double Entropy,
    double EntropyNormalized,
    double MaxProb,
    double Au,
    double Eu)
{
    /// <summary>Whether the token is part of the output (written, accepted, corrected or bonus).</summary>
    public bool Committed => Outcome is not (TokenOutcome.Rejected or TokenOutcome.Discarded);
}
