using NUnit.Framework;
using Tandem.Tests.Support;

namespace Tandem.Tests.Facade;

/// <summary>The sampler through the facade: determinism, greedy, and the session path equal to the logits path.</summary>
[TestFixture]
public sealed class SamplerTests
{
    private static float[] RandomLogits(int seed, int vocab)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, vocab).Select(_ => (float)(random.NextDouble() * 6 - 3))];
    }

    [Test]
    public void The_same_seed_draws_the_same_tokens_and_another_seed_other_ones()
    {
        float[] logits = RandomLogits(seed: 1, vocab: 301);
        int[] Draw(ulong seed)
        {
            using var sampler = new Sampler(new SamplerOptions(Temperature: 1.3f, Seed: seed));
            return [.. Enumerable.Range(0, 64).Select(_ => sampler.Sample(logits))];
        }

        Assert.That(Draw(7), Is.EqualTo(Draw(7)));
        Assert.That(Draw(7), Is.Not.EqualTo(Draw(8)));
        Assert.That(Draw(7).Distinct().Count(), Is.GreaterThan(10), "a flat distribution at T = 1.3 spreads its draws");
    }

    [Test]
    public void Temperature_zero_is_the_argmax_with_the_lowest_id_on_ties()
    {
        float[] logits = RandomLogits(seed: 2, vocab: 97);
        int argmax = Array.IndexOf(logits, logits.Max());
        using var sampler = new Sampler(new SamplerOptions(Temperature: 0));
        Assert.That(sampler.Sample(logits), Is.EqualTo(argmax));

        float[] tied = [0f, 5f, 1f, 5f];
        Assert.That(sampler.Sample(tied), Is.EqualTo(1));
    }

    [Test]
    public void Top_k_one_always_draws_the_most_likely_token()
    {
        float[] logits = RandomLogits(seed: 3, vocab: 130);
        int argmax = Array.IndexOf(logits, logits.Max());
        using var sampler = new Sampler(new SamplerOptions(Temperature: 2f, TopK: 1, Seed: 11));
        Assert.That(Enumerable.Range(0, 50).Select(_ => sampler.Sample(logits)), Has.All.EqualTo(argmax));
    }

    [Test]
    public void The_reported_statistics_are_those_of_the_logits_at_temperature_one()
    {
        float[] logits = RandomLogits(seed: 4, vocab: 257);
        using var sampler = new Sampler(new SamplerOptions(Temperature: 0.5f, StatsTopK: 4, Seed: 5));
        sampler.Sample(logits, out var stats);
        var expected = Uncertainty.FromLogits(logits, topK: 4);
        Assert.Multiple(() =>
        {
            Assert.That(stats.Entropy, Is.EqualTo(expected.Entropy));
            Assert.That(stats.Au, Is.EqualTo(expected.Au));
            Assert.That(stats.Eu, Is.EqualTo(expected.Eu));
            Assert.That(stats.TopIds, Is.EqualTo(expected.TopIds));
        });
    }

    [Test]
    public void Sampling_a_session_equals_sampling_its_last_row()
    {
        var golden = Golden.Load("llama-f32");
        using var model = Model.Load(golden.Folder);
        using var session = model.CreateSession();
        session.Prefill(golden.Json.Prompts[0].Ids);
        float[] logits = session.GetLogits(0);
        var options = new SamplerOptions(Temperature: 1.5f, TopP: 0.9f, Seed: 42);
        using var fromSession = new Sampler(options);
        using var fromLogits = new Sampler(options);

        for (int i = 0; i < 32; i++)
        {
            int a = fromSession.Sample(session, out var statsA);
            int b = fromLogits.Sample(logits, out var statsB);
            Assert.That(a, Is.EqualTo(b), $"draw {i}");
            Assert.That(statsA.Entropy, Is.EqualTo(statsB.Entropy));
        }
    }
}
