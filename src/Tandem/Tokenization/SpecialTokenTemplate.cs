namespace Tandem.Tokenization;

/// <summary>
/// What the post-processor adds around an encoded single sequence when special tokens are requested:
/// e.g. BOS before it (Llama 2, Llama 3) or nothing at all (Qwen2).
/// </summary>
internal sealed class SpecialTokenTemplate(IReadOnlyList<int> prefix, IReadOnlyList<int> suffix)
{
    public static SpecialTokenTemplate None { get; } = new([], []);

    /// <summary>Ids placed before the text's ids.</summary>
    public IReadOnlyList<int> Prefix { get; } = prefix;

    /// <summary>Ids placed after the text's ids.</summary>
    public IReadOnlyList<int> Suffix { get; } = suffix;

    /// <summary>
    /// This template applied to the output of <paramref name="inner"/>: a Hugging Face <c>Sequence</c>
    /// post-processor runs its processors in order, each wrapping what the previous one produced.
    /// </summary>
    public SpecialTokenTemplate Wrapping(SpecialTokenTemplate inner) =>
        new([.. Prefix, .. inner.Prefix], [.. inner.Suffix, .. Suffix]);
}
