using NUnit.Framework;
using Tandem.Cli.Eval;

namespace Tandem.Tests.CommandLine;

/// <summary>How <c>tandem eval</c> grades answers and scores their uncertainty.</summary>
[TestFixture]
public sealed class EvalScoringTests
{
    [TestCase("\n7046-389\n16-9-0=7\n=6657\n6657+52\n=6709\nanswer=6709", "6709")]
    [TestCase("\n5+5+0=10\nanswer= 42 \n", "42")]
    [TestCase("\n=12\nanswer=12\n\n  \n", "12")]
    [TestCase("x=1=2", "2")]
    [TestCase("answer=", "")]
    public void The_answer_is_after_the_last_equals_of_the_last_non_empty_line(string generation, string expected)
    {
        Assert.That(AnswerExtraction.Extract(generation), Is.EqualTo(expected));
    }

    [TestCase("")]
    [TestCase("garbage")]
    [TestCase("a=1\nno equals here")]
    [TestCase("\n\n")]
    public void A_last_line_without_equals_has_no_answer(string generation)
    {
        Assert.That(AnswerExtraction.Extract(generation), Is.Null);
        Assert.That(AnswerExtraction.IsCorrect(generation, "1"), Is.False);
    }

    private static PairToken Token(double au, double eu, double entropy, double maxProb) =>
        new(5, PairModelKind.Small, TokenOutcome.Written, 0, entropy, entropy / Math.Log(512), maxProb, au, eu);

    [Test]
    public void Aurocs_are_1_when_every_wrong_answer_is_more_uncertain_and_null_with_one_class()
    {
        var random = TestContext.CurrentContext.Random;
        var outcomes = new List<ProblemOutcome>();
        for (int i = 0; i < 30; i++)
        {
            bool correct = i % 3 != 0;
            // Wrong answers: every token less sure (higher AU x EU, higher entropy, lower max probability).
            double level = correct ? random.NextDouble() * 0.3 : 0.5 + random.NextDouble() * 0.3;
            int length = random.Next(1, 40); // ragged, some above and some below the top-25 window
            var tokens = Enumerable.Range(0, length).Select(_ => Token(level * 0.69, level, level * 3, 1 - level)).ToArray();
            outcomes.Add(new ProblemOutcome(correct, tokens));
        }

        var aurocs = ReliabilityScores.Aurocs(outcomes);
        Assert.That(aurocs.Auroc, Is.EqualTo(1.0));
        Assert.That(aurocs.EntropyAuroc, Is.EqualTo(1.0));
        Assert.That(aurocs.MaxProbAuroc, Is.EqualTo(1.0));

        var reversed = ReliabilityScores.Aurocs([.. outcomes.Select(o => o with { Correct = !o.Correct })]);
        Assert.That(reversed.Auroc, Is.EqualTo(0.0), "wrong answers the most certain: perfectly reversed");

        var allRight = ReliabilityScores.Aurocs([.. outcomes.Select(o => o with { Correct = true })]);
        Assert.That(allRight, Is.EqualTo(new ReliabilityAurocs(null, null, null)));
    }

    [Test]
    public void The_forking_cut_is_the_entropy_of_the_least_uncertain_top_20_percent_token()
    {
        var random = TestContext.CurrentContext.Random;
        var outcomes = Enumerable.Range(0, 7).Select(_ => new ProblemOutcome(true,
            [.. Enumerable.Range(0, random.Next(1, 30)).Select(_ => Token(0.1, 0.1, random.NextDouble() * 4, 0.5))])).ToArray();
        double[] all = [.. outcomes.SelectMany(o => o.Tokens).Select(t => t.Entropy).OrderDescending()];
        int k = (int)Math.Ceiling(0.2m * all.Length);

        Assert.That(ReliabilityScores.ForkingCut(outcomes), Is.EqualTo(all[k - 1]));
        Assert.That(ReliabilityScores.ForkingCut([]), Is.Null);
    }
}
