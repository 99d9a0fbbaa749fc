using System.Text;

namespace Tandem.Tokenization;

/// <summary>
/// SentencePiece BPE encoding, as <c>sentencepiece</c>'s bpe_model.cc does it: the text is normalized
/// (spaces to '▁', the dummy prefix), cut into characters (user-defined pieces stay whole), and the
/// adjacent pair whose concatenation is the highest-scoring piece is merged until none is left; ties go
/// to the leftmost pair. Characters missing from the vocabulary become their UTF-8 bytes (byte fallback).
/// </summary>
/// <remarks>
/// Microsoft.ML.Tokenizers 2.0.1 has a SentencePiece BPE too, but it breaks ties between equal scores
/// towards the rightmost pair, so runs of a repeated character (spaces, "...", "==") come out differently
/// from sentencepiece: "▁▁▁c" gives "▁", "▁▁", "c" where sentencepiece gives "▁▁", "▁c". This class
/// follows sentencepiece.
/// </remarks>
internal sealed class SentencePieceBpeEncoder : SubwordEncoder
{
    private const char SpaceSymbol = '\u2581';

    private readonly SentencePieceModelFile _model;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _mergeable; // normal, user-defined, unused
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _reserved;   // control, unknown, byte
    private readonly string[] _userDefined; // longest first
    private readonly int[] _byteIds;

    public SentencePieceBpeEncoder(SentencePieceModelFile model)
    {
        _model = model;
        var mergeable = new Dictionary<string, int>(StringComparer.Ordinal);
        var reserved = new Dictionary<string, int>(StringComparer.Ordinal);
        _byteIds = new int[256];
        Array.Fill(_byteIds, -1);
        for (int id = 0; id < model.Pieces.Count; id++)
        {
            var piece = model.Pieces[id];
            var target = piece.Type is PieceType.Normal or PieceType.UserDefined or PieceType.Unused ? mergeable : reserved;
            if (!target.TryAdd(piece.Piece, id))
            {
                throw new InvalidDataException($"{model.Path}: piece \"{piece.Piece}\" appears twice");
            }

            if (piece.Type == PieceType.Byte && TryParseBytePiece(piece.Piece, out byte value))
            {
                _byteIds[value] = id;
            }
        }

        if (model.ByteFallback && Array.IndexOf(_byteIds, -1) >= 0)
        {
            throw new InvalidDataException($"{model.Path}: byte_fallback is set but some of the 256 <0xNN> byte pieces are missing");
        }

        _mergeable = mergeable.GetAlternateLookup<ReadOnlySpan<char>>();
        _reserved = reserved.GetAlternateLookup<ReadOnlySpan<char>>();
        _userDefined = [.. model.Pieces.Where(p => p.Type == PieceType.UserDefined && p.Piece.Length > 0)
            .Select(p => p.Piece).OrderByDescending(p => p.Length)];
    }

    /// <summary>Parses "&lt;0xNN&gt;", the spelling of byte pieces.</summary>
    public static bool TryParseBytePiece(string piece, out byte value)
    {
        value = 0;
        return piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
               && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out value);
    }

    public override void Encode(string text, List<int> ids)
    {
        string normalized = Normalize(text);
        if (normalized.Length == 0)
        {
            return;
        }

        var symbols = Split(normalized);
        var reverseMerges = Merge(normalized, symbols);

        bool previousUnknown = false;
        for (int i = 0; i >= 0; i = symbols[i].Next)
        {
            Resegment(normalized.AsSpan(symbols[i].Start, symbols[i].Length), reverseMerges, ids, ref previousUnknown);
        }
    }

    /// <summary>sentencepiece's normalizer without a character map ("identity").</summary>
    private string Normalize(string text)
    {
        var builder = new StringBuilder(text.Length + 1);
        int start = 0, end = text.Length;
        if (_model.RemoveExtraWhitespaces)
        {
            while (start < end && text[start] == ' ')
            {
                start++;
            }

            while (end > start && text[end - 1] == ' ')
            {
                end--;
            }
        }

        if (start == end)
        {
            return string.Empty;
        }

        char space = _model.EscapeWhitespaces ? SpaceSymbol : ' ';
        if (_model.AddDummyPrefix)
        {
            builder.Append(space);
        }

        bool previousSpace = _model.RemoveExtraWhitespaces; // the dummy prefix counts as a space
        for (int i = start; i < end; i++)
        {
            char c = text[i];
            if (c == ' ')
            {
                if (!previousSpace)
                {
                    builder.Append(space);
                }

                previousSpace = _model.RemoveExtraWhitespaces;
            }
            else
            {
                builder.Append(c);
                previousSpace = false;
            }
        }

        return builder.ToString();
    }

    /// <summary>One symbol per character (a surrogate pair is one character); user-defined pieces stay whole and never merge.</summary>
    private List<Symbol> Split(string text)
    {
        var symbols = new List<Symbol>(text.Length);
        for (int position = 0; position < text.Length;)
        {
            int length = 0;
            bool frozen = false;
            foreach (string piece in _userDefined)
            {
                if (text.AsSpan(position).StartsWith(piece, StringComparison.Ordinal))
                {
                    length = piece.Length;
                    frozen = true;
                    break;
                }
            }

            if (length == 0)
            {
                length = char.IsHighSurrogate(text[position]) && position + 1 < text.Length && char.IsLowSurrogate(text[position + 1]) ? 2 : 1;
            }

            int index = symbols.Count;
            symbols.Add(new Symbol(position, length, index - 1, position + length < text.Length ? index + 1 : -1, frozen));
            position += length;
        }

        return symbols;
    }

    /// <summary>
    /// Merges symbols in place, best score first, leftmost first among equal scores. Returns, for each
    /// merged "unused" piece (a piece that may be merged through but not output), the length of its left
    /// part, so that it can be split back; keyed by content, as sentencepiece keys it.
    /// </summary>
    private Dictionary<string, int>? Merge(string text, List<Symbol> symbols)
    {
        Dictionary<string, int>? reverseMerges = null;
        var agenda = new PriorityQueue<(int Left, int Right, int Length), (float Score, int Left)>(symbols.Count, PairPriority.Instance);

        void TryAddPair(int left, int right)
        {
            if (left < 0 || right < 0 || symbols[left].Frozen || symbols[right].Frozen)
            {
                return;
            }

            int length = symbols[left].Length + symbols[right].Length;
            if (!_mergeable.TryGetValue(text.AsSpan(symbols[left].Start, length), out int id))
            {
                return;
            }

            agenda.Enqueue((left, right, length), (_model.Pieces[id].Score, left));
            if (_model.Pieces[id].Type == PieceType.Unused)
            {
                (reverseMerges ??= new(StringComparer.Ordinal))[text.Substring(symbols[left].Start, length)] = symbols[left].Length;
            }
        }

        for (int i = 1; i < symbols.Count; i++)
        {
            TryAddPair(i - 1, i);
        }

        while (agenda.TryDequeue(out var top, out _))
        {
            var left = symbols[top.Left];
            var right = symbols[top.Right];

            // Skip a pair made stale by an earlier merge of either side.
            if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != top.Length)
            {
                continue;
            }

            symbols[top.Left] = left with { Length = top.Length, Next = right.Next };
            if (right.Next >= 0)
            {
                symbols[right.Next] = symbols[right.Next] with { Previous = top.Left };
            }

            symbols[top.Right] = right with { Length = 0 };
            TryAddPair(symbols[top.Left].Previous, top.Left);
            TryAddPair(top.Left, symbols[top.Left].Next);
        }

        return reverseMerges;
    }

    /// <summary>Emits a merged piece's id, splitting "unused" pieces back and turning unknown ones into bytes.</summary>
    private void Resegment(ReadOnlySpan<char> piece, Dictionary<string, int>? reverseMerges, List<int> ids, ref bool previousUnknown)
    {
        if (_mergeable.TryGetValue(piece, out int id))
        {
            if (_model.Pieces[id].Type == PieceType.Unused && reverseMerges is not null
                && reverseMerges.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(piece, out int leftLength))
            {
                Resegment(piece[..leftLength], reverseMerges, ids, ref previousUnknown);
                Resegment(piece[leftLength..], reverseMerges, ids, ref previousUnknown);
                return;
            }

            ids.Add(id);
            previousUnknown = false;
            return;
        }

        if (_reserved.TryGetValue(piece, out id) && _model.Pieces[id].Type != PieceType.Unknown)
        {
            ids.Add(id);
            previousUnknown = false;
            return;
        }

        if (_model.ByteFallback)
        {
            int maxBytes = Encoding.UTF8.GetMaxByteCount(piece.Length);
            Span<byte> utf8 = maxBytes <= 256 ? stackalloc byte[maxBytes] : new byte[maxBytes];
            int count = Encoding.UTF8.GetBytes(piece, utf8);
            foreach (byte b in utf8[..count])
            {
                ids.Add(_byteIds[b]);
            }

            previousUnknown = false;
        }
        else if (!previousUnknown)
        {
            // Consecutive unknown characters become one unknown token.
            ids.Add(_model.UnknownId);
            previousUnknown = true;
        }
    }

    private readonly record struct Symbol(int Start, int Length, int Previous, int Next, bool Frozen);

    /// <summary>Higher score first; among equal scores, the leftmost pair first.</summary>
    private sealed class PairPriority : IComparer<(float Score, int Left)>
    {
        public static PairPriority Instance { get; } = new();

        public int Compare((float Score, int Left) x, (float Score, int Left) y) =>
            x.Score != y.Score ? y.Score.CompareTo(x.Score) : x.Left.CompareTo(y.Left);
    }
}
