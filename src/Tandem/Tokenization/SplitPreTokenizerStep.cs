using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Tandem.Tokenization;

/// <summary>What a <c>Split</c> pre-tokenizer does with the text its pattern matches.</summary>
internal enum SplitBehavior
{
    /// <summary>Each match is a piece of its own.</summary>
    Isolated,

    /// <summary>Matches are dropped.</summary>
    Removed,

    /// <summary>Each match is glued to the end of the piece before it.</summary>
    MergedWithPrevious,

    /// <summary>Each match is glued to the start of the piece after it.</summary>
    MergedWithNext,

    /// <summary>Runs of consecutive matches become one piece.</summary>
    Contiguous,
}

/// <summary>
/// The Hugging Face <c>Split</c> pre-tokenizer: cuts text at the matches of a regex or a literal string.
/// </summary>
/// <remarks>
/// Hugging Face runs the pattern with Oniguruma over code points; .NET's Regex runs over UTF-16 units, so
/// a character outside the BMP would be seen as two surrogates (category Cs) and escape classes such as
/// <c>\p{L}</c> or <c>\p{N}</c>. The pattern is therefore run over a shadow of the text in which every
/// supplementary character is replaced by one BMP stand-in of the same general category, and match
/// positions are mapped back.
/// </remarks>
internal sealed class SplitPreTokenizerStep : PreTokenizerStep
{
    private readonly Regex? _regex;
    private readonly string? _literal;
    private readonly SplitBehavior _behavior;
    private readonly bool _invert;

    public SplitPreTokenizerStep(Regex regex, SplitBehavior behavior, bool invert)
    {
        _regex = regex;
        _behavior = behavior;
        _invert = invert;
    }

    public SplitPreTokenizerStep(string literal, SplitBehavior behavior, bool invert)
    {
        _literal = literal;
        _behavior = behavior;
        _invert = invert;
    }

    public override void Split(string piece, List<string> output)
    {
        if (_behavior == SplitBehavior.Isolated && _regex is not null)
        {
            SplitIsolated(piece, output); // the common case (GPT-2, Llama 3, Qwen2), without intermediate lists
            return;
        }

        var segments = FindSegments(piece);
        if (_invert)
        {
            for (int i = 0; i < segments.Count; i++)
            {
                segments[i] = segments[i] with { IsMatch = !segments[i].IsMatch };
            }
        }

        foreach (var (start, end, _) in ApplyBehavior(segments, _behavior))
        {
            if (end > start)
            {
                output.Add(piece[start..end]);
            }
        }
    }

    /// <summary>Isolated: every match and every stretch between matches is a piece (inverting changes nothing).</summary>
    private void SplitIsolated(string text, List<string> output)
    {
        var (shadow, toOriginal) = SupplementaryShadow.Create(text);
        int previous = 0;
        foreach (ValueMatch match in _regex!.EnumerateMatches(shadow))
        {
            int start = toOriginal is null ? match.Index : toOriginal[match.Index];
            int end = toOriginal is null ? match.Index + match.Length : toOriginal[match.Index + match.Length];
            if (start > previous)
            {
                output.Add(text[previous..start]);
            }

            if (end > start)
            {
                output.Add(text[start..end]);
            }

            previous = end;
        }

        if (previous < text.Length)
        {
            output.Add(previous == 0 ? text : text[previous..]);
        }
    }

    /// <summary>Cuts <paramref name="text"/> into matched and unmatched segments that cover it in order.</summary>
    private List<Segment> FindSegments(string text)
    {
        var segments = new List<Segment>();
        int previous = 0;
        void AddMatch(int start, int end)
        {
            // An empty match still cuts the text around it, as it does in Hugging Face; the empty piece
            // itself is dropped at the end.
            if (start > previous)
            {
                segments.Add(new Segment(previous, start, false));
            }

            segments.Add(new Segment(start, end, true));
            previous = end;
        }

        if (_regex is not null)
        {
            var (shadow, toOriginal) = SupplementaryShadow.Create(text);
            foreach (ValueMatch match in _regex.EnumerateMatches(shadow))
            {
                int start = match.Index, end = match.Index + match.Length;
                AddMatch(toOriginal is null ? start : toOriginal[start], toOriginal is null ? end : toOriginal[end]);
            }
        }
        else if (_literal!.Length > 0)
        {
            for (int at = text.IndexOf(_literal, StringComparison.Ordinal); at >= 0; at = text.IndexOf(_literal, at + _literal.Length, StringComparison.Ordinal))
            {
                AddMatch(at, at + _literal.Length);
            }
        }

        if (previous < text.Length)
        {
            segments.Add(new Segment(previous, text.Length, false));
        }

        return segments;
    }

    /// <summary>Turns segments into pieces (start, end, keep); mirrors <c>NormalizedString::split</c>.</summary>
    private static List<Segment> ApplyBehavior(List<Segment> segments, SplitBehavior behavior)
    {
        var pieces = new List<Segment>(segments.Count);
        switch (behavior)
        {
            case SplitBehavior.Isolated:
                pieces.AddRange(segments);
                break;

            case SplitBehavior.Removed:
                pieces.AddRange(segments.Where(s => !s.IsMatch));
                break;

            case SplitBehavior.Contiguous:
            {
                bool previousMatch = false;
                foreach (var s in segments)
                {
                    if (s.IsMatch == previousMatch && pieces.Count > 0)
                    {
                        pieces[^1] = pieces[^1] with { End = s.End };
                    }
                    else
                    {
                        pieces.Add(s);
                    }

                    previousMatch = s.IsMatch;
                }

                break;
            }

            case SplitBehavior.MergedWithPrevious:
            {
                bool previousMatch = false;
                foreach (var s in segments)
                {
                    if (s.IsMatch && !previousMatch && pieces.Count > 0)
                    {
                        pieces[^1] = pieces[^1] with { End = s.End };
                    }
                    else
                    {
                        pieces.Add(s);
                    }

                    previousMatch = s.IsMatch;
                }

                break;
            }

            case SplitBehavior.MergedWithNext:
            {
                bool previousMatch = false;
                for (int i = segments.Count - 1; i >= 0; i--)
                {
                    var s = segments[i];
                    if (s.IsMatch && !previousMatch && pieces.Count > 0)
                    {
                        pieces[^1] = pieces[^1] with { Start = s.Start };
                    }
                    else
                    {
                        pieces.Add(s);
                    }

                    previousMatch = s.IsMatch;
                }

                pieces.Reverse();
                break;
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(behavior), behavior, null);
        }

        return pieces;
    }

    private readonly record struct Segment(int Start, int End, bool IsMatch);
}

/// <summary>
/// A copy of a text in which each supplementary character (a surrogate pair) is one BMP character of the
/// same Unicode general category, so that a .NET regex classifies it as Hugging Face's does.
/// </summary>
internal static class SupplementaryShadow
{
    /// <summary>
    /// The shadow text and, when it differs from <paramref name="text"/>, the map from each shadow index
    /// (and the end) to the original UTF-16 index.
    /// </summary>
    public static (string Shadow, int[]? ToOriginal) Create(string text)
    {
        int firstSurrogate = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (firstSurrogate < 0)
        {
            return (text, null);
        }

        var shadow = new StringBuilder(text.Length);
        var toOriginal = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length;)
        {
            toOriginal.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                shadow.Append(StandIn(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]))));
                i += 2;
            }
            else
            {
                shadow.Append(text[i]);
                i++;
            }
        }

        toOriginal.Add(text.Length);
        return (shadow.ToString(), [.. toOriginal]);
    }

    /// <summary>A BMP character of <paramref name="category"/>, chosen outside ASCII so that no literal in a pattern matches it.</summary>
    public static char StandIn(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter => '\u00C4',
        UnicodeCategory.LowercaseLetter => '\u00E4',
        UnicodeCategory.TitlecaseLetter => '\u01C5',
        UnicodeCategory.ModifierLetter => '\u02B0',
        UnicodeCategory.OtherLetter => '\u05D0',
        UnicodeCategory.NonSpacingMark => '\u0300',
        UnicodeCategory.SpacingCombiningMark => '\u0903',
        UnicodeCategory.EnclosingMark => '\u0488',
        UnicodeCategory.DecimalDigitNumber => '\u0660',
        UnicodeCategory.LetterNumber => '\u2160',
        UnicodeCategory.OtherNumber => '\u00B2',
        UnicodeCategory.SpaceSeparator => '\u3000',
        UnicodeCategory.LineSeparator => '\u2028',
        UnicodeCategory.ParagraphSeparator => '\u2029',
        UnicodeCategory.Control => '\u0085',
        UnicodeCategory.Format => '\u00AD',
        UnicodeCategory.PrivateUse => '\uE000',
        UnicodeCategory.ConnectorPunctuation => '\u203F',
        UnicodeCategory.DashPunctuation => '\u2010',
        UnicodeCategory.OpenPunctuation => '\u2045',
        UnicodeCategory.ClosePunctuation => '\u2046',
        UnicodeCategory.InitialQuotePunctuation => '\u00AB',
        UnicodeCategory.FinalQuotePunctuation => '\u00BB',
        UnicodeCategory.OtherPunctuation => '\u00A1',
        UnicodeCategory.MathSymbol => '\u00AC',
        UnicodeCategory.CurrencySymbol => '\u00A2',
        UnicodeCategory.ModifierSymbol => '\u00B4',
        UnicodeCategory.OtherSymbol => '\u00A6',
        _ => '\u0378', // unassigned
    };
}
