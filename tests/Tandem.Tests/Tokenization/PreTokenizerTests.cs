using System.Text.RegularExpressions;
using NUnit.Framework;
using Tandem.Tokenization;

namespace Tandem.Tests.Tokenization;

[TestFixture]
public sealed class PreTokenizerTests
{
    // Hugging Face's SplitDelimiterBehavior examples ("-" as the delimiter), and what its Split gives inverted.
    [TestCase("Removed", false, new[] { "the", "final", "countdown" })]
    [TestCase("Isolated", false, new[] { "the", "-", "final", "-", "-", "countdown" })]
    [TestCase("MergedWithPrevious", false, new[] { "the-", "final-", "-", "countdown" })]
    [TestCase("MergedWithNext", false, new[] { "the", "-final", "-", "-countdown" })]
    [TestCase("Contiguous", false, new[] { "the", "-", "final", "--", "countdown" })]
    [TestCase("Removed", true, new[] { "-", "-", "-" })]
    [TestCase("MergedWithPrevious", true, new[] { "the", "-final", "-", "-countdown" })]
    [TestCase("MergedWithNext", true, new[] { "the-", "final-", "-", "countdown" })]
    [TestCase("Contiguous", true, new[] { "the", "-", "final", "--", "countdown" })]
    public void SplitBehaviorsMatchHuggingFace(string behaviorName, bool invert, string[] expected)
    {
        var behavior = Enum.Parse<SplitBehavior>(behaviorName);
        foreach (var step in new[] { new SplitPreTokenizerStep("-", behavior, invert), new SplitPreTokenizerStep(new Regex("-"), behavior, invert) })
        {
            var pieces = new List<string>();
            step.Split("the-final--countdown", pieces);
            Assert.That(pieces, Is.EqualTo(expected));
        }
    }

    [TestCase("Hello world's  x 123", new[] { "Hello", " world", "'s", " ", " x", " 123" })]
    [TestCase("a\n\nb", new[] { "a", "\n", "\n", "b" })]       // \s+(?!\S) backs off before "b"
    [TestCase("x  ", new[] { "x", "  " })]
    [TestCase("a\U0001D400b \U0001D401", new[] { "a\U0001D400b", " \U0001D401" })]       // supplementary letters are \p{L}
    [TestCase("\U0001D7CF\U0001D7D0x", new[] { "\U0001D7CF\U0001D7D0", "x" })]           // supplementary digits are \p{N}
    [TestCase("I \u2764\uFE0F \U0001F980", new[] { "I", " \u2764\uFE0F", " \U0001F980" })]
    public void ByteLevelSplitsWithTheGpt2Pattern(string text, string[] expected)
    {
        var pieces = new List<string>();
        new ByteLevelPreTokenizerStep(addPrefixSpace: false, useRegex: true).Split(text, pieces);
        Assert.That(pieces, Is.EqualTo(expected));
    }

    [Test]
    public void ByteLevelPrefixesASpaceUnlessOneIsThere()
    {
        var step = new ByteLevelPreTokenizerStep(addPrefixSpace: true, useRegex: false);
        var pieces = new List<string>();
        step.Split("hi", pieces);
        step.Split(" there", pieces);
        Assert.That(pieces, Is.EqualTo(new[] { " hi", " there" }));
    }

    [Test]
    public void Qwen2PatternIsolatesEachSupplementaryDigit()
    {
        const string qwen2 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
        var step = new SplitPreTokenizerStep(new Regex(qwen2, RegexOptions.CultureInvariant), SplitBehavior.Isolated, invert: false);
        var pieces = new List<string>();
        step.Split("x\U0001D7CF\U0001D7D0 \U00020000\U00020001's", pieces);
        Assert.That(pieces, Is.EqualTo(new[] { "x", "\U0001D7CF", "\U0001D7D0", " \U00020000\U00020001", "'s" }));
    }

    [Test]
    public void SplittingKeepsEveryCharacterOnce([Random(0, 80, 10)] int length)
    {
        var random = TestContext.CurrentContext.Random;
        string text = RandomText.CodePoints(random, length);
        var pieces = new List<string>();
        new SequencePreTokenizerStep([
            new SplitPreTokenizerStep(new Regex(@"\p{N}+|\s"), SplitBehavior.MergedWithNext, invert: false),
            new ByteLevelPreTokenizerStep(addPrefixSpace: false, useRegex: true),
        ]).Split(text, pieces);
        Assert.Multiple(() =>
        {
            Assert.That(string.Concat(pieces), Is.EqualTo(text));
            Assert.That(pieces, Has.None.Empty);
        });
    }
}
