namespace Tandem;

/// <summary>
/// One sequence of a batch, scored token by token: its ids, the entropy (nats, temperature 1) of the distribution that
/// predicted each one, and which tokens are response tokens. Prompt and padding tokens are not response tokens and are
/// never selected as forking tokens.
/// </summary>
public sealed class ScoredSequence
{
    /// <param name="ids">The token ids, prompt (and any padding) included.</param>
    /// <param name="entropies">One per id; null where nothing predicted the token (the first token of a sequence).</param>
    /// <param name="responseMask">One per id: true for a valid response token, whose entropy must be a finite number.</param>
    /// <exception cref="ArgumentException">Lengths differ, or a response token has no finite entropy.</exception>
    public ScoredSequence(IReadOnlyList<int> ids, IReadOnlyList<double?> entropies, IReadOnlyList<bool> responseMask)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(entropies);
        ArgumentNullException.ThrowIfNull(responseMask);
        if (entropies.Count != ids.Count || responseMask.Count != ids.Count)
        {
            throw new ArgumentException(
                $"{ids.Count} ids, {entropies.Count} entropies and {responseMask.Count} mask values: one of each per token");
        }
        for (int i = 0; i < ids.Count; i++)
        {
            if (responseMask[i] && !(entropies[i] is double h && double.IsFinite(h)))
            {
                throw new ArgumentException($"response token {i} has no finite entropy ({entropies[i]?.ToString() ?? "null"})",
                    nameof(entropies));
            }
        }
        Ids = [.. ids];
        Entropies = [.. entropies];
        ResponseMask = [.. responseMask];
        ResponseCount = ResponseMask.Count(valid => valid);
    }

    /// <summary>The token ids.</summary>
    public IReadOnlyList<int> Ids { get; }

    /// <summary>The entropy of the distribution that predicted each token; null where undefined.</summary>
    public IReadOnlyList<double?> Entropies { get; }

    /// <summary>True for the valid response tokens.</summary>
    public IReadOnlyList<bool> ResponseMask { get; }

    /// <summary>How many valid response tokens the sequence has.</summary>
    public int ResponseCount { get; }

    /// <summary>
    /// A prompt followed by a response, from the <see cref="ScoredToken"/>s of
    /// <see cref="Session.Score(ReadOnlySpan{int}, int, CancellationToken)"/> over both: the last
    /// <c>tokens.Count - promptLength</c> tokens are the response.
    /// </summary>
    public static ScoredSequence FromScores(IReadOnlyList<ScoredToken> tokens, int promptLength)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentOutOfRangeException.ThrowIfNegative(promptLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(promptLength, tokens.Count);
        return new ScoredSequence(
            tokens.Select(t => t.Id).ToArray(),
            tokens.Select(t => t.Entropy).ToArray(),
            tokens.Select((_, i) => i >= promptLength).ToArray());
    }
}
