using NUnit.Framework;
using Tandem.Tokenization;

namespace Tandem.Tests.Tokenization;

/// <summary>Added-token matching; the expected splits are what Hugging Face tokenizers 0.23 gives.</summary>
[TestFixture]
public sealed class AddedVocabularyTests
{
    private static List<string> Split(AddedVocabulary vocabulary, string text)
    {
        var pieces = new List<TextPiece>();
        vocabulary.Split(text, pieces);
        return pieces.Select(p => p.IsToken ? $"#{p.TokenId}" : p.Text!).ToList();
    }

    [Test]
    public void MatchesLeftmostLongest()
    {
        var vocabulary = new AddedVocabulary([new AddedToken(1, "<a>", true), new AddedToken(2, "<a><b>", true), new AddedToken(3, "b>", false)], null);
        Assert.That(Split(vocabulary, "x<a><b>y<a>b>"), Is.EqualTo(new[] { "x", "#2", "y", "#1", "#3" }));
    }

    [Test]
    public void StripFlagsSwallowNeighbouringWhitespace()
    {
        var vocabulary = new AddedVocabulary([new AddedToken(7, "<t>", true, LeftStrip: true, RightStrip: true)], null);
        Assert.That(Split(vocabulary, "a \t <t>\n b"), Is.EqualTo(new[] { "a", "#7", "b" }));
        Assert.That(Split(vocabulary, "  <t>  "), Is.EqualTo(new[] { "#7" }));
    }

    [Test]
    public void SingleWordTokensNeedWordBoundaries()
    {
        var vocabulary = new AddedVocabulary([new AddedToken(9, "cat", false, SingleWord: true)], null);
        Assert.Multiple(() =>
        {
            Assert.That(Split(vocabulary, "a cat b"), Is.EqualTo(new[] { "a ", "#9", " b" }));
            Assert.That(Split(vocabulary, "cat."), Is.EqualTo(new[] { "#9", "." }));
            Assert.That(Split(vocabulary, "acat"), Is.EqualTo(new[] { "acat" }));
            Assert.That(Split(vocabulary, "cats"), Is.EqualTo(new[] { "cats" }));
            Assert.That(Split(vocabulary, "écat"), Is.EqualTo(new[] { "écat" }));
        });
    }

    [Test]
    public void NormalizedTokensAreFoundInNormalizedText()
    {
        var nfc = new UnicodeNormalizer(System.Text.NormalizationForm.FormC);
        var vocabulary = new AddedVocabulary(
            [new AddedToken(4, "é", false, Normalized: true), new AddedToken(5, "<raw é>", true, Normalized: false)], nfc);
        Assert.Multiple(() =>
        {
            Assert.That(Split(vocabulary, "xe\u0301y"), Is.EqualTo(new[] { "x", "#4", "y" }), "decomposed input is composed first");
            Assert.That(Split(vocabulary, "<raw é>"), Is.EqualTo(new[] { "#5" }));
            Assert.That(Split(vocabulary, "<raw e\u0301>"), Is.EqualTo(new[] { "<raw ", "#4", ">" }), "raw tokens match only the raw text");
        });
    }

    [Test]
    public void TextBetweenTokensIsNormalized()
    {
        var replace = new ReplaceNormalizer("x", "y");
        var vocabulary = new AddedVocabulary([new AddedToken(3, "x!", true)], replace);
        Assert.That(Split(vocabulary, "axx!xb"), Is.EqualTo(new[] { "ay", "#3", "yb" }));
    }

    [Test]
    public void RandomTextWithoutTokensComesBackWhole([Random(1, 60, 8)] int length)
    {
        var random = TestContext.CurrentContext.Random;
        string text = RandomText.CodePoints(random, length);
        var vocabulary = new AddedVocabulary([new AddedToken(1, "<|never|>", true)], null);
        Assert.That(Split(vocabulary, text), Is.EqualTo(new[] { text }));
    }
}
