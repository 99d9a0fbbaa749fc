namespace Tandem.Tokenization;

/// <summary>
/// The GPT-2 byte-to-character alphabet that byte-level BPE vocabularies are written in.
/// </summary>
/// <remarks>
/// Byte-level BPE works on UTF-8 bytes, but its vocabulary is stored as JSON strings, so every byte is
/// given a printable character: the 188 bytes that are already printable Latin-1 characters
/// ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves and the other 68 (controls, space, DEL, NBSP,
/// soft hyphen) are moved, in byte order, to U+0100 and up. A space therefore reads 'Ġ' (U+0120) and a
/// newline 'Ċ' (U+010A). The table is fixed by GPT-2's <c>bytes_to_unicode</c> and shared by every
/// model that declares a ByteLevel pre-tokenizer or decoder.
/// </remarks>
internal static class ByteLevelAlphabet
{
    /// <summary>Not a byte: marks characters outside the alphabet in <see cref="s_charToByte"/>.</summary>
    private const short NotAByte = -1;

    // Every mapped character is below U+0144 (256 + 68), so the inverse fits a small dense array.
    private const int CharLimit = 256 + 68;

    private static readonly char[] s_byteToChar = BuildByteToChar();
    private static readonly short[] s_charToByte = BuildCharToByte(s_byteToChar);

    /// <summary>The character that stands for <paramref name="value"/> in the vocabulary.</summary>
    public static char ToChar(byte value) => s_byteToChar[value];

    /// <summary>The byte that <paramref name="c"/> stands for, or false when it is not in the alphabet.</summary>
    public static bool TryGetByte(char c, out byte value)
    {
        if (c < CharLimit && s_charToByte[c] != NotAByte)
        {
            value = (byte)s_charToByte[c];
            return true;
        }

        value = 0;
        return false;
    }

    /// <summary>Writes each UTF-8 byte of <paramref name="utf8"/> as its alphabet character.</summary>
    public static void Encode(ReadOnlySpan<byte> utf8, Span<char> destination)
    {
        for (int i = 0; i < utf8.Length; i++)
        {
            destination[i] = s_byteToChar[utf8[i]];
        }
    }

    /// <summary>
    /// The bytes a vocabulary string stands for, as the Hugging Face ByteLevel decoder reads it: when
    /// every character is in the alphabet, the bytes they stand for; otherwise (an added token such as
    /// "&lt;|im start|&gt;" with a real space) the string's own UTF-8 bytes.
    /// </summary>
    public static byte[] Decode(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            if (!TryGetByte(token[i], out bytes[i]))
            {
                return System.Text.Encoding.UTF8.GetBytes(token);
            }
        }

        return bytes;
    }

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)next++;
        }

        return map;
    }

    private static short[] BuildCharToByte(char[] byteToChar)
    {
        var inverse = new short[CharLimit];
        Array.Fill(inverse, NotAByte);
        for (int b = 0; b < 256; b++)
        {
            inverse[byteToChar[b]] = (short)b;
        }

        return inverse;
    }
}
