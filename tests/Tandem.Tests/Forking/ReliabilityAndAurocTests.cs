using NUnit.Framework;

namespace Tandem.Tests.Forking;

/// <summary>LogTokU response reliability (ALGORITHMS.md 5.2) and the AUROC the eval command reports it with.</summary>
[TestFixture]
public sealed class ReliabilityAndAurocTests
{
    [Test]
    public void Reliability_is_minus_the_mean_of_all_AU_times_EU_for_a_short_response()
    {
        double[] au = [0.5, 0.2, 0.6];
        double[] eu = [0.1, 0.4, 0.05];
        // u = 0.05, 0.08, 0.03 -> mean 0.05333...
        Assert.That(ResponseReliability.Compute(au, eu), Is.EqualTo(-(0.05 + 0.08 + 0.03) / 3).Within(1e-15));
    }

    [Test]
    public void Reliability_averages_the_25_largest_products_of_a_long_response_like_a_full_sort()
    {
        var random = new Random(5);
        foreach (int length in new[] { 1, 24, 25, 26, 60, 301 })
        {
            double[] au = [.. Enumerable.Range(0, length).Select(_ => random.NextDouble() * Math.Log(2))];
            double[] eu = [.. Enumerable.Range(0, length).Select(_ => random.NextDouble())];
            double expected = -au.Zip(eu, (a, e) => a * e).OrderDescending().Take(25).Average();
            Assert.That(ResponseReliability.Compute(au, eu), Is.EqualTo(expected).Within(1e-14), $"{length} tokens");
        }
    }

    [Test]
    public void Reliability_of_pair_tokens_counts_committed_ones_only()
    {
        PairToken Token(TokenOutcome outcome, double au, double eu) =>
            new(3, PairModelKind.Small, outcome, 10, 1, 0.2, 0.5, au, eu);
        PairToken[] tokens =
        [
            Token(TokenOutcome.Accepted, 0.5, 0.1), Token(TokenOutcome.Rejected, 0.7, 0.9),
            Token(TokenOutcome.Corrected, 0.2, 0.2), Token(TokenOutcome.Discarded, 0.6, 0.8),
        ];
        Assert.That(ResponseReliability.Compute(tokens), Is.EqualTo(-(0.05 + 0.04) / 2).Within(1e-15));
        Assert.Throws<ArgumentException>(() => ResponseReliability.Compute(ReadOnlySpan<double>.Empty, ReadOnlySpan<double>.Empty));
        Assert.Throws<ArgumentException>(() => ResponseReliability.Compute([0.1], [0.1, 0.2]));
    }

    [Test]
    public void Auroc_matches_a_hand_count_with_tied_scores()
    {
        // Positives 0.9, 0.5, 0.5; negatives 0.5, 0.2. Pairs (pos > neg): 0.9 beats both (2), each 0.5 beats 0.2 (1 + 1)
        // and ties 0.5 (0.5 + 0.5): (2 + 1.5 + 1.5) / 6.
        double[] scores = [0.9, 0.5, 0.5, 0.5, 0.2];
        bool[] positive = [true, true, false, true, false];
        Assert.That(Auroc.Compute(scores, positive), Is.EqualTo(5.0 / 6).Within(1e-15));
    }

    [Test]
    public void Auroc_is_one_for_a_perfect_ranking_zero_reversed_and_one_half_for_all_ties()
    {
        Assert.That(Auroc.Compute([3, 2, 1, 0], [true, true, false, false]), Is.EqualTo(1.0));
        Assert.That(Auroc.Compute([0, 1, 2, 3], [true, true, false, false]), Is.EqualTo(0.0));
        Assert.That(Auroc.Compute([1, 1, 1], [true, false, true]), Is.EqualTo(0.5));
    }

    [Test]
    public void Auroc_equals_the_pairwise_definition_on_random_scores()
    {
        var random = new Random(99);
        for (int trial = 0; trial < 20; trial++)
        {
            int n = random.Next(2, 80);
            double[] scores = [.. Enumerable.Range(0, n).Select(_ => (double)random.Next(10))]; // many ties
            bool[] labels = [.. Enumerable.Range(0, n).Select(i => i == 0 || (i != 1 && random.Next(2) == 0))];
            double wins = 0;
            int pairs = 0;
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    if (labels[i] && !labels[j])
                    {
                        pairs++;
                        wins += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
                    }
                }
            }
            Assert.That(Auroc.Compute(scores, labels), Is.EqualTo(wins / pairs).Within(1e-12));
        }
    }

    [Test]
    public void Auroc_needs_both_classes_and_numbers()
    {
        Assert.Throws<ArgumentException>(() => Auroc.Compute([1, 2], [true, true]));
        Assert.Throws<ArgumentException>(() => Auroc.Compute([1, double.NaN], [true, false]));
        Assert.Throws<ArgumentException>(() => Auroc.Compute([1, 2], [true]));
    }
}
