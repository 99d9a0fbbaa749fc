using System.Text.Json.Nodes;
using NUnit.Framework;
using Tandem.Tests.Support;

namespace Tandem.Tests.Forking;

/// <summary>
/// The top-ρ forking-token mask (ALGORITHMS.md 8.4 test 1): exact counts on random ragged batches, never prompt or
/// padding, ρ = 1 selects everything, deterministic ties; the entropy percentiles against a hand computation; the
/// JSONL a trainer reads; scoring with a model.
/// </summary>
[TestFixture]
public sealed class ForkingTokensTests
{
    [Test]
    public void The_mask_selects_exactly_ceil_rho_N_of_the_valid_response_tokens_and_the_highest_ones()
    {
        var random = new Random(20250601);
        foreach (double rho in new[] { 0.2, 0.05, 0.5, 0.7, 0.999, 1.0 })
        {
            for (int trial = 0; trial < 20; trial++)
            {
                var batch = RandomBatch(random, sequences: random.Next(1, 7));
                var selection = ForkingTokens.Select(batch, rho);
                int valid = batch.Sum(s => s.ResponseCount);
                int expected = valid == 0 ? 0 : Math.Max(1, (int)Math.Ceiling(Math.Round(rho * valid, 9)));

                Assert.That(selection.ValidCount, Is.EqualTo(valid));
                Assert.That(selection.SelectedCount, Is.EqualTo(expected), $"rho {rho}, {valid} valid tokens");
                Assert.That(selection.Masks.Sum(m => m.Count(x => x)), Is.EqualTo(expected));
                double lowestSelected = double.PositiveInfinity, highestUnselected = double.NegativeInfinity;
                for (int s = 0; s < batch.Count; s++)
                {
                    Assert.That(selection.Masks[s], Has.Count.EqualTo(batch[s].Ids.Count));
                    for (int t = 0; t < batch[s].Ids.Count; t++)
                    {
                        if (selection.Masks[s][t])
                        {
                            Assert.That(batch[s].ResponseMask[t], "a prompt or padding token was selected");
                            lowestSelected = Math.Min(lowestSelected, batch[s].Entropies[t]!.Value);
                        }
                        else if (batch[s].ResponseMask[t])
                        {
                            highestUnselected = Math.Max(highestUnselected, batch[s].Entropies[t]!.Value);
                        }
                    }
                }
                Assert.That(lowestSelected, Is.GreaterThanOrEqualTo(highestUnselected), "the selected tokens are the top ones");
                if (expected > 0)
                {
                    Assert.That(selection.Threshold, Is.EqualTo(lowestSelected));
                }
                if (rho == 1.0)
                {
                    Assert.That(expected, Is.EqualTo(valid), "rho = 1 selects every valid token");
                }
            }
        }
    }

    [TestCase(10, 0.7, 7)] // 0.7 * 10 is 7.000000000000001 in binary floating point
    [TestCase(5, 0.2, 1)]
    [TestCase(6, 0.2, 2)]
    [TestCase(3, 0.01, 1)] // never fewer than one
    [TestCase(100, 0.3, 30)]
    [TestCase(7, 1.0, 7)]
    [TestCase(0, 0.2, 0)]
    public void SelectionSize_is_exactly_max_1_ceil_rho_N(int valid, double rho, int expected) =>
        Assert.That(ForkingTokens.SelectionSize(valid, rho), Is.EqualTo(expected));

    [TestCase(0.0)]
    [TestCase(-0.1)]
    [TestCase(1.01)]
    [TestCase(double.NaN)]
    public void Rho_outside_0_1_is_rejected(double rho) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => ForkingTokens.Select([], rho));

    [Test]
    public void Ties_are_broken_by_sequence_then_by_lower_position()
    {
        // Four response tokens of equal entropy in two sequences; half of them: the first sequence's, lower first.
        var a = new ScoredSequence([5, 6, 7, 8], [null, 1.0, 2.0, 2.0], [false, false, true, true]);
        var b = new ScoredSequence([5, 9, 9], [null, 2.0, 2.0], [false, true, true]);
        var selection = ForkingTokens.Select([b, a], rho: 0.5);
        Assert.That(selection.Masks[0], Is.EqualTo(new[] { false, true, true }));
        Assert.That(selection.Masks[1], Is.EqualTo(new[] { false, false, false, false }));

        selection = ForkingTokens.Select([b, a], rho: 0.25);
        Assert.That(selection.Masks[0], Is.EqualTo(new[] { false, true, false }));
    }

    [Test]
    public void A_prompt_token_with_the_highest_entropy_is_never_selected()
    {
        var sequence = new ScoredSequence([1, 2, 3, 4, 0], [null, 9.0, 0.5, 0.7, 8.0], [false, false, true, true, false]);
        var selection = ForkingTokens.Select([sequence], rho: 0.2);
        Assert.That(selection.Masks[0], Is.EqualTo(new[] { false, false, false, true, false }));
    }

    [Test]
    public void Percentiles_interpolate_linearly_between_ranks()
    {
        // Response entropies 4, 1, 3, 2, 10 (sorted 1 2 3 4 10), with a prompt and padding that must not count.
        var sequence = new ScoredSequence([0, 1, 2, 3, 4, 5, 0], [null, 100.0, 4.0, 1.0, 3.0, 2.0, 50.0],
            [false, false, true, true, true, true, false]);
        var other = new ScoredSequence([0, 7], [null, 10.0], [false, true]);
        var selection = ForkingTokens.Select([sequence, other]);

        // Position (N - 1) p / 100 = 4p/100: p = 10 -> 0.4 -> 1 + 0.4 * (2 - 1); p = 80 -> 3.2 -> 4 + 0.2 * (10 - 4).
        Assert.Multiple(() =>
        {
            Assert.That(selection.Percentile(0), Is.EqualTo(1.0));
            Assert.That(selection.Percentile(10), Is.EqualTo(1.4).Within(1e-12));
            Assert.That(selection.Percentile(50), Is.EqualTo(3.0));
            Assert.That(selection.Percentile(80), Is.EqualTo(5.2).Within(1e-12));
            Assert.That(selection.Percentile(100), Is.EqualTo(10.0));
            Assert.That(selection.Percentiles.Select(p => p.Percent), Is.EqualTo(ForkingSelection.ReportedPercents));
            Assert.That(selection.Percentiles.Single(p => p.Percent == 25).Entropy, Is.EqualTo(2.0));
        });
        Assert.That(ForkingTokens.Percentile([7.5], 33), Is.EqualTo(7.5));
        Assert.Throws<InvalidOperationException>(() => ForkingTokens.Select([]).Percentile(50));
    }

    [Test]
    public void A_response_token_needs_a_finite_entropy_and_every_list_one_value_per_token()
    {
        Assert.Throws<ArgumentException>(() => new ScoredSequence([1, 2], [null, null], [false, true]));
        Assert.Throws<ArgumentException>(() => new ScoredSequence([1, 2], [null, double.NaN], [false, true]));
        Assert.Throws<ArgumentException>(() => new ScoredSequence([1, 2], [null, 1.0], [false]));
    }

    [Test]
    public void The_JSONL_has_one_line_per_sequence_with_ids_entropies_and_both_masks()
    {
        var batch = RandomBatch(new Random(7), sequences: 4);
        var selection = ForkingTokens.Select(batch, rho: 0.3);
        var text = new StringWriter();
        selection.WriteJsonl(text);

        string[] lines = text.ToString().Split('\n');
        Assert.That(lines[^1], Is.Empty, "every line ends with a newline");
        Assert.That(lines, Has.Length.EqualTo(batch.Count + 1));
        for (int s = 0; s < batch.Count; s++)
        {
            var line = JsonNode.Parse(lines[s])!.AsObject();
            Assert.That(line.Select(p => p.Key), Is.EqualTo(new[] { "ids", "entropies", "response_mask", "mask" }));
            Assert.That(line["ids"]!.AsArray().Select(n => (int)n!), Is.EqualTo(batch[s].Ids));
            var entropies = line["entropies"]!.AsArray().Select(n => n is null ? (double?)null : (double)n).ToArray();
            Assert.That(entropies.Select(e => e is null), Is.EqualTo(batch[s].Entropies.Select(e => e is null)));
            for (int t = 0; t < entropies.Length; t++)
            {
                if (entropies[t] is double h)
                {
                    // Written as fp32 (what the core computes); these test values are doubles, so compare at float precision.
                    Assert.That(h, Is.EqualTo(batch[s].Entropies[t]!.Value).Within(1e-6 * Math.Max(1, h)));
                }
            }
            Assert.That(line["response_mask"]!.AsArray().Select(n => (int)n!), Is.EqualTo(batch[s].ResponseMask.Select(m => m ? 1 : 0)));
            Assert.That(line["mask"]!.AsArray().Select(n => (int)n!), Is.EqualTo(selection.Masks[s].Select(m => m ? 1 : 0)));
        }
    }

    [Test]
    public void Scoring_with_a_model_gives_the_entropies_of_Session_Score_and_marks_the_response()
    {
        using var model = Model.Load(Repository.Fixture("llama-f32"));
        var prompts = Golden.Load("llama-f32").Json.Prompts.Select(p => p.Ids).ToArray();
        var random = new Random(11);
        var batch = prompts.Select(p => ((IReadOnlyList<int>)p, (IReadOnlyList<int>)Enumerable.Range(0, random.Next(3, 12))
            .Select(_ => random.Next(2, 512)).ToArray())).ToArray();

        var scored = ForkingTokens.Score(model, batch);

        using var session = model.CreateSession();
        for (int s = 0; s < batch.Length; s++)
        {
            var (prompt, response) = batch[s];
            session.Truncate(0);
            var expected = session.Score([.. prompt, .. response]);
            Assert.That(scored[s].Ids, Is.EqualTo(prompt.Concat(response)));
            Assert.That(scored[s].Entropies, Is.EqualTo(expected.Select(e => e.Entropy)));
            Assert.That(scored[s].ResponseMask, Is.EqualTo(Enumerable.Range(0, expected.Length).Select(i => i >= prompt.Count)));
            Assert.That(scored[s].ResponseCount, Is.EqualTo(response.Count));
        }
        var selection = ForkingTokens.Select(scored);
        Assert.That(selection.SelectedCount, Is.EqualTo(ForkingTokens.SelectionSize(batch.Sum(b => b.Item2.Count), 0.2)));
        Assert.Throws<ArgumentException>(() => ForkingTokens.Score(model, [([], [5])]));
    }

    /// <summary>
    /// Ragged sequences: a prompt, a response and right padding, with entropies drawn from a few distinct values so
    /// that ties occur.
    /// </summary>
    private static List<ScoredSequence> RandomBatch(Random random, int sequences)
    {
        var batch = new List<ScoredSequence>();
        for (int s = 0; s < sequences; s++)
        {
            int prompt = random.Next(1, 6), response = random.Next(0, 40), padding = random.Next(0, 5);
            int length = prompt + response + padding;
            var ids = Enumerable.Range(0, length).Select(_ => random.Next(512)).ToArray();
            var entropies = Enumerable.Range(0, length)
                .Select(i => i == 0 ? (double?)null : random.Next(4) == 0 ? random.Next(3) : random.NextDouble() * 6).ToArray();
            var mask = Enumerable.Range(0, length).Select(i => i >= prompt && i < prompt + response).ToArray();
            batch.Add(new ScoredSequence(ids, entropies, mask));
        }
        return batch;
    }
}
