namespace Tandem.Tokenization;

/// <summary>
/// One piece of input after added tokens are split out: either an added token (its id) or a stretch of
/// plain text still to be pre-tokenized and run through the subword model.
/// </summary>
internal readonly record struct TextPiece(int TokenId, string? Text)
{
    public static TextPiece Token(int id) => new(id, null);

    public static TextPiece Plain(string text) => new(-1, text);

    public bool IsToken => Text is null;
}
