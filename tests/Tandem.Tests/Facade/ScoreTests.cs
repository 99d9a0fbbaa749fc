using NUnit.Framework;
using Tandem.Tests.Support;

namespace Tandem.Tests.Facade;

/// <summary>
/// <see cref="Session.Score"/>: token i gets the statistics of the distribution that predicted it, checked
/// against transformers' logits and against the engine's own rows.
/// </summary>
[TestFixture]
public sealed class ScoreTests
{
    [TestCase("llama-f32")]
    [TestCase("llama3-sharded-bf16")]
    [TestCase("mistral-swa-f32")]
    public void Log_probabilities_and_entropies_match_transformers(string fixture)
    {
        var golden = Golden.Load(fixture);
        int[] ids = golden.Json.Prompts[1].Ids;
        var expected = golden.PromptLogits(1);
        double tolerance = golden.IsBf16 ? 2e-2 : 2e-3;
        using var model = Model.Load(golden.Folder);
        using var session = model.CreateSession();

        ScoredToken[] scored = session.Score(ids);

        Assert.That(scored, Has.Length.EqualTo(ids.Length));
        Assert.That(scored[0], Is.EqualTo(new ScoredToken(ids[0], null, null, null, null)), "nothing predicts the first token");
        for (int i = 1; i < ids.Length; i++)
        {
            var predictor = expected.Row(i - 1);
            Assert.That(scored[i].Id, Is.EqualTo(ids[i]));
            Assert.That(scored[i].LogProb, Is.EqualTo(Reference.LogSoftmax(predictor)[ids[i]]).Within(tolerance), $"logprob of token {i}");
            Assert.That(scored[i].Entropy, Is.EqualTo(Reference.Entropy(predictor)).Within(tolerance), $"entropy before token {i}");
        }
        Assert.That(session.Length, Is.EqualTo(ids.Length), "scoring appends the tokens");
        Assert.That(session.LogitRows, Is.EqualTo(ids.Length), "and holds every row, as a prefill with AllLogits");
    }

    [Test]
    public void Each_entry_holds_the_statistics_of_the_row_before_it()
    {
        var golden = Golden.Load("qwen2-tied-f32");
        int[] ids = golden.Json.Prompts[0].Ids;
        using var model = Model.Load(golden.Folder);
        using var scoring = model.CreateSession();
        using var reference = model.CreateSession();

        ScoredToken[] scored = scoring.Score(ids, topK: 3);
        reference.Prefill(ids, new PrefillOptions(AllLogits: true));

        for (int i = 1; i < ids.Length; i++)
        {
            var stats = reference.Stats(i - 1, topK: 3);
            float[] logits = reference.GetLogits(i - 1);
            Assert.Multiple(() =>
            {
                Assert.That(scored[i].Au, Is.EqualTo(stats.Au).Within(1e-5), $"AU before token {i}");
                Assert.That(scored[i].Eu, Is.EqualTo(stats.Eu).Within(1e-5), $"EU before token {i}");
                Assert.That(scored[i].Entropy, Is.EqualTo(stats.Entropy).Within(1e-5), $"entropy before token {i}");
                Assert.That(scored[i].LogProb, Is.EqualTo(logits[ids[i]] - stats.LogSumExp).Within(1e-4), $"logprob of token {i}");
            });
        }
    }

    [Test]
    public void Scoring_after_a_prefill_predicts_the_first_token_from_the_held_logits()
    {
        var golden = Golden.Load("llama-f32");
        int[] ids = golden.Json.Prompts[2].Ids;
        int split = ids.Length / 2;
        using var model = Model.Load(golden.Folder);
        using var whole = model.CreateSession();
        using var parts = model.CreateSession();

        ScoredToken[] all = whole.Score(ids);
        parts.Prefill(ids.AsSpan(0, split));
        ScoredToken[] tail = parts.Score(ids.AsSpan(split));

        Assert.That(tail[0].LogProb, Is.Not.Null, "the prefill's last row predicts the first scored token");
        for (int i = 0; i < tail.Length; i++)
        {
            Assert.That(tail[i].LogProb, Is.EqualTo(all[split + i].LogProb).Within(1e-3), $"token {split + i}");
            Assert.That(tail[i].Eu, Is.EqualTo(all[split + i].Eu).Within(1e-4), $"token {split + i}");
        }
    }

    [Test]
    public void Model_Score_tokenizes_the_text_as_tokenizer_json_says()
    {
        var golden = Golden.Load("llama-f32");
        var prompt = golden.Json.Prompts[0];
        using var model = Model.Load(golden.Folder);

        ScoredToken[] scored = model.Score(prompt.Text);

        Assert.That(scored.Select(t => t.Id), Is.EqualTo(prompt.Ids), "the ids transformers' tokenizer produced");
        Assert.That(scored[0].LogProb, Is.Null);
        Assert.That(scored.Skip(1).Select(t => t.LogProb ?? double.NaN), Has.All.LessThanOrEqualTo(0.0), "defined and at most 0");
    }
}
