namespace Tandem;

/// <summary>
/// High-entropy "forking" tokens (ALGORITHMS.md 8, "Beyond the 80/20 rule"): in a batch of scored sequences, the
/// top-ρ fraction of valid response tokens by entropy, the only tokens an RLVR policy-gradient update then trains on.
/// </summary>
/// <remarks>
/// As in the reference code the mask is computed across the whole batch given (one micro-batch), selecting exactly
/// max(1, ⌈ρ·N⌉) of its N valid response tokens, never a prompt or padding token. Entropies come from
/// <see cref="Session.Score(ReadOnlySpan{int}, int, CancellationToken)"/>, at temperature 1, which is the rollout
/// temperature of the paper's recipe.
/// </remarks>
public static class ForkingTokens
{
    /// <summary>The paper's ρ: the top 20% of tokens by entropy.</summary>
    public const double DefaultRho = 0.2;

    /// <summary>
    /// Scores each (prompt, response) pair with <paramref name="model"/> in one reused session: the entropy of every
    /// token's predictive distribution, the response marked as the valid part.
    /// </summary>
    /// <exception cref="ArgumentException">A prompt is empty (nothing would predict the first response token) or a
    /// response is empty.</exception>
    /// <exception cref="ContextFullException">A prompt and its response do not fit in the session.</exception>
    public static IReadOnlyList<ScoredSequence> Score(Model model,
        IEnumerable<(IReadOnlyList<int> Prompt, IReadOnlyList<int> Response)> batch,
        SessionOptions? sessionOptions = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        using var session = model.CreateSession(sessionOptions);
        var scored = new List<ScoredSequence>();
        foreach (var (prompt, response) in batch)
        {
            ArgumentNullException.ThrowIfNull(prompt);
            ArgumentNullException.ThrowIfNull(response);
            if (prompt.Count == 0 || response.Count == 0)
            {
                throw new ArgumentException(
                    $"sequence {scored.Count} has {prompt.Count} prompt and {response.Count} response tokens; both need at least one",
                    nameof(batch));
            }
            session.Truncate(0);
            int[] ids = [.. prompt, .. response];
            scored.Add(ScoredSequence.FromScores(session.Score(ids, cancellationToken: cancellationToken), prompt.Count));
        }
        return scored;
    }

    /// <summary>Selects the top-<paramref name="rho"/> valid response tokens of the batch by entropy.</summary>
    /// <param name="batch">The scored sequences (ragged lengths allowed).</param>
    /// <param name="rho">The fraction to select, in (0, 1]; 1 selects every valid token.</param>
    /// <remarks>Equal entropies are ranked by sequence, then by lower position, so the mask is deterministic.</remarks>
    public static ForkingSelection Select(IReadOnlyList<ScoredSequence> batch, double rho = DefaultRho)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var candidates = new List<(double Entropy, int Sequence, int Position)>();
        for (int s = 0; s < batch.Count; s++)
        {
            ArgumentNullException.ThrowIfNull(batch[s], nameof(batch));
            for (int t = 0; t < batch[s].Ids.Count; t++)
            {
                if (batch[s].ResponseMask[t])
                {
                    candidates.Add((batch[s].Entropies[t]!.Value, s, t));
                }
            }
        }
        int selected = SelectionSize(candidates.Count, rho);
        candidates.Sort((a, b) =>
        {
            int byEntropy = b.Entropy.CompareTo(a.Entropy);
            if (byEntropy != 0)
            {
                return byEntropy;
            }
            return a.Sequence != b.Sequence ? a.Sequence.CompareTo(b.Sequence) : a.Position.CompareTo(b.Position);
        });

        var masks = batch.Select(sequence => new bool[sequence.Ids.Count]).ToArray();
        for (int i = 0; i < selected; i++)
        {
            masks[candidates[i].Sequence][candidates[i].Position] = true;
        }
        double[] sorted = [.. candidates.Select(c => c.Entropy).Reverse()]; // ascending
        double? threshold = selected > 0 ? candidates[selected - 1].Entropy : null;
        return new ForkingSelection(rho, [.. batch], masks, sorted, threshold);
    }

    /// <summary>
    /// How many of <paramref name="validCount"/> tokens the top-<paramref name="rho"/> mask selects: max(1, ⌈ρ·N⌉),
    /// and 0 when there are none. ρ·N is computed in decimal, so that e.g. ρ = 0.7 of 10 tokens is exactly 7 (the binary
    /// product 7.000000000000001 would round up to 8).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">ρ is not in (0, 1], or the count is negative.</exception>
    public static int SelectionSize(int validCount, double rho)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(validCount);
        if (!(rho is > 0 and <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(rho), rho, "rho must be in (0, 1]");
        }
        if (validCount == 0)
        {
            return 0;
        }
        return Math.Max(1, (int)Math.Ceiling((decimal)rho * validCount));
    }

    /// <summary>
    /// The <paramref name="percent"/>-th percentile of ascending <paramref name="sorted"/> values, interpolated linearly
    /// between the two nearest ranks (NumPy's default): position (N − 1)·p/100.
    /// </summary>
    public static double Percentile(ReadOnlySpan<double> sorted, double percent)
    {
        if (sorted.IsEmpty)
        {
            throw new ArgumentException("no values", nameof(sorted));
        }
        if (!(percent is >= 0 and <= 100))
        {
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "a percentile is in [0, 100]");
        }
        double rank = (sorted.Length - 1) * percent / 100;
        int below = (int)Math.Floor(rank);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (rank - below) * (sorted[above] - sorted[below]);
    }
}
