using System.Text.Json;
using NUnit.Framework;

namespace Tandem.Tests.Tokenization;

/// <summary>Properties of every fixture tokenizer beyond the golden strings.</summary>
[TestFixture]
public sealed class FixtureTokenizerTests
{
    private static IEnumerable<TestCaseData> Fixtures() =>
        TokenizerTestData.FixturesWithGoldens().Select(f => new TestCaseData(f).SetArgDisplayNames(f));

    [TestCaseSource(nameof(Fixtures))]
    public void SizesAndSpecialIdsAgreeWithTheModel(string fixture)
    {
        var tokenizer = TokenizerCache.Get(fixture);
        string folder = TokenizerTestData.FixtureDirectory(fixture);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "golden.json")));
        var bos = golden.RootElement.GetProperty("bos_token_id");
        Assert.Multiple(() =>
        {
            Assert.That(tokenizer.VocabularySize, Is.EqualTo(config.RootElement.GetProperty("vocab_size").GetInt32()));
            Assert.That(tokenizer.BosTokenId, Is.EqualTo(bos.ValueKind == JsonValueKind.Null ? null : bos.GetInt32()));
            Assert.That(tokenizer.EosTokenIds, Is.EquivalentTo(golden.RootElement.GetProperty("eos_token_ids").EnumerateArray().Select(e => e.GetInt32())));
        });
    }

    [TestCaseSource(nameof(Fixtures))]
    public void RandomTextRoundTrips(string fixture)
    {
        var tokenizer = TokenizerCache.Get(fixture);
        var random = TestContext.CurrentContext.Random;
        for (int trial = 0; trial < 40; trial++)
        {
            string text = RandomText.CodePoints(random, random.Next(0, 50));
            var ids = tokenizer.Encode(text, addSpecialTokens: false).ToArray();
            Assert.That(tokenizer.Decode(ids), Is.EqualTo(text), $"ids [{string.Join(", ", ids)}]");
            Assert.That(tokenizer.Encode(text), Is.EqualTo(tokenizer.Encode("", addSpecialTokens: true).Concat(ids)), "special tokens only wrap the text here");
        }
    }

    [TestCaseSource(nameof(Fixtures))]
    public void LoneSurrogatesAreRejected(string fixture)
    {
        var tokenizer = TokenizerCache.Get(fixture);
        var random = TestContext.CurrentContext.Random;
        string text = RandomText.CodePoints(random, random.Next(0, 20));
        string[] broken = [text + "\uD83D", "\uDE00" + text, text + "\uDE00\uD83D"];
        foreach (string b in broken)
        {
            var e = Assert.Throws<ArgumentException>(() => tokenizer.Encode(b));
            Assert.That(e!.Message, Does.Contain("invalid UTF-16").And.Contain("UTF-8"));
            Assert.That(e.ParamName, Is.EqualTo("text"));
        }

        Assert.Throws<ArgumentNullException>(() => tokenizer.Encode(null!));
    }

    [TestCaseSource(nameof(Fixtures))]
    public void TokensDecodeAloneAndNameTheirVocabularyText(string fixture)
    {
        var tokenizer = TokenizerCache.Get(fixture);
        for (int id = 0; id < tokenizer.VocabularySize; id++)
        {
            Assert.That(tokenizer.TokenText(id), Is.Not.Empty, $"token {id}");
            Assert.DoesNotThrow(() => tokenizer.DecodeToken(id), $"token {id}");
        }

        Assert.Multiple(() =>
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.TokenText(tokenizer.VocabularySize));
            Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([0, -1]));
            Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.DecodeToken(int.MaxValue));
        });
    }

    [Test]
    public void ByteTokensDecodeToReplacementCharacterAlone()
    {
        var llama = TokenizerCache.Get("llama-f32");
        var crab = llama.Encode("\U0001F980", addSpecialTokens: false);
        Assert.That(crab.Count, Is.GreaterThan(1));
        Assert.That(llama.DecodeToken(crab[0]), Does.Contain("\uFFFD"));
        Assert.That(llama.TokenText(crab[0]), Does.Not.Contain("\uFFFD"), "the raw vocabulary text is shown as stored");

        var spm = TokenizerCache.Get("llama-spm-f32");
        int byteToken = spm.Encode("\U0001F980", addSpecialTokens: false).First(id => spm.TokenText(id).StartsWith("<0x", StringComparison.Ordinal));
        Assert.That(spm.DecodeToken(byteToken), Is.EqualTo("\uFFFD"));
    }

    [Test]
    public void SpecialTokensInTextAreMatched()
    {
        var qwen2 = TokenizerCache.Get("qwen2-tied-f32");
        var ids = qwen2.Encode("<|im_start|>user<|im_end|>");
        Assert.Multiple(() =>
        {
            Assert.That(qwen2.TokenText(ids[0]), Is.EqualTo("<|im_start|>"));
            Assert.That(qwen2.TokenText(ids[^1]), Is.EqualTo("<|im_end|>"));
            Assert.That(qwen2.Decode(ids.ToArray()), Is.EqualTo("user"));
            Assert.That(qwen2.Decode(ids.ToArray(), skipSpecialTokens: false), Is.EqualTo("<|im_start|>user<|im_end|>"));
        });
    }
}
