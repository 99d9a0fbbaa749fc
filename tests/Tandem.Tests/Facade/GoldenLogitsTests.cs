using NUnit.Framework;
using Tandem.Tests.Support;

namespace Tandem.Tests.Facade;

/// <summary>
/// The facade end to end against transformers: the logits of every golden prompt, at every position, for every
/// fixture (architectures, dtypes, tied embeddings, sliding window, shards, RoPE spellings).
/// </summary>
[TestFixture]
public sealed class GoldenLogitsTests
{
    /// <summary>f32 fixtures: |ours − golden| ≤ 1e-4 · max|golden logit| (the engine computes in f32 too).</summary>
    private const double F32RelativeTolerance = 1e-4;

    /// <summary>bf16 fixtures: log-probabilities within 2e-2 (bf16 weights leave room for other summation orders).</summary>
    private const double Bf16LogProbTolerance = 2e-2;

    public static IEnumerable<TestCaseData> Prompts() =>
        from fixture in Repository.Fixtures
        from prompt in Enumerable.Range(0, 3)
        select new TestCaseData(fixture, prompt).SetName($"{{m}}({fixture}, prompt {prompt})");

    [TestCaseSource(nameof(Prompts))]
    public void All_logits_of_a_prompt_match_transformers(string fixture, int prompt)
    {
        var golden = Golden.Load(fixture);
        var expected = golden.PromptLogits(prompt);
        int[] ids = golden.Json.Prompts[prompt].Ids;
        using var model = Model.Load(golden.Folder);
        using var session = model.CreateSession();

        session.Prefill(ids, new PrefillOptions(AllLogits: true));

        Assert.That(session.LogitRows, Is.EqualTo(ids.Length));
        Assert.That(expected.Rows, Is.EqualTo(ids.Length));
        AssertRowsMatch(session, expected, firstRow: 0, golden.IsBf16, $"{fixture} prompt {prompt}");
    }

    [Test]
    public void The_long_prompt_of_long_llama_matches_transformers_at_its_last_positions()
    {
        var golden = Golden.Load("long-llama-bf16");
        var tail = golden.LongTailLogits();
        int[] ids = golden.Json.Long!.Ids;
        using var model = Model.Load(golden.Folder);
        using var session = model.CreateSession();

        session.Prefill(ids, new PrefillOptions(AllLogits: true));

        Assert.That(golden.Json.Long.TailPositions[1], Is.EqualTo(ids.Length));
        AssertRowsMatch(session, tail, firstRow: golden.Json.Long.TailPositions[0], golden.IsBf16, "long prompt");
    }

    /// <summary>Compares the session's rows [firstRow, firstRow + expected.Rows) with <paramref name="expected"/>.</summary>
    internal static void AssertRowsMatch(Session session, LogitMatrix expected, int firstRow, bool bf16, string what)
    {
        var actual = new float[session.VocabSize];
        Assert.That(session.VocabSize, Is.EqualTo(expected.Vocab));
        double scale = expected.MaxAbs();
        for (int row = 0; row < expected.Rows; row++)
        {
            session.GetLogits(firstRow + row, actual);
            if (bf16)
            {
                double error = Reference.MaxAbsDifference(Reference.LogSoftmax(actual), Reference.LogSoftmax(expected.Row(row)));
                Assert.That(error, Is.LessThanOrEqualTo(Bf16LogProbTolerance), $"{what}, row {firstRow + row}: log-probabilities");
            }
            else
            {
                double error = Reference.MaxAbsDifference(actual, expected.Row(row));
                Assert.That(error, Is.LessThanOrEqualTo(F32RelativeTolerance * scale),
                    $"{what}, row {firstRow + row}: logits (max |logit| {scale})");
            }
        }
    }
}
