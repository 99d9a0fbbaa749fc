using Tandem.Tokenization;

namespace Tandem;

/// <summary>
/// Decodes a stream of token ids into text as they are generated. A character whose UTF-8 bytes are split
/// across tokens (emoji, CJK through byte tokens) is held back until its last byte arrives, so every
/// returned string is complete text; <see cref="Append"/> outputs concatenated with <see cref="Flush"/>'s
/// equal <see cref="TandemTokenizer.Decode"/> of the whole sequence.
/// </summary>
/// <remarks>Not thread-safe: one decoder follows one sequence.</remarks>
public sealed class IncrementalDecoder
{
    private readonly TandemTokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private byte[] _pending = new byte[16];
    private int _pendingLength;
    private bool _atStart = true;

    internal IncrementalDecoder(TandemTokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Adds one token and returns the text it completes (empty while a character is incomplete).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is outside the vocabulary.</exception>
    public string Append(int id)
    {
        ReadOnlySpan<byte> bytes = _tokenizer.TokenBytes(id, _skipSpecialTokens);
        if (bytes.IsEmpty)
        {
            return string.Empty;
        }

        if (_atStart)
        {
            _atStart = false;
            if (_tokenizer.StripsLeadingSpace && bytes[0] == (byte)' ')
            {
                bytes = bytes[1..];
            }
        }

        if (_pendingLength + bytes.Length > _pending.Length)
        {
            Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _pendingLength + bytes.Length));
        }

        bytes.CopyTo(_pending.AsSpan(_pendingLength));
        _pendingLength += bytes.Length;

        int complete = _pendingLength - Utf8Text.IncompleteTailLength(_pending.AsSpan(0, _pendingLength));
        if (complete == 0)
        {
            return string.Empty;
        }

        string text = Utf8Text.DecodeLossy(_pending.AsSpan(0, complete));
        _pending.AsSpan(complete, _pendingLength - complete).CopyTo(_pending);
        _pendingLength -= complete;
        return text;
    }

    /// <summary>
    /// Ends the sequence: returns the held-back bytes of an unfinished character as U+FFFD (empty when
    /// nothing is held back) and readies the decoder for a new sequence.
    /// </summary>
    public string Flush()
    {
        string text = _pendingLength == 0 ? string.Empty : Utf8Text.DecodeLossy(_pending.AsSpan(0, _pendingLength));
        _pendingLength = 0;
        _atStart = true;
        return text;
    }
}
