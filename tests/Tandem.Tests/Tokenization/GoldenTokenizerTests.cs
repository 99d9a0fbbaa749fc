using NUnit.Framework;

namespace Tandem.Tests.Tokenization;

/// <summary>
/// The cross-language tokenizer suite: ids, ids without special tokens and decoded text must equal what
/// Hugging Face (byte-level BPE) and SentencePiece (tokenizer.model) produced for every fixture tokenizer.
/// </summary>
[TestFixture]
public sealed class GoldenTokenizerTests
{
    private static IEnumerable<TestCaseData> VectorCases() =>
        TokenizerTestData.Vectors.SelectMany(v => v.Cases.Select((c, i) =>
            new TestCaseData(v.Fixture, c).SetArgDisplayNames(v.Kind, $"case{i}")));

    private static IEnumerable<TestCaseData> GoldenFixtures() =>
        TokenizerTestData.FixturesWithGoldens().Select(f => new TestCaseData(f).SetArgDisplayNames(f));

    [Test]
    public void VectorsCoverEveryTokenizerKind()
    {
        var kinds = TokenizerTestData.Vectors.Select(v => v.Kind).ToHashSet();
        Assert.That(kinds, Is.SupersetOf(new[] { "bytelevel-bpe", "bytelevel-bpe-split", "sentencepiece-bpe" }),
            "tests/vectors/tokenizer_ids.json must hold the three tokenizer kinds");
    }

    [TestCaseSource(nameof(VectorCases))]
    public void EncodeMatchesVectors(string fixture, TokenizerCase c)
    {
        var tokenizer = TokenizerCache.Get(fixture);
        Assert.Multiple(() =>
        {
            Assert.That(tokenizer.Encode(c.Text), Is.EqualTo(c.Ids), "with special tokens");
            Assert.That(tokenizer.Encode(c.Text, addSpecialTokens: false), Is.EqualTo(c.IdsNoSpecial), "without special tokens");
        });
    }

    [TestCaseSource(nameof(VectorCases))]
    public void DecodeMatchesVectors(string fixture, TokenizerCase c)
    {
        var tokenizer = TokenizerCache.Get(fixture);
        Assert.That(tokenizer.Decode(c.Ids), Is.EqualTo(c.Decoded));
    }

    [TestCaseSource(nameof(VectorCases))]
    public void IncrementalDecodingMatchesDecode(string fixture, TokenizerCase c)
    {
        var tokenizer = TokenizerCache.Get(fixture);
        foreach (bool skip in new[] { true, false })
        {
            var decoder = tokenizer.CreateIncrementalDecoder(skip);
            string streamed = string.Concat(c.Ids.Select(decoder.Append)) + decoder.Flush();
            Assert.That(streamed, Is.EqualTo(tokenizer.Decode(c.Ids, skip)), $"skipSpecialTokens={skip}");
        }
    }

    [TestCaseSource(nameof(VectorCases))]
    public void DecodeRoundTripsText(string fixture, TokenizerCase c)
    {
        // Special tokens written in the text come back as their text when they are not skipped.
        var tokenizer = TokenizerCache.Get(fixture);
        var ids = tokenizer.Encode(c.Text, addSpecialTokens: false).ToArray();
        Assert.That(tokenizer.Decode(ids, skipSpecialTokens: false), Is.EqualTo(c.Text));
    }

    /// <summary>Every fixture's golden.json carries the cases of its tokenizer; fixtures that share one must agree.</summary>
    [TestCaseSource(nameof(GoldenFixtures))]
    public void EveryFixtureMatchesItsGoldens(string fixture)
    {
        var tokenizer = TandemTokenizer.Load(TokenizerTestData.FixtureDirectory(fixture));
        var cases = TokenizerTestData.GoldenCases(fixture);
        Assert.That(cases, Is.Not.Empty);
        Assert.Multiple(() =>
        {
            foreach (var c in cases)
            {
                Assert.That(tokenizer.Encode(c.Text), Is.EqualTo(c.Ids), $"ids of {c.Text}");
                Assert.That(tokenizer.Encode(c.Text, addSpecialTokens: false), Is.EqualTo(c.IdsNoSpecial), $"ids_no_special of {c.Text}");
                Assert.That(tokenizer.Decode(c.Ids), Is.EqualTo(c.Decoded), $"decoded of {c.Text}");
            }
        });
    }
}

/// <summary>Fixture tokenizers loaded once per test run.</summary>
internal static class TokenizerCache
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, TandemTokenizer> s_loaded = new();

    public static TandemTokenizer Get(string fixture) =>
        s_loaded.GetOrAdd(fixture, f => TandemTokenizer.Load(TokenizerTestData.FixtureDirectory(f)));
}
