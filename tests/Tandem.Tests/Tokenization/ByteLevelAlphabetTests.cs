using System.Text;
using NUnit.Framework;
using Tandem.Tokenization;

namespace Tandem.Tests.Tokenization;

[TestFixture]
public sealed class ByteLevelAlphabetTests
{
    [Test]
    public void EveryByteHasItsOwnCharacterAndMapsBack()
    {
        var seen = new HashSet<char>();
        for (int b = 0; b < 256; b++)
        {
            char c = ByteLevelAlphabet.ToChar((byte)b);
            Assert.That(seen.Add(c), Is.True, $"byte {b:X2} shares character U+{(int)c:X4}");
            Assert.That(ByteLevelAlphabet.TryGetByte(c, out byte back) && back == b, Is.True, $"byte {b:X2}");
        }
    }

    [TestCase(0x20, '\u0120')] // space reads 'Ġ'
    [TestCase(0x0A, '\u010A')] // newline reads 'Ċ'
    [TestCase(0x00, '\u0100')]
    [TestCase(0x7F, '\u0121')]
    [TestCase(0xAD, '\u0143')] // soft hyphen, the last byte moved
    [TestCase(0x41, 'A')]
    [TestCase(0xE9, '\u00E9')]
    public void MatchesGpt2BytesToUnicode(int value, char expected) =>
        Assert.That(ByteLevelAlphabet.ToChar((byte)value), Is.EqualTo(expected));

    [Test]
    public void PrintableLatin1BytesStandForThemselves()
    {
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE;
            Assert.That(ByteLevelAlphabet.ToChar((byte)b) == (char)b, Is.EqualTo(printable), $"byte {b:X2}");
        }
    }

    [Test]
    public void RandomBytesRoundTripThroughTheAlphabet([Random(1, 300, 8)] int length)
    {
        var random = TestContext.CurrentContext.Random;
        var bytes = new byte[length];
        random.NextBytes(bytes);
        var chars = new char[length];
        ByteLevelAlphabet.Encode(bytes, chars);
        Assert.That(ByteLevelAlphabet.Decode(new string(chars)), Is.EqualTo(bytes));
    }

    [Test]
    public void TextOutsideTheAlphabetDecodesAsItsOwnUtf8()
    {
        // A real space is not an alphabet character, so Hugging Face keeps such a token's text as is.
        const string token = "<|im start|>";
        Assert.That(ByteLevelAlphabet.Decode(token), Is.EqualTo(Encoding.UTF8.GetBytes(token)));
        Assert.That(ByteLevelAlphabet.TryGetByte(' ', out _), Is.False);
        Assert.That(ByteLevelAlphabet.TryGetByte('\u4E2D', out _), Is.False);
    }
}
