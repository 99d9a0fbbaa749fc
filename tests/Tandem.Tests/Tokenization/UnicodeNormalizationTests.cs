using System.Globalization;
using System.Text;
using NUnit.Framework;
using Tandem.Tokenization;

namespace Tandem.Tests.Tokenization;

[TestFixture]
public sealed class UnicodeNormalizationTests
{
    // Characters whose normalization is non-trivial: composable bases, marks of several combining
    // classes, Hangul jamo and syllables, singletons, composition exclusions, non-starter decompositions.
    private static readonly string[] s_tricky =
    [
        "a", "e", "o", "A", "C", "q", "s", "\u00C5", "\u00E9", "\u1E0B", "\u1E0D",
        "\u0301", "\u0300", "\u0302", "\u0307", "\u0308", "\u030A", "\u0323", "\u0327", "\u0345", "\u05B0", "\u093C",
        "\u1100", "\u1161", "\u11A8", "\uAC00", "\uAC01", "\uD7A3",
        "\u212B", "\u2126", "\uF900", "\u0958", "\u0344", "\u0F73", "\u0387",
        "\u0CC6", "\u0CC2", "\u0CD5", "\u09C7", "\u09BE", "\U0001D15E", "\U0002F800", "\U000110AB",
    ];

    [TestCase("e\u0301", "\u00E9")]
    [TestCase("\u212B", "\u00C5")]                    // Angstrom sign: a singleton
    [TestCase("\u1E0B\u0323", "\u1E0D\u0307")]        // marks reorder, then the dot below composes first
    [TestCase("q\u0307\u0323", "q\u0323\u0307")]      // no composite: canonical order only
    [TestCase("\u1100\u1161\u11A8", "\uAC01")]        // Hangul L V T
    [TestCase("\uAC00\u11A8", "\uAC01")]              // Hangul LV + T
    [TestCase("\u0958", "\u0915\u093C")]              // a composition exclusion stays decomposed
    [TestCase("\uF900", "\u8C48")]                    // CJK compatibility ideograph: a singleton
    [TestCase("\u0344", "\u0308\u0301")]              // a non-starter decomposition
    [TestCase("\u0301e", "\u0301e")]                  // a leading mark composes with nothing
    [TestCase("a\u0308\u0301", "\u00E4\u0301")]
    [TestCase("Hello, world", "Hello, world")]
    public void ComposesAsTheStandardSays(string input, string nfc) =>
        Assert.That(UnicodeNormalization.ToNfc(input), Is.EqualTo(nfc));

    [TestCase("\u00C5", "A\u030A")]
    [TestCase("\uAC01", "\u1100\u1161\u11A8")]
    [TestCase("\u1E0D\u0307", "d\u0323\u0307")]
    [TestCase("\u01FA", "A\u030A\u0301")]             // two levels of decomposition
    public void DecomposesAsTheStandardSays(string input, string nfd) =>
        Assert.That(UnicodeNormalization.ToNfd(input), Is.EqualTo(nfd));

    [Test]
    public void NormalFormsAreStableAndConsistent([Random(0, 30, 16)] int length)
    {
        var random = TestContext.CurrentContext.Random;
        string text = string.Concat(Enumerable.Range(0, length).Select(_ => s_tricky[random.Next(s_tricky.Length)]));
        string nfc = UnicodeNormalization.ToNfc(text);
        string nfd = UnicodeNormalization.ToNfd(text);
        Assert.Multiple(() =>
        {
            Assert.That(UnicodeNormalization.ToNfc(nfc), Is.EqualTo(nfc), "NFC is idempotent");
            Assert.That(UnicodeNormalization.ToNfd(nfd), Is.EqualTo(nfd), "NFD is idempotent");
            Assert.That(UnicodeNormalization.ToNfc(nfd), Is.EqualTo(nfc), "NFC(NFD(s)) = NFC(s)");
            Assert.That(UnicodeNormalization.ToNfd(nfc), Is.EqualTo(nfd), "NFD(NFC(s)) = NFD(s)");
            Assert.That(IsCanonicallyOrdered(nfd), Is.True, "marks in NFD are in canonical order");
            Assert.That(nfd.EnumerateRunes().All(r => UnicodeNormalization.ToNfd(r.ToString()) == r.ToString()), Is.True, "NFD leaves nothing decomposable");
        });
    }

    [Test]
    public void CombiningClassesOfKnownMarks()
    {
        Assert.Multiple(() =>
        {
            Assert.That(UnicodeNormalization.CombiningClass('a'), Is.EqualTo(0));
            Assert.That(UnicodeNormalization.CombiningClass(0x0301), Is.EqualTo(230));
            Assert.That(UnicodeNormalization.CombiningClass(0x0323), Is.EqualTo(220));
            Assert.That(UnicodeNormalization.CombiningClass(0x0327), Is.EqualTo(202));
            Assert.That(UnicodeNormalization.CombiningClass(0x093C), Is.EqualTo(7));
            Assert.That(UnicodeNormalization.CombiningClass(0x0345), Is.EqualTo(240));
        });
    }

    [Test]
    public void AsciiAndLatin1PassThroughUntouchedByNfc()
    {
        string text = new(Enumerable.Range(0, 0x300).Select(i => (char)i).ToArray());
        Assert.That(ReferenceEquals(UnicodeNormalization.ToNfc(text), text), Is.True);
    }

    [Test]
    public void StandInsForSupplementaryCharactersKeepTheirCategory()
    {
        foreach (var category in Enum.GetValues<UnicodeCategory>().Where(c => c != UnicodeCategory.Surrogate))
        {
            char standIn = SupplementaryShadow.StandIn(category);
            Assert.That(CharUnicodeInfo.GetUnicodeCategory(standIn), Is.EqualTo(category), $"U+{(int)standIn:X4}");
            Assert.That(standIn, Is.GreaterThan('\u007F'), "stand-ins stay out of ASCII, where pattern literals live");
        }
    }

    private static bool IsCanonicallyOrdered(string text)
    {
        int previous = 0;
        foreach (Rune rune in text.EnumerateRunes())
        {
            int ccc = UnicodeNormalization.CombiningClass(rune.Value);
            if (ccc != 0 && previous > ccc)
            {
                return false;
            }

            previous = ccc;
        }

        return true;
    }
}
