using System.Runtime.InteropServices;
using System.Text;

namespace Tandem;

/// <summary>UTF-8 conversions at the native boundary.</summary>
internal static unsafe class Utf8
{
    // Strict: a lone surrogate is an error, not a silent U+FFFD that would name another file.
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>A NUL-terminated UTF-8 copy of <paramref name="value"/> for a <c>const char*</c> parameter.</summary>
    public static byte[] ToNullTerminated(string value, string paramName)
    {
        if (value.Contains('\0'))
        {
            throw new ArgumentException($"{paramName} contains a NUL character", paramName);
        }
        try
        {
            var bytes = new byte[Strict.GetByteCount(value) + 1];
            Strict.GetBytes(value, bytes);
            return bytes;
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException($"{paramName} is not valid UTF-16 (an unpaired surrogate at index {e.Index})", paramName, e);
        }
    }

    /// <summary>
    /// Throws <see cref="ArgumentException"/> if <paramref name="text"/> holds an unpaired surrogate: such a
    /// string has no UTF-8 form, and tokenizing a silently replaced character would score other text.
    /// </summary>
    public static void RequireWellFormed(string text, string paramName)
    {
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                throw new ArgumentException(
                    $"{paramName} is not valid UTF-16: an unpaired surrogate U+{(int)c:X4} at index {i}", paramName);
            }
        }
    }

    /// <summary>A managed copy of a NUL-terminated UTF-8 string; "" for NULL.</summary>
    public static string ToManaged(byte* value) => value is null ? string.Empty : Marshal.PtrToStringUTF8((nint)value) ?? string.Empty;
}
