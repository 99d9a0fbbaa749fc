using System.Buffers;
using Tandem.Tokenization;

namespace Tandem;

/// <summary>
/// A model's tokenizer: text to token ids and back, giving the ids Hugging Face gives.
/// </summary>
/// <remarks>
/// <para>Loaded from a model folder: a Hugging Face <c>tokenizer.json</c> describing a byte-level BPE
/// (GPT-2, Llama 3, Qwen2 style), or else a SentencePiece BPE <c>tokenizer.model</c> (Llama 2 style).
/// <c>tokenizer_config.json</c> and <c>generation_config.json</c> beside it name BOS and EOS.</para>
/// <para>Instances are immutable and safe to use from several threads at once; an
/// <see cref="IncrementalDecoder"/> is not.</para>
/// </remarks>
public sealed class TandemTokenizer
{
    private readonly AddedVocabulary _addedVocabulary;
    private readonly SubwordEncoder _encoder;
    private readonly SpecialTokenTemplate _template;
    private readonly TokenTable _tokens;

    internal TandemTokenizer(
        AddedVocabulary addedVocabulary,
        SubwordEncoder encoder,
        SpecialTokenTemplate template,
        TokenTable tokens,
        bool stripsLeadingSpace,
        int? bosTokenId,
        IReadOnlyList<int> eosTokenIds)
    {
        _addedVocabulary = addedVocabulary;
        _encoder = encoder;
        _template = template;
        _tokens = tokens;
        StripsLeadingSpace = stripsLeadingSpace;
        BosTokenId = bosTokenId;
        EosTokenIds = eosTokenIds;
    }

    /// <summary>One past the largest token id (model vocabulary and added tokens together).</summary>
    public int VocabularySize => _tokens.Count;

    /// <summary>The beginning-of-sequence token, where the tokenizer declares one (Qwen2 does not).</summary>
    public int? BosTokenId { get; }

    /// <summary>
    /// The tokens that end generation: the tokenizer's EOS, then any further ids generation_config.json
    /// lists (Llama 3 Instruct stops on several). Empty when none is declared.
    /// </summary>
    public IReadOnlyList<int> EosTokenIds { get; }

    /// <summary>SentencePiece decoding drops the space its dummy prefix put before the first word.</summary>
    internal bool StripsLeadingSpace { get; }

    /// <summary>Reads the tokenizer of the model in <paramref name="modelDirectory"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">The folder has neither tokenizer.json nor tokenizer.model.</exception>
    /// <exception cref="InvalidDataException">A tokenizer file is malformed or uses a feature Tandem does not support; the message names the file and the feature.</exception>
    public static TandemTokenizer Load(string modelDirectory) => TokenizerFactory.Load(modelDirectory);

    /// <summary>
    /// The ids Hugging Face's <c>tokenizer(text).input_ids</c> gives: added and special tokens written in
    /// the text are matched as single tokens, and with <paramref name="addSpecialTokens"/> the tokenizer's
    /// post-processor adds its tokens (e.g. BOS).
    /// </summary>
    /// <exception cref="ArgumentException">The text holds a lone surrogate (invalid UTF-16, so no UTF-8 form).</exception>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        Utf8Text.ThrowIfInvalidUtf16(text, nameof(text));

        var ids = new List<int>(text.Length / 2 + 4);
        if (addSpecialTokens)
        {
            ids.AddRange(_template.Prefix);
        }

        var pieces = new List<TextPiece>();
        _addedVocabulary.Split(text, pieces);
        foreach (var piece in pieces)
        {
            if (piece.IsToken)
            {
                ids.Add(piece.TokenId);
            }
            else
            {
                _encoder.Encode(piece.Text!, ids);
            }
        }

        if (addSpecialTokens)
        {
            ids.AddRange(_template.Suffix);
        }

        return ids.ToArray();
    }

    /// <summary>The text of <paramref name="ids"/>; bytes that are not valid UTF-8 become U+FFFD.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true)
    {
        int length = 0;
        foreach (int id in ids)
        {
            length += TokenBytes(id, skipSpecialTokens).Length;
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            int written = 0;
            foreach (int id in ids)
            {
                ReadOnlySpan<byte> bytes = TokenBytes(id, skipSpecialTokens);
                bytes.CopyTo(buffer.AsSpan(written));
                written += bytes.Length;
            }

            int start = StripsLeadingSpace && written > 0 && buffer[0] == (byte)' ' ? 1 : 0;
            return Utf8Text.DecodeLossy(buffer.AsSpan(start, written - start));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>One token decoded alone, special tokens included; may hold U+FFFD for part of a character.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is outside the vocabulary.</exception>
    public string DecodeToken(int id) => Decode([id], skipSpecialTokens: false);

    /// <summary>A decoder that turns ids into text one at a time, as they are generated.</summary>
    public IncrementalDecoder CreateIncrementalDecoder(bool skipSpecialTokens = true) => new(this, skipSpecialTokens);

    /// <summary>The token's raw vocabulary string (e.g. "Ġthe", "▁the", "&lt;0x0A&gt;"), for diagnostics.</summary>
    /// <exception cref="ArgumentOutOfRangeException">No token has this id.</exception>
    public string TokenText(int id)
    {
        ThrowIfOutside(id);
        return _tokens.Text(id) ?? throw new ArgumentOutOfRangeException(nameof(id), id, $"No token has id {id} (the id range has a hole there).");
    }

    /// <summary>The bytes <paramref name="id"/> contributes to decoded text; empty for a skipped special token or an unused id.</summary>
    internal ReadOnlySpan<byte> TokenBytes(int id, bool skipSpecialTokens)
    {
        ThrowIfOutside(id);
        return skipSpecialTokens && _tokens.IsSpecial(id) ? default : _tokens.Bytes(id);
    }

    private void ThrowIfOutside(int id)
    {
        if ((uint)id >= (uint)_tokens.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is outside the vocabulary (0..{_tokens.Count - 1}).");
        }
    }
}
