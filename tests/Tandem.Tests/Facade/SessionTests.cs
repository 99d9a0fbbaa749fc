using NUnit.Framework;
using Tandem.Tests.Support;

namespace Tandem.Tests.Facade;

/// <summary>
/// Session semantics through the facade: incremental decoding equals batched prefill, truncation rolls back
/// exactly, greedy decoding reproduces transformers, and the logit rows / statistics are what the header says.
/// </summary>
[TestFixture]
public sealed class SessionTests
{
    /// <summary>
    /// Two paths through the same engine (batched GEMM vs single-token GEMV) differ only by rounding: float32
    /// summation order, relative to the largest logit.
    /// </summary>
    private const double SamePathToleranceF32 = 1e-4;

    /// <summary>
    /// The same for bf16 weights, where the kernels may round activations to bf16 (8 significant bits, 2^-8 ≈ 3.9e-3
    /// relative) differently on the two paths. A wrong row (a misplaced position, a stale cache entry) is off by
    /// far more.
    /// </summary>
    private const double SamePathToleranceBf16 = 1e-2;

    /// <summary>
    /// Golden margins (top-1 minus top-2 logit) below this are near-ties that another summation order may break
    /// either way: 1e-4 for f32 weights, as the issue specifies; for bf16 weights, whose activations may be
    /// rounded to bf16, a few bf16 roundings of logits of magnitude ~1.
    /// </summary>
    private static double NearTie(Golden golden) => golden.IsBf16 ? 1e-2 : 1e-4;

    public static IEnumerable<string> Fixtures() => Repository.Fixtures;

    [TestCaseSource(nameof(Fixtures))]
    public void Prefill_then_decode_equals_one_long_prefill(string fixture)
    {
        var golden = Golden.Load(fixture);
        int[] ids = golden.Json.Prompts[2].Ids; // the longest prompt: crosses Mistral's sliding window
        int split = ids.Length / 3;
        using var model = Model.Load(golden.Folder);
        using var whole = model.CreateSession();
        whole.Prefill(ids, new PrefillOptions(AllLogits: true));
        double bound = Reference.MaxAbs(whole.GetLogits(ids.Length - 1)) * SamePathTolerance(golden);

        using var stepwise = model.CreateSession();
        stepwise.Prefill(ids.AsSpan(0, split));
        AssertSameRow(stepwise.GetLogits(0), whole.GetLogits(split - 1), bound, $"after the prefill of {split}");
        for (int i = split; i < ids.Length; i++)
        {
            stepwise.Decode(ids[i]);
            Assert.That(stepwise.LogitRows, Is.EqualTo(1));
            AssertSameRow(stepwise.GetLogits(0), whole.GetLogits(i), bound, $"after decoding position {i}");
        }
        Assert.That(stepwise.Length, Is.EqualTo(ids.Length));
    }

    [TestCaseSource(nameof(Fixtures))]
    public void Truncate_then_redo_equals_the_original(string fixture)
    {
        var golden = Golden.Load(fixture);
        int[] ids = golden.Json.Prompts[1].Ids;
        int keep = ids.Length / 2;
        using var model = Model.Load(golden.Folder);
        using var session = model.CreateSession();
        session.Prefill(ids, new PrefillOptions(AllLogits: true));
        float[][] original = [.. Enumerable.Range(0, ids.Length).Select(session.GetLogits)];
        double bound = Reference.MaxAbs(original[^1]) * SamePathTolerance(golden);

        session.Truncate(keep);
        Assert.That(session.Length, Is.EqualTo(keep));
        Assert.That(session.LogitRows, Is.Zero, "truncate drops the held logits");

        session.Prefill(ids.AsSpan(keep), new PrefillOptions(AllLogits: true));
        Assert.That(session.LogitRows, Is.EqualTo(ids.Length - keep));
        for (int i = keep; i < ids.Length; i++)
        {
            AssertSameRow(session.GetLogits(i - keep), original[i], bound, $"redone position {i}");
        }

        // And through the single-token path: drop the last token, decode it again.
        session.Truncate(ids.Length - 1);
        session.Decode(ids[^1]);
        AssertSameRow(session.GetLogits(0), original[^1], bound, "last position decoded again");
    }

    /// <summary>
    /// Greedy decoding along the golden path: at every step where the golden margin is not a near-tie, the argmax
    /// is transformers' token; the golden token is then decoded (teacher forcing), so one near-tie does not end the
    /// comparison. Where no step is a near-tie (every f32 fixture) this is exactly the free-running greedy
    /// continuation.
    /// </summary>
    [TestCaseSource(nameof(Fixtures))]
    public void Greedy_decoding_matches_transformers_except_at_near_ties(string fixture)
    {
        var golden = Golden.Load(fixture);
        var greedy = golden.Json.Greedy;
        using var model = Model.Load(golden.Folder);
        using var session = model.CreateSession();
        using var sampler = new Sampler(new SamplerOptions(Temperature: 0));
        session.Prefill(greedy.PromptIds);

        int compared = 0;
        for (int step = 0; step < greedy.Tokens.Length; step++)
        {
            if (greedy.Margins[step] >= NearTie(golden))
            {
                Assert.That(sampler.Sample(session), Is.EqualTo(greedy.Tokens[step]),
                    $"{fixture}: greedy step {step} (golden margin {greedy.Margins[step]})");
                compared++;
            }
            session.Decode(greedy.Tokens[step]);
        }
        Assert.That(compared, Is.GreaterThanOrEqualTo(greedy.Tokens.Length / 2), "most steps are not near-ties");
    }

    [Test]
    public void A_new_session_is_empty_and_its_capacity_is_the_context_length()
    {
        using var model = Model.Load(Repository.Fixture("llama-f32"));
        using var session = model.CreateSession();
        Assert.Multiple(() =>
        {
            Assert.That(session.Length, Is.Zero);
            Assert.That(session.LogitRows, Is.Zero);
            Assert.That(session.Capacity, Is.EqualTo(model.Info.ContextLength));
            Assert.That(session.VocabSize, Is.EqualTo(model.Info.VocabSize));
            Assert.That(session.ContextLimitSource, Does.Contain("max_position_embeddings"));
        });
    }

    [Test]
    public void The_context_limit_is_the_smaller_of_kv_capacity_and_max_position_embeddings()
    {
        using var model = Model.Load(Repository.Fixture("llama-f32"));
        using var small = model.CreateSession(new SessionOptions(KvCapacity: 48));
        using var large = model.CreateSession(new SessionOptions(KvCapacity: model.Info.ContextLength * 4));
        Assert.Multiple(() =>
        {
            Assert.That(small.Capacity, Is.EqualTo(48));
            Assert.That(small.ContextLimitSource, Does.Contain("KV capacity"));
            Assert.That(large.Capacity, Is.EqualTo(model.Info.ContextLength));
            Assert.That(large.ContextLimitSource, Does.Contain("max_position_embeddings"));
        });
    }

    [Test]
    public void Stats_of_a_row_equal_the_statistics_of_its_logits()
    {
        var golden = Golden.Load("qwen2-tied-f32");
        int[] ids = golden.Json.Prompts[0].Ids;
        using var model = Model.Load(golden.Folder);
        using var session = model.CreateSession();
        session.Prefill(ids, new PrefillOptions(AllLogits: true));

        for (int row = 0; row < ids.Length; row += 3)
        {
            float[] logits = session.GetLogits(row);
            var fromRow = session.Stats(row, topK: 5);
            var fromLogits = Uncertainty.FromLogits(logits, topK: 5);
            Assert.That(fromRow, Is.EqualTo(fromLogits).Using<TokenStats>(SameStats), $"row {row}");

            Assert.Multiple(() =>
            {
                Assert.That(fromRow.TopIds, Has.Count.EqualTo(5));
                Assert.That(fromRow.TopIds[0], Is.EqualTo(Array.IndexOf(logits, logits.Max())));
                Assert.That(fromRow.TopLogits, Is.Ordered.Descending);
                Assert.That(fromRow.Entropy, Is.EqualTo(Reference.Entropy(logits)).Within(1e-4));
                Assert.That(fromRow.LogSumExp, Is.EqualTo(Reference.LogSumExp(logits)).Within(1e-4));
                Assert.That(fromRow.EntropyBits, Is.EqualTo(fromRow.Entropy / Math.Log(2)).Within(1e-5));
            });
        }
    }

    [Test]
    public void Logit_rows_are_one_after_a_plain_prefill_and_all_with_AllLogits()
    {
        var golden = Golden.Load("llama-f32");
        int[] ids = golden.Json.Prompts[0].Ids;
        using var model = Model.Load(golden.Folder);
        using var plain = model.CreateSession();
        using var all = model.CreateSession();
        plain.Prefill(ids);
        all.Prefill(ids, new PrefillOptions(AllLogits: true));

        Assert.That(plain.LogitRows, Is.EqualTo(1));
        Assert.That(all.LogitRows, Is.EqualTo(ids.Length));
        float[] last = all.GetLogits(ids.Length - 1);
        AssertSameRow(plain.GetLogits(0), last, Reference.MaxAbs(last) * SamePathToleranceF32, "the last row");
    }

    private static double SamePathTolerance(Golden golden) => golden.IsBf16 ? SamePathToleranceBf16 : SamePathToleranceF32;

    /// <summary>Max |actual − expected| ≤ <paramref name="bound"/> (absolute).</summary>
    private static void AssertSameRow(float[] actual, float[] expected, double bound, string what) =>
        Assert.That(Reference.MaxAbsDifference(actual, expected), Is.LessThanOrEqualTo(bound), what);

    private static bool SameStats(TokenStats a, TokenStats b) =>
        a.Entropy == b.Entropy && a.Au == b.Au && a.Eu == b.Eu && a.MaxProb == b.MaxProb && a.LogSumExp == b.LogSumExp
        && a.TopIds.SequenceEqual(b.TopIds) && a.TopLogits.SequenceEqual(b.TopLogits) && a.TopProbs.SequenceEqual(b.TopProbs);
}
