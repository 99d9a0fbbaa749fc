using System.Text;

namespace Tandem.Tokenization;

/// <summary>The type of a SentencePiece piece (ModelProto.SentencePiece.Type).</summary>
internal enum PieceType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>One vocabulary entry of a SentencePiece model; its id is its index.</summary>
internal readonly record struct SentencePiece(string Piece, float Score, PieceType Type);

/// <summary>
/// What a SentencePiece tokenizer.model (a serialized <c>sentencepiece.ModelProto</c>) declares that
/// encoding and decoding need.
/// </summary>
internal sealed class SentencePieceModelFile
{
    private const int BpeModelType = 2;

    public required string Path { get; init; }

    public required IReadOnlyList<SentencePiece> Pieces { get; init; }

    /// <summary>Unknown characters become their UTF-8 bytes as &lt;0xNN&gt; pieces instead of &lt;unk&gt;.</summary>
    public bool ByteFallback { get; init; }

    public int UnknownId { get; init; }

    public int BosId { get; init; }

    public int EosId { get; init; }

    /// <summary>A '▁' is put before the text, so that a first word looks like any other.</summary>
    public bool AddDummyPrefix { get; init; }

    /// <summary>Leading and trailing spaces are dropped and inner runs of spaces collapse to one.</summary>
    public bool RemoveExtraWhitespaces { get; init; }

    /// <summary>Spaces are written as '▁'.</summary>
    public bool EscapeWhitespaces { get; init; }

    public static SentencePieceModelFile Read(string path)
    {
        byte[] data = File.ReadAllBytes(path);
        var pieces = new List<SentencePiece>();
        int modelType = 1; // UNIGRAM unless the trainer spec says otherwise
        bool byteFallback = false, treatWhitespaceAsSuffix = false;
        int unkId = 0, bosId = 1, eosId = 2;
        bool addDummyPrefix = true, removeExtraWhitespaces = true, escapeWhitespaces = true, hasCharsMap = false;
        string normalizerName = "";

        var reader = new ProtobufReader(data, path);
        while (!reader.AtEnd)
        {
            var (field, wireType) = reader.ReadTag();
            switch (field, wireType)
            {
                case (1, ProtobufReader.LengthDelimitedType):
                    pieces.Add(ReadPiece(reader.ReadLengthDelimited(), path));
                    break;

                case (2, ProtobufReader.LengthDelimitedType): // TrainerSpec
                {
                    var spec = new ProtobufReader(reader.ReadLengthDelimited(), path);
                    while (!spec.AtEnd)
                    {
                        var (f, w) = spec.ReadTag();
                        switch (f, w)
                        {
                            case (3, ProtobufReader.VarintType): modelType = (int)spec.ReadVarint(); break;
                            case (24, ProtobufReader.VarintType): treatWhitespaceAsSuffix = spec.ReadVarint() != 0; break;
                            case (35, ProtobufReader.VarintType): byteFallback = spec.ReadVarint() != 0; break;
                            case (40, ProtobufReader.VarintType): unkId = (int)spec.ReadVarint(); break;
                            case (41, ProtobufReader.VarintType): bosId = (int)spec.ReadVarint(); break;
                            case (42, ProtobufReader.VarintType): eosId = (int)spec.ReadVarint(); break;
                            default: spec.Skip(w); break;
                        }
                    }

                    break;
                }

                case (3, ProtobufReader.LengthDelimitedType): // NormalizerSpec
                {
                    var spec = new ProtobufReader(reader.ReadLengthDelimited(), path);
                    while (!spec.AtEnd)
                    {
                        var (f, w) = spec.ReadTag();
                        switch (f, w)
                        {
                            case (1, ProtobufReader.LengthDelimitedType): normalizerName = Encoding.UTF8.GetString(spec.ReadLengthDelimited()); break;
                            case (2, ProtobufReader.LengthDelimitedType): hasCharsMap = spec.ReadLengthDelimited().Length > 0; break;
                            case (3, ProtobufReader.VarintType): addDummyPrefix = spec.ReadVarint() != 0; break;
                            case (4, ProtobufReader.VarintType): removeExtraWhitespaces = spec.ReadVarint() != 0; break;
                            case (5, ProtobufReader.VarintType): escapeWhitespaces = spec.ReadVarint() != 0; break;
                            default: spec.Skip(w); break;
                        }
                    }

                    break;
                }

                default:
                    reader.Skip(wireType);
                    break;
            }
        }

        if (pieces.Count == 0)
        {
            throw new InvalidDataException($"{path}: not a SentencePiece model: it holds no pieces");
        }

        if (modelType != BpeModelType)
        {
            string name = modelType switch { 1 => "Unigram", 3 => "Word", 4 => "Char", _ => $"type {modelType}" };
            throw new InvalidDataException($"{path}: a SentencePiece {name} model is not supported (Tandem reads SentencePiece BPE models)");
        }

        if (hasCharsMap)
        {
            throw new InvalidDataException($"{path}: normalizer \"{normalizerName}\" uses a precompiled normalization map, which is not supported (Llama-style models use \"identity\")");
        }

        if (treatWhitespaceAsSuffix)
        {
            throw new InvalidDataException($"{path}: treat_whitespace_as_suffix is not supported");
        }

        foreach (var (id, name) in new[] { (unkId, "unk_id"), (bosId, "bos_id"), (eosId, "eos_id") })
        {
            if (id >= pieces.Count)
            {
                throw new InvalidDataException($"{path}: {name} {id} is outside the {pieces.Count} pieces");
            }
        }

        if (unkId < 0 || pieces[unkId].Type != PieceType.Unknown)
        {
            throw new InvalidDataException($"{path}: unk_id {unkId} is not the model's unknown piece");
        }

        return new SentencePieceModelFile
        {
            Path = path,
            Pieces = pieces,
            ByteFallback = byteFallback,
            UnknownId = unkId,
            BosId = bosId,
            EosId = eosId,
            AddDummyPrefix = addDummyPrefix,
            RemoveExtraWhitespaces = removeExtraWhitespaces,
            EscapeWhitespaces = escapeWhitespaces,
        };
    }

    private static SentencePiece ReadPiece(ReadOnlySpan<byte> data, string path)
    {
        string piece = "";
        float score = 0;
        var type = PieceType.Normal;
        var reader = new ProtobufReader(data, path);
        while (!reader.AtEnd)
        {
            var (field, wireType) = reader.ReadTag();
            switch (field, wireType)
            {
                case (1, ProtobufReader.LengthDelimitedType): piece = Encoding.UTF8.GetString(reader.ReadLengthDelimited()); break;
                case (2, ProtobufReader.Fixed32Type): score = reader.ReadFixed32Float(); break;
                case (3, ProtobufReader.VarintType): type = (PieceType)(int)reader.ReadVarint(); break;
                default: reader.Skip(wireType); break;
            }
        }

        if (!Enum.IsDefined(type))
        {
            throw new InvalidDataException($"{path}: piece \"{piece}\" has unknown type {(int)type}");
        }

        return new SentencePiece(piece, score, type);
    }
}
