using System.Buffers;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace Tandem.Tokenization;

/// <summary>
/// Byte-level BPE: the declared pre-tokenizer cuts the text into words, each word's UTF-8 bytes are
/// written in the GPT-2 byte alphabet, and Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> applies
/// the merges to each word.
/// </summary>
/// <remarks>
/// The library is given alphabet strings (its own ByteLevel option is off) so that this class decides
/// exactly what a word is, and can honour Hugging Face's <c>ignore_merges</c> (Llama 3): a word that is
/// itself in the vocabulary is emitted as that one token without merging, which can differ from what the
/// merges would build.
/// </remarks>
internal sealed class ByteLevelBpeEncoder : SubwordEncoder
{
    private const int StackLimit = 256;

    private readonly PreTokenizerStep _preTokenizer;
    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>>? _wholeWords;

    public ByteLevelBpeEncoder(BpeModelDefinition model, PreTokenizerStep preTokenizer)
    {
        _preTokenizer = preTokenizer;
        _bpe = BpeTokenizer.Create(new BpeOptions(model.Vocabulary)
        {
            Merges = LastOfEachMerge(model.Merges).Select(m => m.Left + " " + m.Right),
            UnknownToken = model.UnknownToken,
            FuseUnknownTokens = model.FuseUnknown,
            ContinuingSubwordPrefix = model.ContinuingSubwordPrefix,
            EndOfWordSuffix = model.EndOfWordSuffix,
            ByteLevel = false,
        });

        if (model.IgnoreMerges)
        {
            _wholeWords = new Dictionary<string, int>(model.Vocabulary, StringComparer.Ordinal).GetAlternateLookup<ReadOnlySpan<char>>();
        }
    }

    /// <summary>
    /// The merges with repeats dropped, each pair keeping its last position: Hugging Face builds its merge
    /// table so that a later duplicate overwrites an earlier one, while the library rejects duplicates.
    /// </summary>
    private static IEnumerable<(string Left, string Right)> LastOfEachMerge(IReadOnlyList<(string Left, string Right)> merges)
    {
        var last = new Dictionary<(string, string), int>(merges.Count);
        for (int i = 0; i < merges.Count; i++)
        {
            last[merges[i]] = i;
        }

        return last.Count == merges.Count ? merges : merges.Where((m, i) => last[m] == i);
    }

    public override void Encode(string text, List<int> ids)
    {
        var words = new List<string>();
        _preTokenizer.Split(text, words);
        foreach (string word in words)
        {
            EncodeWord(word, ids);
        }
    }

    private void EncodeWord(string word, List<int> ids)
    {
        int byteCount = Encoding.UTF8.GetByteCount(word);
        byte[]? rentedBytes = null;
        char[]? rentedChars = null;
        Span<byte> utf8 = byteCount <= StackLimit ? stackalloc byte[byteCount] : (rentedBytes = ArrayPool<byte>.Shared.Rent(byteCount));
        Span<char> alphabet = byteCount <= StackLimit ? stackalloc char[byteCount] : (rentedChars = ArrayPool<char>.Shared.Rent(byteCount));
        try
        {
            int length = Encoding.UTF8.GetBytes(word, utf8);
            ByteLevelAlphabet.Encode(utf8[..length], alphabet);
            ReadOnlySpan<char> mapped = alphabet[..length];

            if (_wholeWords is { } lookup && lookup.TryGetValue(mapped, out int id))
            {
                ids.Add(id);
                return;
            }

            ids.AddRange(_bpe.EncodeToIds(mapped, considerPreTokenization: false, considerNormalization: false));
        }
        finally
        {
            if (rentedBytes is not null)
            {
                ArrayPool<byte>.Shared.Return(rentedBytes);
                ArrayPool<char>.Shared.Return(rentedChars!);
            }
        }
    }
}
