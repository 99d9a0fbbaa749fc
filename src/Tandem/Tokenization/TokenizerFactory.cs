using System.Text;

namespace Tandem.Tokenization;

/// <summary>Finds a model folder's tokenizer files and assembles a <see cref="TandemTokenizer"/> from them.</summary>
internal static class TokenizerFactory
{
    public const string JsonFileName = "tokenizer.json";
    public const string SentencePieceFileName = "tokenizer.model";

    public static TandemTokenizer Load(string modelDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDirectory);
        if (!Directory.Exists(modelDirectory))
        {
            throw new DirectoryNotFoundException($"Model folder '{modelDirectory}' does not exist.");
        }

        string jsonPath = Path.Combine(modelDirectory, JsonFileName);
        string sentencePiecePath = Path.Combine(modelDirectory, SentencePieceFileName);
        var config = TokenizerConfig.Read(modelDirectory);

        if (File.Exists(jsonPath))
        {
            var definition = TokenizerJsonReader.Read(jsonPath);
            if (definition.IsByteLevel)
            {
                return FromByteLevel(definition, config);
            }

            if (definition.IsSentencePieceStyle && File.Exists(sentencePiecePath))
            {
                // A SentencePiece model converted to BPE: encoding from tokenizer.model itself is what
                // sentencepiece does (and the library's BPE has no byte fallback).
                return FromSentencePiece(sentencePiecePath, config, definition);
            }

            throw new InvalidDataException(definition.IsSentencePieceStyle
                ? $"{jsonPath}: a SentencePiece-style BPE (byte fallback, '\u2581' for spaces) is supported only through {SentencePieceFileName}, which is not beside it"
                : $"{jsonPath}: the pre-tokenizer declares no ByteLevel step, so this is not a byte-level BPE (Tandem reads byte-level BPE tokenizer.json files and SentencePiece BPE tokenizer.model files)");
        }

        if (File.Exists(sentencePiecePath))
        {
            return FromSentencePiece(sentencePiecePath, config, json: null);
        }

        throw new FileNotFoundException(
            $"No tokenizer in '{modelDirectory}': expected {JsonFileName} (Hugging Face byte-level BPE) or {SentencePieceFileName} (SentencePiece BPE).",
            jsonPath);
    }

    private static TandemTokenizer FromByteLevel(TokenizerJsonDefinition definition, TokenizerConfig config)
    {
        string path = definition.Path;
        if (definition.Decoder != DecoderKind.ByteLevel)
        {
            throw new InvalidDataException($"{path}: a byte-level BPE needs a ByteLevel decoder, but the decoder is {definition.Decoder}");
        }

        var model = definition.Model;

        // Hugging Face gives an added token whose text is already in the model vocabulary that
        // vocabulary id, whatever the file says (saved files agree with it anyway).
        var addedTokens = definition.AddedTokens
            .Select(t => model.Vocabulary.TryGetValue(t.Content, out int id) && id != t.Id ? t with { Id = id } : t)
            .ToArray();
        if (model.ByteFallback && Enumerable.Range(0, 256).Any(b => !model.Vocabulary.ContainsKey(ByteLevelAlphabet.ToChar((byte)b).ToString())))
        {
            throw new InvalidDataException($"{path}: model.byte_fallback is set and the vocabulary lacks some of the 256 byte-level characters; that combination is not supported");
        }

        var table = new TokenTable.Builder();
        foreach (var (token, id) in model.Vocabulary)
        {
            table.Set(id, token, ByteLevelAlphabet.Decode(token), special: false);
        }

        // Hugging Face runs added tokens through the ByteLevel decoder as well, and a "normalized" one in
        // its normalized spelling (the form it is matched in).
        foreach (var token in addedTokens)
        {
            string decoded = token.Normalized && definition.Normalizer is { } normalizer ? normalizer.Normalize(token.Content) : token.Content;
            table.Set(token.Id, token.Content, ByteLevelAlphabet.Decode(decoded), token.Special);
        }

        SubwordEncoder encoder;
        try
        {
            encoder = new ByteLevelBpeEncoder(model, definition.PreTokenizer!);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            throw new InvalidDataException($"{path}: the BPE model is inconsistent ({e.Message})", e);
        }

        var tokens = table.Build();
        var template = CheckTemplate(definition.Template, tokens, path);
        var lookup = TokenLookup(addedTokens, model.Vocabulary);
        return new TandemTokenizer(
            new AddedVocabulary(addedTokens, definition.Normalizer),
            encoder,
            template,
            tokens,
            stripsLeadingSpace: false,
            BosId(config, lookup, fallback: null),
            EosIds(config, lookup, fallback: null, tokens.Count));
    }

    private static TandemTokenizer FromSentencePiece(string path, TokenizerConfig config, TokenizerJsonDefinition? json)
    {
        var model = SentencePieceModelFile.Read(path);
        var table = new TokenTable.Builder();
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < model.Pieces.Count; id++)
        {
            var piece = model.Pieces[id];
            vocabulary.TryAdd(piece.Piece, id);
            table.Set(id, piece.Piece, SentencePieceBytes(piece, model.ByteFallback), special: piece.Type is PieceType.Control or PieceType.Unknown);
        }

        // Added tokens: tokenizer.json's, else tokenizer_config.json's, else the control and unknown
        // pieces, which transformers' Llama tokenizers match in text as special tokens.
        IReadOnlyList<AddedToken> added = json?.AddedTokens is { Count: > 0 } fromJson ? fromJson
            : config.AddedTokens.Count > 0 ? config.AddedTokens
            : [.. Enumerable.Range(0, model.Pieces.Count)
                .Where(id => model.Pieces[id].Type is PieceType.Control or PieceType.Unknown)
                .Select(id => new AddedToken(id, model.Pieces[id].Piece, Special: true))];
        foreach (var token in added)
        {
            table.Set(token.Id, token.Content, Encoding.UTF8.GetBytes(token.Content.Replace('\u2581', ' ')), token.Special);
        }

        var tokens = table.Build();
        var lookup = TokenLookup(added, vocabulary);
        int? bos = BosId(config, lookup, fallback: model.BosId >= 0 ? model.BosId : null);
        var eos = EosIds(config, lookup, fallback: model.EosId >= 0 ? model.EosId : null, tokens.Count);

        // transformers' Llama tokenizer adds BOS unless add_bos_token is false, and EOS only if asked.
        var template = json?.Template ?? new SpecialTokenTemplate(
            (config.AddBosToken ?? true) && model.BosId >= 0 ? [model.BosId] : [],
            (config.AddEosToken ?? false) && model.EosId >= 0 ? [model.EosId] : []);

        SubwordEncoder encoder = new SentencePieceBpeEncoder(model);
        return new TandemTokenizer(
            new AddedVocabulary(added, normalizer: null),
            encoder,
            CheckTemplate(template, tokens, json?.Path ?? path),
            tokens,
            stripsLeadingSpace: model.AddDummyPrefix,
            bos,
            eos);
    }

    /// <summary>What a piece stands for in decoded text: '▁' is a space, and with byte fallback &lt;0xNN&gt; is the byte NN.</summary>
    private static byte[] SentencePieceBytes(SentencePiece piece, bool byteFallback)
    {
        if (byteFallback && piece.Type == PieceType.Byte && SentencePieceBpeEncoder.TryParseBytePiece(piece.Piece, out byte value))
        {
            return [value];
        }

        return Encoding.UTF8.GetBytes(piece.Piece.Replace('\u2581', ' '));
    }

    /// <summary>Token text to id: added tokens first (they win over the model vocabulary, as in Hugging Face).</summary>
    private static Dictionary<string, int> TokenLookup(IEnumerable<AddedToken> added, IReadOnlyDictionary<string, int> vocabulary)
    {
        var lookup = new Dictionary<string, int>(vocabulary, StringComparer.Ordinal);
        foreach (var token in added)
        {
            lookup[token.Content] = token.Id;
        }

        return lookup;
    }

    private static int? BosId(TokenizerConfig config, Dictionary<string, int> lookup, int? fallback) =>
        config.BosToken is { } bos ? IdOf(bos, "bos_token", lookup) : fallback;

    private static IReadOnlyList<int> EosIds(TokenizerConfig config, Dictionary<string, int> lookup, int? fallback, int vocabularySize)
    {
        var ids = new List<int>();
        if ((config.EosToken is { } eos ? IdOf(eos, "eos_token", lookup) : fallback) is int id)
        {
            ids.Add(id);
        }

        foreach (int generationId in config.GenerationEosTokenIds)
        {
            if (generationId >= vocabularySize)
            {
                throw new InvalidDataException($"{TokenizerConfig.GenerationFileName}: eos_token_id {generationId} is outside the vocabulary (0..{vocabularySize - 1})");
            }

            if (!ids.Contains(generationId))
            {
                ids.Add(generationId);
            }
        }

        return ids;
    }

    private static int IdOf(string token, string name, Dictionary<string, int> lookup) =>
        lookup.TryGetValue(token, out int id)
            ? id
            : throw new InvalidDataException($"{TokenizerConfig.FileName}: {name} \"{token}\" is not a token of the vocabulary");

    private static SpecialTokenTemplate CheckTemplate(SpecialTokenTemplate template, TokenTable tokens, string path)
    {
        foreach (int id in template.Prefix.Concat(template.Suffix))
        {
            if ((uint)id >= (uint)tokens.Count || tokens.Text(id) is null)
            {
                throw new InvalidDataException($"{path}: the post-processor adds token id {id}, which no token has");
            }
        }

        return template;
    }
}
