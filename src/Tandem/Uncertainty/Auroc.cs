namespace Tandem;

/// <summary>The area under the ROC curve of a score that should rank positives above negatives.</summary>
public static class Auroc
{
    /// <summary>
    /// P(score of a random positive &gt; score of a random negative) + ½ P(equal scores): the Mann–Whitney U statistic
    /// from ranks, tied scores sharing their average rank. 1 = perfect, 0.5 = chance, 0 = perfectly reversed.
    /// </summary>
    /// <param name="scores">One score per example; no NaN.</param>
    /// <param name="positives">Whether each example is positive (e.g. "the answer is wrong").</param>
    /// <exception cref="ArgumentException">Unequal lengths, a NaN score, or no positive or no negative example.</exception>
    public static double Compute(IReadOnlyList<double> scores, IReadOnlyList<bool> positives)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(positives);
        if (scores.Count != positives.Count)
        {
            throw new ArgumentException($"{scores.Count} scores but {positives.Count} labels", nameof(positives));
        }
        int n = scores.Count;
        var order = new int[n];
        for (int i = 0; i < n; i++)
        {
            if (double.IsNaN(scores[i]))
            {
                throw new ArgumentException($"score {i} is NaN", nameof(scores));
            }
            order[i] = i;
        }
        Array.Sort(order, (a, b) => scores[a].CompareTo(scores[b]));

        // Sum of the (1-based, tie-averaged) ranks of the positives.
        double positiveRankSum = 0;
        long positiveCount = 0;
        for (int start = 0; start < n;)
        {
            int end = start;
            while (end + 1 < n && scores[order[end + 1]] == scores[order[start]])
            {
                end++;
            }
            double averageRank = (start + end) / 2.0 + 1;
            for (int i = start; i <= end; i++)
            {
                if (positives[order[i]])
                {
                    positiveRankSum += averageRank;
                    positiveCount++;
                }
            }
            start = end + 1;
        }
        long negativeCount = n - positiveCount;
        if (positiveCount == 0 || negativeCount == 0)
        {
            throw new ArgumentException($"AUROC needs positive and negative examples; got {positiveCount} and {negativeCount}",
                nameof(positives));
        }
        double u = positiveRankSum - positiveCount * (positiveCount + 1) / 2.0;
        return u / ((double)positiveCount * negativeCount);
    }
}
