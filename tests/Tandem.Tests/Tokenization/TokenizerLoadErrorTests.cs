using System.Text.Json.Nodes;
using NUnit.Framework;

namespace Tandem.Tests.Tokenization;

/// <summary>Every way a tokenizer can fail to load says which file and which feature.</summary>
[TestFixture]
public sealed class TokenizerLoadErrorTests
{
    [Test]
    public void MissingFolderIsNamed()
    {
        string path = Path.Combine(Path.GetTempPath(), "tandem-no-such-model-" + Guid.NewGuid().ToString("N"));
        var e = Assert.Throws<DirectoryNotFoundException>(() => TandemTokenizer.Load(path));
        Assert.That(e!.Message, Does.Contain(path));
    }

    [Test]
    public void FolderWithoutTokenizerNamesBothFiles()
    {
        using var directory = TokenizerTestData.CreateTempDirectory();
        var e = Assert.Throws<FileNotFoundException>(() => TandemTokenizer.Load(directory.Path));
        Assert.Multiple(() =>
        {
            Assert.That(e!.FileName, Is.EqualTo(directory.File("tokenizer.json")));
            Assert.That(e.Message, Does.Contain("tokenizer.json").And.Contain("tokenizer.model"));
        });
    }

    [Test]
    public void TruncatedJsonIsReportedWithItsPath()
    {
        using var directory = TokenizerTestData.CreateTempDirectory();
        string valid = File.ReadAllText(Path.Combine(TokenizerTestData.FixtureDirectory("qwen2-tied-f32"), "tokenizer.json"));
        int cut = TestContext.CurrentContext.Random.Next(1, valid.Length - 1);
        File.WriteAllText(directory.File("tokenizer.json"), valid[..cut]);
        var e = Assert.Throws<InvalidDataException>(() => TandemTokenizer.Load(directory.Path));
        Assert.That(e!.Message, Does.StartWith(directory.File("tokenizer.json")).And.Contain("JSON"));
    }

    private static InvalidDataException LoadFails(Action<JsonObject> corrupt)
    {
        using var directory = TokenizerTestData.CreateTempDirectory();
        var json = SyntheticTokenizers.ByteLevel(["bc"], ["b c"]);
        corrupt(json);
        SyntheticTokenizers.Write(directory, json);
        var e = Assert.Throws<InvalidDataException>(() => TandemTokenizer.Load(directory.Path))!;
        Assert.That(e.Message, Does.StartWith(directory.File("tokenizer.json")));
        return e;
    }

    [Test]
    public void WordPieceModelIsRejected() =>
        Assert.That(LoadFails(j => j["model"]!["type"] = "WordPiece").Message, Does.Contain("\"WordPiece\"").And.Contain("not supported"));

    [Test]
    public void UnknownPreTokenizerIsRejected() =>
        Assert.That(LoadFails(j => j["pre_tokenizer"] = new JsonObject { ["type"] = "Whitespace" }).Message, Does.Contain("pre_tokenizer").And.Contain("\"Whitespace\""));

    [Test]
    public void UnknownNormalizerIsRejected() =>
        Assert.That(LoadFails(j => j["normalizer"] = new JsonObject { ["type"] = "BertNormalizer" }).Message, Does.Contain("normalizer").And.Contain("\"BertNormalizer\""));

    [Test]
    public void UnknownPostProcessorIsRejected() =>
        Assert.That(LoadFails(j => j["post_processor"] = new JsonObject { ["type"] = "Mystery" }).Message, Does.Contain("post_processor").And.Contain("\"Mystery\""));

    [Test]
    public void BadRegexIsRejected() =>
        Assert.That(LoadFails(j => j["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Split",
            ["pattern"] = new JsonObject { ["Regex"] = "(unclosed" },
            ["behavior"] = "Isolated",
            ["invert"] = false,
        }).Message, Does.Contain("(unclosed"));

    [Test]
    public void MergeOfUnknownTokensIsRejected() =>
        Assert.That(LoadFails(j => j["model"]!["merges"] = new JsonArray("x y z")).Message, Does.Contain("merges[0]"));

    [Test]
    public void MergeOutsideTheVocabularyIsRejected() =>
        Assert.That(LoadFails(j => j["model"]!["merges"] = new JsonArray("bc bc")).Message, Does.Contain("inconsistent"));

    [Test]
    public void DropoutIsRejected() =>
        Assert.That(LoadFails(j => j["model"]!["dropout"] = 0.1).Message, Does.Contain("dropout"));

    [Test]
    public void BpeWithoutByteLevelOrSentencePieceIsRejected() =>
        Assert.That(LoadFails(j => j["pre_tokenizer"] = null).Message, Does.Contain("ByteLevel"));

    [Test]
    public void SentencePieceStyleJsonNeedsTokenizerModel() =>
        Assert.That(LoadFails(j =>
        {
            j["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["prepend_scheme"] = "first", ["split"] = false };
            j["model"]!["byte_fallback"] = true;
        }).Message, Does.Contain("tokenizer.model"));

    [Test]
    public void BosTokenMissingFromVocabularyIsRejected()
    {
        using var directory = TokenizerTestData.CreateTempDirectory();
        SyntheticTokenizers.Write(directory, SyntheticTokenizers.ByteLevel(["bc"], ["b c"]), new JsonObject { ["bos_token"] = "<|begin|>" });
        var e = Assert.Throws<InvalidDataException>(() => TandemTokenizer.Load(directory.Path));
        Assert.That(e!.Message, Does.Contain("tokenizer_config.json").And.Contain("bos_token").And.Contain("<|begin|>"));
    }

    [Test]
    public void CorruptSentencePieceModelIsReportedWithItsPath([Values(0, 1, 7, 100)] int length)
    {
        using var directory = TokenizerTestData.CreateTempDirectory();
        var bytes = new byte[length];
        TestContext.CurrentContext.Random.NextBytes(bytes);
        if (length > 0)
        {
            bytes[0] = 0x0A; // field 1, length-delimited: a piece whose length runs past the end
            bytes[^1] = 0xFF;
        }

        File.WriteAllBytes(directory.File("tokenizer.model"), bytes);
        var e = Assert.Throws<InvalidDataException>(() => TandemTokenizer.Load(directory.Path));
        Assert.That(e!.Message, Does.StartWith(directory.File("tokenizer.model")));
    }

    [Test]
    public void SentencePieceUnigramModelIsRejected()
    {
        // The fixture's model with trainer_spec.model_type set to UNIGRAM (1).
        using var directory = TokenizerTestData.CreateTempDirectory();
        byte[] model = File.ReadAllBytes(Path.Combine(TokenizerTestData.FixtureDirectory("llama-spm-f32"), "tokenizer.model"));
        byte[] unigramSpec = [0x12, 0x02, 0x18, 0x01]; // field 2 (TrainerSpec) { field 3 (model_type) = 1 }; a later spec field wins
        File.WriteAllBytes(directory.File("tokenizer.model"), [.. model, .. unigramSpec]);
        var e = Assert.Throws<InvalidDataException>(() => TandemTokenizer.Load(directory.Path));
        Assert.That(e!.Message, Does.Contain("Unigram"));
    }
}
