namespace Tandem.Tokenization;

/// <summary>
/// One Hugging Face pre-tokenizer: cuts a piece of normalized text into smaller pieces that the BPE
/// model then encodes independently (merges never cross a cut).
/// </summary>
internal abstract class PreTokenizerStep
{
    /// <summary>Appends the pieces of <paramref name="piece"/> to <paramref name="output"/>, in order, none empty.</summary>
    public abstract void Split(string piece, List<string> output);
}

/// <summary>Applies pre-tokenizers one after the other, each to every piece the previous one made (<c>Sequence</c>).</summary>
internal sealed class SequencePreTokenizerStep(IReadOnlyList<PreTokenizerStep> steps) : PreTokenizerStep
{
    public IReadOnlyList<PreTokenizerStep> Steps { get; } = steps;

    public override void Split(string piece, List<string> output)
    {
        var current = new List<string> { piece };
        var next = new List<string>();
        foreach (var step in Steps)
        {
            next.Clear();
            foreach (string p in current)
            {
                step.Split(p, next);
            }

            (current, next) = (next, current);
        }

        output.AddRange(current);
    }
}
