using System.Text;
using System.Text.RegularExpressions;

namespace Tandem.Tokenization;

/// <summary>
/// A Hugging Face normalizer: rewrites plain text (never added tokens matched in the raw text) before
/// pre-tokenization.
/// </summary>
internal abstract class TextNormalizer
{
    public abstract string Normalize(string text);
}

/// <summary>Runs normalizers one after the other (<c>Sequence</c>).</summary>
internal sealed class SequenceNormalizer(IReadOnlyList<TextNormalizer> steps) : TextNormalizer
{
    public override string Normalize(string text)
    {
        foreach (var step in steps)
        {
            text = step.Normalize(text);
        }

        return text;
    }
}

/// <summary>Replaces every match of a literal string or a regex (<c>Replace</c>).</summary>
internal sealed class ReplaceNormalizer : TextNormalizer
{
    private readonly string? _literal;
    private readonly Regex? _regex;
    private readonly string _content;

    public ReplaceNormalizer(string literal, string content) => (_literal, _content) = (literal, content);

    public ReplaceNormalizer(Regex regex, string content) => (_regex, _content) = (regex, content);

    public override string Normalize(string text) =>
        _regex is not null
            ? _regex.Replace(text, _content.Replace("$", "$$", StringComparison.Ordinal))
            : _literal!.Length == 0 ? text : text.Replace(_literal, _content, StringComparison.Ordinal);
}

/// <summary>Prepends a fixed string to non-empty text (<c>Prepend</c>, e.g. SentencePiece's '▁').</summary>
internal sealed class PrependNormalizer(string prefix) : TextNormalizer
{
    public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
}

/// <summary>Unicode normalization (<c>NFC</c>, <c>NFD</c>, <c>NFKC</c>, <c>NFKD</c>).</summary>
internal sealed class UnicodeNormalizer(NormalizationForm form) : TextNormalizer
{
    public NormalizationForm Form { get; } = form;

    public override string Normalize(string text) => UnicodeNormalization.Normalize(text, Form);
}
