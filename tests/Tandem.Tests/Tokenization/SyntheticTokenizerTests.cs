using System.Text.Json.Nodes;
using NUnit.Framework;

namespace Tandem.Tests.Tokenization;

/// <summary>Single features of tokenizer.json, on tiny vocabularies; expected ids are Hugging Face's.</summary>
[TestFixture]
public sealed class SyntheticTokenizerTests
{
    // Ids: 0..255 are the byte characters, then these words in order.
    private static readonly string[] s_words = ["bc", "abc", "\u0120a", "\u0120abc"];
    private const int Bc = 256, Abc = 257, SpaceA = 258, SpaceAbc = 259;
    private const int Space = ' '; // 'Ġ', the character of byte 0x20

    private static TandemTokenizer Load(TempDirectory directory, JsonNode json, JsonNode? config = null)
    {
        SyntheticTokenizers.Write(directory, json, config);
        return TandemTokenizer.Load(directory.Path);
    }

    private static int Byte(char c) => c; // the byte characters take ids 0..255 in byte order

    [Test]
    public void MergesAreReadInBothSpellings([Random(1, 40, 4)] int length)
    {
        using var strings = TokenizerTestData.CreateTempDirectory();
        using var pairs = TokenizerTestData.CreateTempDirectory();
        JsonNode[] asStrings = ["b c", "\u0120 a", "a bc", "\u0120a bc"];
        JsonNode[] asPairs = [new JsonArray("b", "c"), new JsonArray("\u0120", "a"), new JsonArray("a", "bc"), new JsonArray("\u0120a", "bc")];
        var fromStrings = Load(strings, SyntheticTokenizers.ByteLevel(s_words, asStrings));
        var fromPairs = Load(pairs, SyntheticTokenizers.ByteLevel(s_words, asPairs));

        Assert.That(fromStrings.Encode(" abc abc"), Is.EqualTo(new[] { SpaceAbc, SpaceAbc }));
        var random = TestContext.CurrentContext.Random;
        string text = string.Concat(Enumerable.Range(0, length).Select(_ => "abc "[random.Next(4)]));
        Assert.That(fromPairs.Encode(text), Is.EqualTo(fromStrings.Encode(text)), text);
    }

    [Test]
    public void IgnoreMergesEmitsAWordFoundWholeInTheVocabulary()
    {
        // Only "b c" can merge: "abc" becomes a + bc, unless ignore_merges finds "abc" whole.
        using var merging = TokenizerTestData.CreateTempDirectory();
        using var ignoring = TokenizerTestData.CreateTempDirectory();
        JsonNode[] merges = ["b c"];
        var withMerges = Load(merging, SyntheticTokenizers.ByteLevel(s_words, merges));
        var withoutMerges = Load(ignoring, SyntheticTokenizers.ByteLevel(s_words, merges, ignoreMerges: true));
        Assert.Multiple(() =>
        {
            Assert.That(withMerges.Encode("abc abc"), Is.EqualTo(new[] { Byte('a'), Bc, Space, Byte('a'), Bc }));
            Assert.That(withoutMerges.Encode("abc abc"), Is.EqualTo(new[] { Abc, SpaceAbc }));
        });
    }

    [Test]
    public void TemplateAndRobertaPostProcessorsAddTheirTokens()
    {
        using var template = TokenizerTestData.CreateTempDirectory();
        var json = SyntheticTokenizers.ByteLevel(s_words, ["b c"]);
        json["added_tokens"] = new JsonArray(
            new JsonObject { ["id"] = 260, ["content"] = "<s>", ["special"] = true, ["normalized"] = false },
            new JsonObject { ["id"] = 261, ["content"] = "</s>", ["special"] = true, ["normalized"] = false });
        json["post_processor"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["processors"] = new JsonArray(
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
                new JsonObject
                {
                    ["type"] = "TemplateProcessing",
                    ["single"] = new JsonArray(
                        new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } },
                        new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } },
                        new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "</s>", ["type_id"] = 0 } }),
                    ["pair"] = new JsonArray(),
                    ["special_tokens"] = new JsonObject
                    {
                        ["<s>"] = new JsonObject { ["id"] = "<s>", ["ids"] = new JsonArray(260), ["tokens"] = new JsonArray("<s>") },
                        ["</s>"] = new JsonObject { ["id"] = "</s>", ["ids"] = new JsonArray(261), ["tokens"] = new JsonArray("</s>") },
                    },
                }),
        };
        var tokenizer = Load(template, json, new JsonObject { ["bos_token"] = "<s>", ["eos_token"] = new JsonObject { ["content"] = "</s>" } });
        Assert.Multiple(() =>
        {
            Assert.That(tokenizer.Encode("abc"), Is.EqualTo(new[] { 260, Byte('a'), Bc, 261 }));
            Assert.That(tokenizer.Encode("abc", addSpecialTokens: false), Is.EqualTo(new[] { Byte('a'), Bc }));
            Assert.That(tokenizer.Encode("<s>abc</s>", addSpecialTokens: false), Is.EqualTo(new[] { 260, Byte('a'), Bc, 261 }), "special tokens written in the text");
            Assert.That(tokenizer.Decode([260, Byte('a'), Bc, 261]), Is.EqualTo("abc"));
            Assert.That(tokenizer.Decode([260, Byte('a'), Bc, 261], skipSpecialTokens: false), Is.EqualTo("<s>abc</s>"));
            Assert.That(tokenizer.BosTokenId, Is.EqualTo(260));
            Assert.That(tokenizer.EosTokenIds, Is.EqualTo(new[] { 261 }));
            Assert.That(tokenizer.VocabularySize, Is.EqualTo(262));
            Assert.That(tokenizer.TokenText(SpaceA), Is.EqualTo("\u0120a"));
        });

        using var roberta = TokenizerTestData.CreateTempDirectory();
        json["post_processor"] = new JsonObject { ["type"] = "RobertaProcessing", ["sep"] = new JsonArray("</s>", 261), ["cls"] = new JsonArray("<s>", 260) };
        Assert.That(Load(roberta, json).Encode("bc"), Is.EqualTo(new[] { 260, Bc, 261 }));
    }

    [Test]
    public void GenerationConfigAddsEosIds()
    {
        using var directory = TokenizerTestData.CreateTempDirectory();
        var json = SyntheticTokenizers.ByteLevel(s_words, ["b c"]);
        json["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 260, ["content"] = "<|eot|>", ["special"] = true });
        File.WriteAllText(directory.File("generation_config.json"), """{"eos_token_id": [260, 257]}""");
        var tokenizer = Load(directory, json, new JsonObject { ["eos_token"] = "<|eot|>", ["bos_token"] = null });
        Assert.Multiple(() =>
        {
            Assert.That(tokenizer.EosTokenIds, Is.EqualTo(new[] { 260, Abc }));
            Assert.That(tokenizer.BosTokenId, Is.Null);
        });
    }
}
