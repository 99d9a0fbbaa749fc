namespace Tandem.Tokenization;

/// <summary>
/// A minimal reader of the protocol buffers wire format, enough for SentencePiece's ModelProto
/// (varints, fixed32 floats, length-delimited strings and messages; unknown fields are skipped).
/// </summary>
internal ref struct ProtobufReader(ReadOnlySpan<byte> data, string path)
{
    public const int VarintType = 0, Fixed64Type = 1, LengthDelimitedType = 2, Fixed32Type = 5;

    private readonly ReadOnlySpan<byte> _data = data;
    private readonly string _path = path;
    private int _position;

    public readonly bool AtEnd => _position >= _data.Length;

    /// <summary>Reads a field key: its number and wire type.</summary>
    public (int Field, int WireType) ReadTag()
    {
        ulong key = ReadVarint();
        return ((int)(key >> 3), (int)(key & 7));
    }

    public ulong ReadVarint()
    {
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = ReadByte();
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }

        throw Invalid("a varint is longer than 10 bytes");
    }

    public float ReadFixed32Float()
    {
        Require(4);
        float value = BitConverter.Int32BitsToSingle(System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(_data[_position..]));
        _position += 4;
        return value;
    }

    /// <summary>The bytes of a length-delimited field (a string or an embedded message).</summary>
    public ReadOnlySpan<byte> ReadLengthDelimited()
    {
        ulong length = ReadVarint();
        if (length > (ulong)(_data.Length - _position))
        {
            throw Invalid("a length-delimited field runs past the end of the data");
        }

        var bytes = _data.Slice(_position, (int)length);
        _position += (int)length;
        return bytes;
    }

    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case VarintType:
                ReadVarint();
                break;
            case Fixed64Type:
                Require(8);
                _position += 8;
                break;
            case LengthDelimitedType:
                ReadLengthDelimited();
                break;
            case Fixed32Type:
                Require(4);
                _position += 4;
                break;
            default:
                throw Invalid($"wire type {wireType} is not valid here");
        }
    }

    private byte ReadByte()
    {
        Require(1);
        return _data[_position++];
    }

    private readonly void Require(int count)
    {
        if (_data.Length - _position < count)
        {
            throw Invalid("the data ends in the middle of a field");
        }
    }

    private readonly InvalidDataException Invalid(string message) => new($"{_path}: not a SentencePiece model: {message} (at byte {_position})");
}
