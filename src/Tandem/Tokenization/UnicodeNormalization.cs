using System.Collections.Frozen;
using System.Text;

namespace Tandem.Tokenization;

/// <summary>
/// Unicode canonical normalization (NFC, NFD) from tables carried in <c>UnicodeData.g.cs</c>.
/// </summary>
/// <remarks>
/// <see cref="string.Normalize(NormalizationForm)"/> silently returns its input unchanged when the
/// process runs with InvariantGlobalization (this repository's default), which would make a tokenizer
/// that declares NFC (Qwen2) produce ids that differ from Hugging Face's for decomposed input. The
/// canonical forms need only the decomposition and combining-class tables, so the tokenizer carries
/// them. The compatibility forms (NFKC, NFKD) need far more data; they are used only when the runtime
/// can normalize.
/// </remarks>
internal static partial class UnicodeNormalization
{
    // Hangul syllables decompose and compose arithmetically (Unicode §3.12).
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    // Below U+0300 no character decomposes under NFC or combines with a preceding one, so text made
    // only of such characters is already in NFC: the common case costs one scan.
    private const char FirstNfcSensitive = '\u0300';

    private static readonly FrozenDictionary<int, int[]> s_fullDecomposition = BuildFullDecompositions();
    private static readonly FrozenDictionary<long, int> s_composition = BuildCompositions();
    private static readonly int[] s_cccRuns = CombiningClassRuns.ToArray();

    /// <summary>Whether this process's runtime normalizes text itself (it does not in invariant globalization mode).</summary>
    public static bool RuntimeCanNormalize { get; } = "e\u0301".Normalize(NormalizationForm.FormC) == "\u00E9";

    /// <summary>Whether <paramref name="form"/> can be applied in this process.</summary>
    public static bool Supports(NormalizationForm form) =>
        form is NormalizationForm.FormC or NormalizationForm.FormD || RuntimeCanNormalize;

    public static string Normalize(string text, NormalizationForm form) => form switch
    {
        NormalizationForm.FormC => ToNfc(text),
        NormalizationForm.FormD => ToNfd(text),
        _ when RuntimeCanNormalize => text.Normalize(form),
        _ => throw new NotSupportedException($"Unicode normalization {form} needs the runtime's globalization support, which this process runs without (InvariantGlobalization)."),
    };

    public static string ToNfc(string text)
    {
        if (!text.AsSpan().ContainsAnyInRange(FirstNfcSensitive, char.MaxValue))
        {
            return text;
        }

        var codePoints = Decompose(text);
        Compose(codePoints);
        return ToUtf16(codePoints);
    }

    public static string ToNfd(string text)
    {
        if (!text.AsSpan().ContainsAnyInRange('\u00C0', char.MaxValue))
        {
            return text; // nothing below U+00C0 decomposes
        }

        return ToUtf16(Decompose(text));
    }

    /// <summary>The canonical combining class of a code point (0 for starters).</summary>
    public static int CombiningClass(int codePoint)
    {
        int lo = 0, hi = s_cccRuns.Length / 3 - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (codePoint < s_cccRuns[3 * mid])
            {
                hi = mid - 1;
            }
            else if (codePoint > s_cccRuns[3 * mid + 1])
            {
                lo = mid + 1;
            }
            else
            {
                return s_cccRuns[3 * mid + 2];
            }
        }

        return 0;
    }

    /// <summary>Full canonical decomposition followed by the canonical ordering of combining marks.</summary>
    private static List<int> Decompose(string text)
    {
        var result = new List<int>(text.Length + 8);
        foreach (Rune rune in text.EnumerateRunes())
        {
            int cp = rune.Value;
            if (cp - SBase is >= 0 and < SCount)
            {
                int index = cp - SBase;
                result.Add(LBase + index / NCount);
                result.Add(VBase + index % NCount / TCount);
                if (index % TCount != 0)
                {
                    result.Add(TBase + index % TCount);
                }
            }
            else if (s_fullDecomposition.TryGetValue(cp, out int[]? parts))
            {
                result.AddRange(parts);
            }
            else
            {
                result.Add(cp);
            }
        }

        // Canonical ordering: a stable sort of each run of non-starters by combining class.
        for (int i = 1; i < result.Count; i++)
        {
            int ccc = CombiningClass(result[i]);
            if (ccc == 0)
            {
                continue;
            }

            int j = i;
            while (j > 0 && CombiningClass(result[j - 1]) > ccc)
            {
                (result[j - 1], result[j]) = (result[j], result[j - 1]);
                j--;
            }
        }

        return result;
    }

    /// <summary>The canonical composition algorithm (UAX #15), in place.</summary>
    private static void Compose(List<int> codePoints)
    {
        if (codePoints.Count == 0)
        {
            return;
        }

        int starterIndex = 0;
        int lastClass = CombiningClass(codePoints[0]);
        if (lastClass != 0)
        {
            lastClass = 256; // a leading non-starter blocks everything after it from composing with it
        }

        int write = 1;
        for (int read = 1; read < codePoints.Count; read++)
        {
            int cp = codePoints[read];
            int ccc = CombiningClass(cp);
            if ((lastClass < ccc || lastClass == 0) && TryCompose(codePoints[starterIndex], cp, out int composite))
            {
                codePoints[starterIndex] = composite;
                continue;
            }

            if (ccc == 0)
            {
                starterIndex = write;
            }

            lastClass = ccc;
            codePoints[write++] = cp;
        }

        codePoints.RemoveRange(write, codePoints.Count - write);
    }

    private static bool TryCompose(int first, int second, out int composite)
    {
        if (first - LBase is >= 0 and < LCount && second - VBase is >= 0 and < VCount)
        {
            composite = SBase + ((first - LBase) * VCount + (second - VBase)) * TCount;
            return true;
        }

        if (first - SBase is >= 0 and < SCount && (first - SBase) % TCount == 0 && second - TBase is > 0 and < TCount)
        {
            composite = first + (second - TBase);
            return true;
        }

        return s_composition.TryGetValue(PairKey(first, second), out composite);
    }

    private static long PairKey(int first, int second) => ((long)first << 21) | (uint)second;

    private static string ToUtf16(List<int> codePoints)
    {
        var builder = new StringBuilder(codePoints.Count + 4);
        foreach (int cp in codePoints)
        {
            builder.Append(new Rune(cp));
        }

        return builder.ToString();
    }

    private static FrozenDictionary<int, int[]> BuildFullDecompositions()
    {
        ReadOnlySpan<int> table = CanonicalMappings;
        var oneLevel = new Dictionary<int, int[]>(table.Length / 3);
        for (int i = 0; i < table.Length; i += 3)
        {
            int cp = table[i] & ~ComposesFlag;
            oneLevel[cp] = table[i + 2] < 0 ? [table[i + 1]] : [table[i + 1], table[i + 2]];
        }

        var full = new Dictionary<int, int[]>(oneLevel.Count);
        foreach (int cp in oneLevel.Keys)
        {
            var parts = new List<int>(4);
            Expand(cp, oneLevel, parts);
            full[cp] = [.. parts];
        }

        return full.ToFrozenDictionary();

        static void Expand(int cp, Dictionary<int, int[]> oneLevel, List<int> parts)
        {
            if (oneLevel.TryGetValue(cp, out int[]? next))
            {
                foreach (int part in next)
                {
                    Expand(part, oneLevel, parts);
                }
            }
            else
            {
                parts.Add(cp);
            }
        }
    }

    private static FrozenDictionary<long, int> BuildCompositions()
    {
        ReadOnlySpan<int> table = CanonicalMappings;
        var pairs = new Dictionary<long, int>();
        for (int i = 0; i < table.Length; i += 3)
        {
            if ((table[i] & ComposesFlag) != 0)
            {
                pairs[PairKey(table[i + 1], table[i + 2])] = table[i] & ~ComposesFlag;
            }
        }

        return pairs.ToFrozenDictionary();
    }
}
