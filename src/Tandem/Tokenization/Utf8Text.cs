using System.Text;

namespace Tandem.Tokenization;

/// <summary>UTF-16 validation for input text and UTF-8 helpers for decoded bytes.</summary>
internal static class Utf8Text
{
    // Lossy decoding: each maximal ill-formed subsequence becomes one U+FFFD (the Unicode "best
    // practice" that Rust's String::from_utf8_lossy, used by Hugging Face's decoders, follows too).
    private static readonly UTF8Encoding s_lossy = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    /// <summary>Throws when <paramref name="text"/> holds a lone surrogate, which has no UTF-8 form.</summary>
    public static void ThrowIfInvalidUtf16(string text, string paramName)
    {
        int index = FindInvalidUtf16(text);
        if (index >= 0)
        {
            throw new ArgumentException(
                $"The text is invalid UTF-16 and so has no UTF-8 form: lone surrogate U+{(int)text[index]:X4} at index {index}. Invalid UTF-8/UTF-16 input is rejected, never replaced.",
                paramName);
        }
    }

    /// <summary>The index of the first unpaired surrogate, or -1.</summary>
    public static int FindInvalidUtf16(ReadOnlySpan<char> text)
    {
        int i = text.IndexOfAnyInRange('\uD800', '\uDFFF');
        while (i >= 0 && i < text.Length)
        {
            if (!char.IsHighSurrogate(text[i]) || i + 1 == text.Length || !char.IsLowSurrogate(text[i + 1]))
            {
                return i;
            }

            int next = text[(i + 2)..].IndexOfAnyInRange('\uD800', '\uDFFF');
            i = next < 0 ? -1 : i + 2 + next;
        }

        return -1;
    }

    public static string DecodeLossy(ReadOnlySpan<byte> utf8) => s_lossy.GetString(utf8);

    /// <summary>
    /// How many bytes at the end of <paramref name="utf8"/> begin a well-formed sequence that is not yet
    /// complete (0 to 3). Those are the bytes a streaming decoder holds back: whatever follows may complete
    /// them, whereas any other ill-formed bytes decode to U+FFFD no matter what follows.
    /// </summary>
    public static int IncompleteTailLength(ReadOnlySpan<byte> utf8)
    {
        // A lead byte can be at most 3 bytes from the end of an incomplete sequence.
        for (int back = 1; back <= Math.Min(3, utf8.Length); back++)
        {
            byte b = utf8[^back];
            if (b is >= 0x80 and <= 0xBF)
            {
                continue; // a continuation byte: keep looking for its lead
            }

            int needed = b switch
            {
                >= 0xC2 and <= 0xDF => 2,
                >= 0xE0 and <= 0xEF => 3,
                >= 0xF0 and <= 0xF4 => 4,
                _ => 0, // ASCII, or a byte that never starts a sequence
            };
            if (needed <= back)
            {
                return 0; // complete, or not a lead: nothing to wait for
            }

            // The byte after the lead has a narrower range for some leads (no overlongs, surrogates or
            // code points past U+10FFFF); later continuation bytes are 0x80..0xBF.
            if (back >= 2)
            {
                byte second = utf8[^(back - 1)];
                bool secondOk = b switch
                {
                    0xE0 => second >= 0xA0,
                    0xED => second <= 0x9F,
                    0xF0 => second >= 0x90,
                    0xF4 => second <= 0x8F,
                    _ => true,
                };
                if (!secondOk)
                {
                    return 0;
                }
            }

            return back;
        }

        return 0;
    }
}
