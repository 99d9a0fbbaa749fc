namespace Tandem.Tokenization;

/// <summary>
/// Everything decoding needs per token id, stored flat: the bytes the token stands for, its vocabulary
/// string and whether it is special. Ids that no token uses (holes in the id range) decode to nothing.
/// </summary>
internal sealed class TokenTable
{
    private readonly byte[] _bytes;
    private readonly int[] _offsets;   // token id's bytes are _bytes[_offsets[id].._offsets[id + 1]]
    private readonly string?[] _text;
    private readonly bool[] _special;

    private TokenTable(byte[] bytes, int[] offsets, string?[] text, bool[] special)
    {
        _bytes = bytes;
        _offsets = offsets;
        _text = text;
        _special = special;
    }

    /// <summary>One past the largest id.</summary>
    public int Count => _text.Length;

    public ReadOnlySpan<byte> Bytes(int id) => _bytes.AsSpan(_offsets[id], _offsets[id + 1] - _offsets[id]);

    public bool IsSpecial(int id) => _special[id];

    /// <summary>The raw vocabulary string, or null for an id no token uses.</summary>
    public string? Text(int id) => _text[id];

    /// <summary>Collects tokens in any order, then lays them out by id.</summary>
    public sealed class Builder
    {
        private readonly Dictionary<int, (string Text, byte[] Bytes, bool Special)> _tokens = new();

        /// <summary>Adds or replaces a token (added tokens replace model tokens of the same id, as in Hugging Face).</summary>
        public void Set(int id, string text, byte[] bytes, bool special)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(id);
            _tokens[id] = (text, bytes, special);
        }

        public bool Contains(int id) => _tokens.ContainsKey(id);

        public TokenTable Build()
        {
            int count = _tokens.Count == 0 ? 0 : _tokens.Keys.Max() + 1;
            var text = new string?[count];
            var special = new bool[count];
            var offsets = new int[count + 1];
            for (int id = 0; id < count; id++)
            {
                offsets[id + 1] = offsets[id] + (_tokens.TryGetValue(id, out var t) ? t.Bytes.Length : 0);
            }

            var bytes = new byte[offsets[count]];
            foreach (var (id, token) in _tokens)
            {
                text[id] = token.Text;
                special[id] = token.Special;
                token.Bytes.CopyTo(bytes, offsets[id]);
            }

            return new TokenTable(bytes, offsets, text, special);
        }
    }
}
