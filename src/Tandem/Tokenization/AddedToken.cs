namespace Tandem.Tokenization;

/// <summary>
/// A token the tokenizer matches as a whole before any other processing: Hugging Face's
/// <c>added_tokens</c> entries (chat markers, BOS/EOS, reserved tokens).
/// </summary>
/// <param name="Id">The token id.</param>
/// <param name="Content">The literal text that stands for the token.</param>
/// <param name="Special">Special tokens are dropped by decoding when special tokens are skipped.</param>
/// <param name="SingleWord">Matches only when no word character touches either side.</param>
/// <param name="LeftStrip">A match also swallows the whitespace on its left.</param>
/// <param name="RightStrip">A match also swallows the whitespace on its right.</param>
/// <param name="Normalized">Matched in normalized text (after the normalizer) rather than in the raw text.</param>
internal sealed record AddedToken(
    int Id,
    string Content,
    bool Special,
    bool SingleWord = false,
    bool LeftStrip = false,
    bool RightStrip = false,
    bool Normalized = false);
