using System.Text.RegularExpressions;

namespace Tandem.Tokenization;

/// <summary>
/// The Hugging Face <c>ByteLevel</c> pre-tokenizer's splitting part: optionally prefixes a space and cuts
/// with GPT-2's pattern. (Its other part, rewriting bytes as alphabet characters, happens in
/// <see cref="ByteLevelBpeEncoder"/>, right before the merges.)
/// </summary>
internal sealed class ByteLevelPreTokenizerStep : PreTokenizerStep
{
    /// <summary>GPT-2's pre-tokenization pattern, as Hugging Face's ByteLevel pre-tokenizer declares it.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static readonly SplitPreTokenizerStep s_gpt2Split =
        new(new Regex(Gpt2Pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant), SplitBehavior.Isolated, invert: false);

    private readonly bool _addPrefixSpace;
    private readonly bool _useRegex;

    public ByteLevelPreTokenizerStep(bool addPrefixSpace, bool useRegex)
    {
        _addPrefixSpace = addPrefixSpace;
        _useRegex = useRegex;
    }

    public override void Split(string piece, List<string> output)
    {
        if (_addPrefixSpace && !piece.StartsWith(' '))
        {
            piece = " " + piece;
        }

        if (_useRegex)
        {
            s_gpt2Split.Split(piece, output);
        }
        else if (piece.Length > 0)
        {
            output.Add(piece);
        }
    }
}
