using NUnit.Framework;

namespace Tandem.Tests.Tokenization;

[TestFixture]
public sealed class IncrementalDecoderTests
{
    private static readonly string[] s_fixtures = ["llama-f32", "qwen2-tied-f32", "llama-spm-f32"];

    [Test]
    public void StreamingRandomIdsEqualsDecodingThemAtOnce([ValueSource(nameof(s_fixtures))] string fixture, [Random(1, 64, 6)] int length)
    {
        var tokenizer = TokenizerCache.Get(fixture);
        var random = TestContext.CurrentContext.Random;
        int[] ids = Enumerable.Range(0, length).Select(_ => random.Next(tokenizer.VocabularySize)).ToArray();
        foreach (bool skip in new[] { true, false })
        {
            var decoder = tokenizer.CreateIncrementalDecoder(skip);
            var parts = ids.Select(decoder.Append).ToList();
            parts.Add(decoder.Flush());
            Assert.That(string.Concat(parts), Is.EqualTo(tokenizer.Decode(ids, skip)), $"skipSpecialTokens={skip}, ids [{string.Join(", ", ids)}]");
        }
    }

    [Test]
    public void CharactersSplitAcrossTokensComeOutWhole([ValueSource(nameof(s_fixtures))] string fixture)
    {
        var tokenizer = TokenizerCache.Get(fixture);
        const string text = "I \u2764\uFE0F \U0001F980 \U0001F469\u200D\U0001F4BB \u6587";
        var ids = tokenizer.Encode(text, addSpecialTokens: false);
        Assert.That(ids.Count, Is.GreaterThan(text.Length / 2), "the fixture vocabularies spell these characters with byte tokens");

        var decoder = tokenizer.CreateIncrementalDecoder();
        var parts = ids.Select(decoder.Append).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(parts, Has.None.Contains('\uFFFD'), "no partial character is ever emitted");
            Assert.That(parts.Where(p => p.Length > 0).All(p => !char.IsHighSurrogate(p[^1])), Is.True, "no emission ends inside a surrogate pair");
            Assert.That(string.Concat(parts) + decoder.Flush(), Is.EqualTo(text));
        });
    }

    [Test]
    public void FlushReportsAnUnfinishedCharacter([ValueSource(nameof(s_fixtures))] string fixture)
    {
        var tokenizer = TokenizerCache.Get(fixture);
        int[] ids = tokenizer.Encode("\U0001F980", addSpecialTokens: false).ToArray();

        // Stop after the first token that leaves the crab's bytes incomplete.
        int cut = Enumerable.Range(1, ids.Length).First(n => tokenizer.Decode(ids.AsSpan(0, n)).EndsWith('\uFFFD'));
        var decoder = tokenizer.CreateIncrementalDecoder();
        string head = string.Concat(ids.Take(cut).Select(decoder.Append));
        Assert.Multiple(() =>
        {
            Assert.That(head, Does.Not.Contain("\uFFFD"), "the crab's first bytes wait for the rest");
            Assert.That(decoder.Flush(), Is.EqualTo("\uFFFD"));
            Assert.That(decoder.Flush(), Is.Empty);
        });
    }

    [Test]
    public void SentencePieceDropsTheDummyPrefixSpaceOnce()
    {
        var tokenizer = TokenizerCache.Get("llama-spm-f32");
        var ids = tokenizer.Encode("Hello world");
        var decoder = tokenizer.CreateIncrementalDecoder();
        string streamed = string.Concat(ids.Select(decoder.Append)) + decoder.Flush();
        Assert.That(streamed, Is.EqualTo("Hello world"));
        Assert.That(tokenizer.DecodeToken(ids[1]), Does.Not.StartWith(" "), "a token decoded alone also loses it");
    }

    [Test]
    public void IdsOutsideTheVocabularyAreRejected()
    {
        var tokenizer = TokenizerCache.Get("llama-f32");
        var decoder = tokenizer.CreateIncrementalDecoder();
        Assert.Multiple(() =>
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => decoder.Append(-1));
            Assert.Throws<ArgumentOutOfRangeException>(() => decoder.Append(tokenizer.VocabularySize));
        });
    }
}
