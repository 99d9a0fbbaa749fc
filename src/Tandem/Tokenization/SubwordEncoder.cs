namespace Tandem.Tokenization;

/// <summary>
/// Turns a stretch of plain text (already normalized, with no added token inside) into model ids: the
/// pre-tokenizer and the subword model of a tokenizer.
/// </summary>
internal abstract class SubwordEncoder
{
    public abstract void Encode(string text, List<int> ids);
}
