using System.Text.Json;
using NUnit.Framework;
using Tandem.Tests.Support;

namespace Tandem.Tests.Vectors;

/// <summary>
/// The cross-language suite through the C# facade: tests/vectors/uncertainty.json, logtoku.json and sampler.json,
/// the same files the GoogleTest suites read, written by an independent float64 reference (tools/make_vectors.py).
/// </summary>
[TestFixture]
public sealed class CrossLanguageVectorTests
{
    public static IEnumerable<TestCaseData> UncertaintyCases() => VectorFile.Cases("uncertainty.json");

    public static IEnumerable<TestCaseData> LogTokUCases() => VectorFile.Cases("logtoku.json");

    public static IEnumerable<TestCaseData> SamplerCases() => VectorFile.Cases("sampler.json");

    [TestCaseSource(nameof(UncertaintyCases))]
    public void Uncertainty_FromLogits(JsonElement testCase)
    {
        // Per field: {"<field>": {"rel", "abs"}}.
        var tolerance = VectorFile.Load("uncertainty.json").GetProperty("tolerance");
        void AssertField(string field, double got, double want, string what) => VectorFile.AssertClose(got, want,
            tolerance.GetProperty(field).GetProperty("rel").GetDouble(), tolerance.GetProperty(field).GetProperty("abs").GetDouble(), what);
        float[] logits = VectorFile.Logits(testCase);
        int topK = testCase.GetProperty("top_k").GetInt32();
        var expected = testCase.GetProperty("expected");

        var stats = Uncertainty.FromLogits(logits, topK);

        Assert.Multiple(() =>
        {
            foreach (var (name, got) in new (string, double)[]
            {
                ("entropy", stats.Entropy), ("entropy_bits", stats.EntropyBits), ("entropy_normalized", stats.EntropyNormalized),
                ("max_prob", stats.MaxProb), ("logsumexp", stats.LogSumExp), ("au", stats.Au), ("eu", stats.Eu),
            })
            {
                AssertField(name, got, expected.GetProperty(name).GetDouble(), name);
            }
            Assert.That(stats.TopIds, Is.EqualTo(expected.GetProperty("top_ids").EnumerateArray().Select(e => e.GetInt32())), "top_ids");
            // Exact, signed zeros included: compare the bits.
            Assert.That(stats.TopLogits.Select(BitConverter.SingleToInt32Bits),
                Is.EqualTo(VectorFile.Float32Array(expected.GetProperty("top_logits")).Select(BitConverter.SingleToInt32Bits)), "top_logits");
            var probs = expected.GetProperty("top_probs").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            Assert.That(stats.TopProbs, Has.Count.EqualTo(probs.Length));
            for (int i = 0; i < probs.Length; i++)
            {
                AssertField("top_probs", stats.TopProbs[i], probs[i], $"top_probs[{i}]");
            }
        });
    }

    [TestCaseSource(nameof(LogTokUCases))]
    public void Uncertainty_LogTokU(JsonElement testCase)
    {
        var tolerance = VectorFile.Load("logtoku.json").GetProperty("tolerance").GetProperty("float32");
        double rel = tolerance.GetProperty("rel").GetDouble();
        double abs = tolerance.GetProperty("abs").GetDouble();

        var (au, eu) = Uncertainty.LogTokU(VectorFile.Float32Array(testCase.GetProperty("alpha")));

        Assert.Multiple(() =>
        {
            VectorFile.AssertClose(au, testCase.GetProperty("au").GetDouble(), rel, abs, "au");
            VectorFile.AssertClose(eu, testCase.GetProperty("eu").GetDouble(), rel, abs, "eu");
        });
    }

    [TestCaseSource(nameof(SamplerCases))]
    public void Sampler_draws_the_same_tokens(JsonElement testCase)
    {
        float[] logits = VectorFile.Logits(testCase);
        var options = testCase.GetProperty("options");
        int[] expected = [.. testCase.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32())];
        using var sampler = new Sampler(new SamplerOptions(
            Temperature: VectorFile.Float32(options.GetProperty("temperature")),
            TopK: options.GetProperty("top_k").GetInt32(),
            TopP: VectorFile.Float32(options.GetProperty("top_p")),
            Seed: options.GetProperty("seed").GetUInt64()));

        int[] drawn = [.. expected.Select(_ => sampler.Sample(logits))];

        Assert.That(drawn, Is.EqualTo(expected));
    }
}
