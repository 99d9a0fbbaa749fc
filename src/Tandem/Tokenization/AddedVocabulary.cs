using System.Globalization;
using System.Text;

namespace Tandem.Tokenization;

/// <summary>
/// Splits text on added tokens exactly as Hugging Face's <c>AddedVocabulary</c> does: tokens that are
/// not "normalized" are found first in the raw text; the text between them is normalized; then the
/// "normalized" tokens are found in each normalized stretch. Matching is leftmost-longest and honours
/// each token's single_word, lstrip and rstrip flags.
/// </summary>
internal sealed class AddedVocabulary
{
    private readonly TokenMatcher _rawMatcher;
    private readonly TokenMatcher _normalizedMatcher;
    private readonly TextNormalizer? _normalizer;

    public AddedVocabulary(IReadOnlyList<AddedToken> tokens, TextNormalizer? normalizer)
    {
        Tokens = tokens;
        _normalizer = normalizer;
        _rawMatcher = new TokenMatcher(tokens.Where(t => !t.Normalized).Select(t => (t.Content, t)));

        // "Normalized" tokens are looked for in normalized text, so their patterns are normalized too
        // (a SentencePiece-style normalizer turns the spaces of "<my token>" into '▁').
        _normalizedMatcher = new TokenMatcher(tokens.Where(t => t.Normalized)
            .Select(t => (normalizer is null ? t.Content : normalizer.Normalize(t.Content), t)));
    }

    /// <summary>All added tokens, in declaration order.</summary>
    public IReadOnlyList<AddedToken> Tokens { get; }

    /// <summary>Appends the pieces of <paramref name="text"/> to <paramref name="output"/>; empty plain stretches are dropped.</summary>
    public void Split(string text, List<TextPiece> output)
    {
        foreach (var (start, end, token) in _rawMatcher.FindMatches(text))
        {
            if (token is not null)
            {
                output.Add(TextPiece.Token(token.Id));
                continue;
            }

            string stretch = text[start..end];
            string normalized = _normalizer is null ? stretch : _normalizer.Normalize(stretch);
            foreach (var (nStart, nEnd, nToken) in _normalizedMatcher.FindMatches(normalized))
            {
                if (nToken is not null)
                {
                    output.Add(TextPiece.Token(nToken.Id));
                }
                else if (nEnd > nStart)
                {
                    output.Add(TextPiece.Plain(normalized[nStart..nEnd]));
                }
            }
        }
    }

    /// <summary>Leftmost-longest matching of a fixed set of token strings.</summary>
    private sealed class TokenMatcher
    {
        // Candidates keyed by their first UTF-16 unit, longest first, so the first hit at a position is
        // the longest one; ties keep declaration order, as Aho-Corasick's leftmost-longest does.
        private readonly Dictionary<char, (string Pattern, AddedToken Token)[]> _byFirstChar;

        public TokenMatcher(IEnumerable<(string Pattern, AddedToken Token)> patterns)
        {
            _byFirstChar = patterns
                .Where(p => p.Pattern.Length > 0)
                .GroupBy(p => p.Pattern[0])
                .ToDictionary(g => g.Key, g => g.OrderByDescending(p => p.Pattern.Length).ToArray());
        }

        /// <summary>
        /// Splits <paramref name="sentence"/> into (start, end, token) ranges that cover it in order;
        /// token is null for the text between matches. Mirrors <c>AddedVocabulary::find_matches</c>,
        /// including how lstrip/rstrip widen a match.
        /// </summary>
        public List<(int Start, int End, AddedToken? Token)> FindMatches(string sentence)
        {
            var splits = new List<(int, int, AddedToken?)>();
            int startOffset = 0;
            if (_byFirstChar.Count > 0)
            {
                int position = 0;
                while (position < sentence.Length)
                {
                    if (!TryMatchAt(sentence, position, out var pattern, out var token))
                    {
                        position++;
                        continue;
                    }

                    int start = position;
                    int stop = position + pattern.Length;
                    position = stop; // matches never overlap, whatever the strip flags do below

                    if (token.SingleWord && (EndsWithWordCharacter(sentence.AsSpan(0, start)) || StartsWithWordCharacter(sentence.AsSpan(stop))))
                    {
                        continue;
                    }

                    if (token.LeftStrip)
                    {
                        int newStart = start;
                        while (newStart > 0 && IsWhiteSpaceBefore(sentence, newStart, out int width))
                        {
                            newStart -= width;
                        }

                        // An earlier match may already have eaten that whitespace.
                        start = Math.Max(newStart, startOffset);
                    }

                    if (token.RightStrip)
                    {
                        while (stop < sentence.Length && IsWhiteSpaceAt(sentence, stop, out int width))
                        {
                            stop += width;
                        }
                    }

                    if (startOffset < start)
                    {
                        splits.Add((startOffset, start, null));
                    }

                    splits.Add((start, stop, token));
                    startOffset = stop;
                }
            }

            if (startOffset < sentence.Length || splits.Count == 0)
            {
                splits.Add((Math.Min(startOffset, sentence.Length), sentence.Length, null));
            }

            return splits;
        }

        private bool TryMatchAt(string sentence, int position, out string pattern, out AddedToken token)
        {
            if (_byFirstChar.TryGetValue(sentence[position], out var candidates))
            {
                foreach (var candidate in candidates)
                {
                    if (sentence.AsSpan(position).StartsWith(candidate.Pattern, StringComparison.Ordinal))
                    {
                        (pattern, token) = candidate;
                        return true;
                    }
                }
            }

            pattern = string.Empty;
            token = null!;
            return false;
        }
    }

    // Whitespace and word characters are judged per code point (Rust's char), not per UTF-16 unit.
    private static bool IsWhiteSpaceBefore(string s, int index, out int width)
    {
        Rune.DecodeLastFromUtf16(s.AsSpan(0, index), out Rune rune, out width);
        return Rune.IsWhiteSpace(rune);
    }

    private static bool IsWhiteSpaceAt(string s, int index, out int width)
    {
        Rune.DecodeFromUtf16(s.AsSpan(index), out Rune rune, out width);
        return Rune.IsWhiteSpace(rune);
    }

    private static bool EndsWithWordCharacter(ReadOnlySpan<char> text) =>
        !text.IsEmpty && Rune.DecodeLastFromUtf16(text, out Rune rune, out _) == System.Buffers.OperationStatus.Done && IsWordCharacter(rune);

    private static bool StartsWithWordCharacter(ReadOnlySpan<char> text) =>
        !text.IsEmpty && Rune.DecodeFromUtf16(text, out Rune rune, out _) == System.Buffers.OperationStatus.Done && IsWordCharacter(rune);

    /// <summary>The regex <c>\w</c> class: letters, marks, decimal digits, connector punctuation, joiners.</summary>
    private static bool IsWordCharacter(Rune rune)
    {
        if (rune.Value is 0x200C or 0x200D)
        {
            return true;
        }

        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
                or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
                or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ConnectorPunctuation => true,
            _ => false,
        };
    }
}
