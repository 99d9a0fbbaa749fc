using System.Text;
using NUnit.Framework;
using Tandem.Tokenization;

namespace Tandem.Tests.Tokenization;

[TestFixture]
public sealed class Utf8TextTests
{
    [Test]
    public void HoldsBackExactlyTheStartOfACutCharacter([Random(1, 60, 10)] int codePoints)
    {
        var random = TestContext.CurrentContext.Random;
        string text = RandomText.CodePoints(random, codePoints);
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        var starts = new HashSet<int>();
        for (int i = 0, offset = 0; i < text.Length; i += char.IsSurrogatePair(text, i) ? 2 : 1)
        {
            starts.Add(offset);
            offset += Encoding.UTF8.GetByteCount(text.AsSpan(i, char.IsSurrogatePair(text, i) ? 2 : 1));
        }

        for (int cut = 0; cut <= utf8.Length; cut++)
        {
            int lastStart = starts.Where(s => s < cut).DefaultIfEmpty(0).Max();
            int expected = cut == utf8.Length || starts.Contains(cut) ? 0 : cut - lastStart;
            Assert.That(Utf8Text.IncompleteTailLength(utf8.AsSpan(0, cut)), Is.EqualTo(expected), $"cut at byte {cut} of {Convert.ToHexString(utf8)}");
        }
    }

    [TestCase(new byte[] { 0x80 })]                 // a lone continuation byte
    [TestCase(new byte[] { 0x41, 0xBF })]
    [TestCase(new byte[] { 0xC0 })]                 // never a lead (overlong)
    [TestCase(new byte[] { 0xC1 })]
    [TestCase(new byte[] { 0xF5 })]                 // past U+10FFFF
    [TestCase(new byte[] { 0xFF })]
    [TestCase(new byte[] { 0xE0, 0x80 })]           // overlong 3-byte form
    [TestCase(new byte[] { 0xED, 0xA0 })]           // a UTF-16 surrogate
    [TestCase(new byte[] { 0xF0, 0x8F })]           // overlong 4-byte form
    [TestCase(new byte[] { 0xF4, 0x90 })]           // past U+10FFFF
    [TestCase(new byte[] { 0xE4, 0xBD, 0xA0 })]     // complete '你'
    public void NeverHoldsBackBytesThatCannotBecomeACharacter(byte[] bytes) =>
        Assert.That(Utf8Text.IncompleteTailLength(bytes), Is.EqualTo(0));

    [TestCase(new byte[] { 0xE4 }, 1)]
    [TestCase(new byte[] { 0xE4, 0xBD }, 2)]
    [TestCase(new byte[] { 0x41, 0xF0, 0x9F, 0xA6 }, 3)]
    [TestCase(new byte[] { 0xF4, 0x8F, 0xBF }, 3)]
    [TestCase(new byte[] { 0xED, 0x9F }, 2)]
    public void HoldsBackAWellFormedPrefix(byte[] bytes, int expected) =>
        Assert.That(Utf8Text.IncompleteTailLength(bytes), Is.EqualTo(expected));

    [Test]
    public void FindsALoneSurrogateWhereverItIs([Random(0, 40, 8)] int length, [Values('\uD83D', '\uDE00')] char surrogate)
    {
        var random = TestContext.CurrentContext.Random;
        string valid = RandomText.CodePoints(random, length);
        Assert.That(Utf8Text.FindInvalidUtf16(valid), Is.EqualTo(-1), "well-formed text, surrogate pairs included");

        // Insert between code points so no pair is split and the lone one cannot pair with a neighbour.
        var boundaries = Enumerable.Range(0, valid.Length + 1).Where(i => i == valid.Length || !char.IsLowSurrogate(valid[i])).ToArray();
        int at = boundaries[random.Next(boundaries.Length)];
        string broken = valid.Insert(at, surrogate.ToString());
        Assert.That(Utf8Text.FindInvalidUtf16(broken), Is.EqualTo(at));
    }

    [Test]
    public void ReversedPairIsInvalid() => Assert.That(Utf8Text.FindInvalidUtf16("a\uDE00\uD83Db"), Is.EqualTo(1));

    [Test]
    public void LossyDecodingReplacesEachIllFormedSubsequenceOnce()
    {
        // F0 9F 98 is one maximal ill-formed subsequence before 'A'; 80 is another.
        Assert.That(Utf8Text.DecodeLossy([0xF0, 0x9F, 0x98, 0x41, 0x80]), Is.EqualTo("\uFFFDA\uFFFD"));
    }
}

/// <summary>Random text for property tests, drawn from every plane and from the characters tokenizers find hard.</summary>
internal static class RandomText
{
    private static readonly string[] s_pools =
    [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " \t\n\r\u00A0\u3000",
        ".,;:!?-_=+*/\\\"'()[]{}@#$%^&|~`",
        "éèêëàâäôöûüçñÆøåßÉ\u0301\u0308\u0323",
        "日本語のテキスト中文字한국어",
        "ΑΒΓαβγДЖЯдчяאבגعربى",
        "\u200D\uFE0F",
    ];

    private static readonly string[] s_supplementary = ["🦀", "👩", "💻", "🚀", "😀", "𝐀", "𝟏", "𠀀", "𐐀"];

    /// <summary><paramref name="count"/> code points; about one in six outside the BMP.</summary>
    public static string CodePoints(NUnit.Framework.Internal.Randomizer random, int count)
    {
        var builder = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            if (random.Next(6) == 0)
            {
                builder.Append(s_supplementary[random.Next(s_supplementary.Length)]);
            }
            else
            {
                string pool = s_pools[random.Next(s_pools.Length)];
                builder.Append(pool[random.Next(pool.Length)]);
            }
        }

        return builder.ToString();
    }
}
