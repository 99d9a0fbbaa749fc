namespace Tandem.Cli.Eval;

/// <summary>
/// Response-level uncertainty of the answers a method gave: how well LogTokU reliability (ALGORITHMS.md 5.2) and the
/// entropy and max-probability baselines rank wrong answers above right ones, and the forking-token entropy cut.
/// </summary>
/// <remarks>
/// Each score is an uncertainty (higher = more likely wrong), computed over an answer's committed tokens from the
/// temperature-1 distributions that produced them: LogTokU, −reliability = the mean of the top-25 AU × EU; entropy,
/// the mean token entropy; max probability, 1 − the mean largest probability. The AUROC is that of "the answer is
/// wrong", so 0.5 is chance and 1 a perfect ranking; it is the same number as the AUROC of reliability for
/// correctness.
/// </remarks>
internal static class ReliabilityScores
{
    public static ReliabilityAurocs Aurocs(IReadOnlyList<ProblemOutcome> outcomes)
    {
        var answered = outcomes.Where(o => o.Tokens.Count > 0).ToArray();
        bool[] wrong = [.. answered.Select(o => !o.Correct)];
        double? Of(Func<IReadOnlyList<PairToken>, double> uncertainty)
        {
            if (wrong.All(w => w) || wrong.All(w => !w))
            {
                return null; // undefined without both right and wrong answers
            }
            return Auroc.Compute([.. answered.Select(o => uncertainty(o.Tokens))], wrong);
        }
        return new ReliabilityAurocs(
            Auroc: Of(tokens => -ResponseReliability.Compute(tokens)),
            EntropyAuroc: Of(tokens => tokens.Average(t => t.Entropy)),
            MaxProbAuroc: Of(tokens => 1 - tokens.Average(t => t.MaxProb)));
    }

    /// <summary>
    /// The entropy (nats) of the least uncertain of the top-20% tokens over all answers, as the forking-token mask of
    /// <see cref="ForkingTokens.Select"/> draws it; null when there are no tokens.
    /// </summary>
    public static double? ForkingCut(IReadOnlyList<ProblemOutcome> outcomes)
    {
        var batch = outcomes.Where(o => o.Tokens.Count > 0).Select(o => new ScoredSequence(
            [.. o.Tokens.Select(t => t.Token)], [.. o.Tokens.Select(t => (double?)t.Entropy)], [.. o.Tokens.Select(_ => true)])).ToArray();
        return ForkingTokens.Select(batch, ForkingTokens.DefaultRho).Threshold;
    }
}
