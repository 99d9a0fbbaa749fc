namespace Tandem.Tokenization;

/// <summary>The <c>model</c> section of a Hugging Face tokenizer.json whose type is BPE.</summary>
/// <param name="Vocabulary">Token string to id.</param>
/// <param name="Merges">Merge rules, highest priority first.</param>
/// <param name="UnknownToken">Emitted for characters missing from the vocabulary; null drops them.</param>
/// <param name="FuseUnknown">Consecutive unknown characters become one unknown token.</param>
/// <param name="ByteFallback">Missing characters become &lt;0xNN&gt; byte tokens (SentencePiece style).</param>
/// <param name="IgnoreMerges">A word found whole in the vocabulary is emitted without merging.</param>
/// <param name="ContinuingSubwordPrefix">Prefix of non-initial subwords (e.g. "##"), usually null.</param>
/// <param name="EndOfWordSuffix">Suffix of word-final subwords (e.g. "&lt;/w&gt;"), usually null.</param>
internal sealed record BpeModelDefinition(
    IReadOnlyDictionary<string, int> Vocabulary,
    IReadOnlyList<(string Left, string Right)> Merges,
    string? UnknownToken,
    bool FuseUnknown,
    bool ByteFallback,
    bool IgnoreMerges,
    string? ContinuingSubwordPrefix,
    string? EndOfWordSuffix);
