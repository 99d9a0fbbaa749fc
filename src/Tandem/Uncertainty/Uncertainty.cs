using Tandem.Interop;

namespace Tandem;

/// <summary>Token uncertainty computed by the native core from explicit logits or evidence values.</summary>
public static unsafe class Uncertainty
{
    /// <summary>The LogTokU K the method's downstream tasks use (ALGORITHMS.md 5.1).</summary>
    public const int DefaultTopK = 2;

    /// <summary>The largest top-K the statistics can hold.</summary>
    public const int MaxTopK = NativeMethods.TDM_MAX_TOP_K;

    /// <summary>Entropy, LogTokU and top-K statistics of one logit vector (<c>tdm_stats_from_logits</c>).</summary>
    /// <param name="logits">The logits of one position, at least <paramref name="topK"/> of them.</param>
    /// <param name="topK">The LogTokU K and the length of the top lists, in [1, <see cref="MaxTopK"/>].</param>
    /// <exception cref="ArgumentException">Empty logits, a NaN logit or K larger than the vocabulary.</exception>
    public static TokenStats FromLogits(ReadOnlySpan<float> logits, int topK = DefaultTopK)
    {
        RequireNonEmpty(logits, nameof(logits));
        RequireTopK(topK);
        tdm_token_stats stats = default;
        stats.struct_size = (uint)sizeof(tdm_token_stats);
        fixed (float* p = logits)
        {
            NativeStatus.Check(NativeMethods.tdm_stats_from_logits(p, (ulong)logits.Length, (uint)topK, &stats));
        }
        return TokenStats.FromNative(in stats);
    }

    /// <summary>
    /// LogTokU aleatoric and epistemic uncertainty of explicit Dirichlet evidence values, in any order
    /// (<c>tdm_logtoku</c>; K is the length of <paramref name="alpha"/>).
    /// </summary>
    public static (double Au, double Eu) LogTokU(ReadOnlySpan<float> alpha)
    {
        RequireNonEmpty(alpha, nameof(alpha));
        float au, eu;
        fixed (float* p = alpha)
        {
            NativeStatus.Check(NativeMethods.tdm_logtoku(p, (uint)alpha.Length, &au, &eu));
        }
        return (au, eu);
    }

    internal static void RequireTopK(int topK, string paramName = "topK")
    {
        if (topK is < 1 or > MaxTopK)
        {
            throw new ArgumentOutOfRangeException(paramName, topK, $"top-K must be in [1, {MaxTopK}]");
        }
    }

    private static void RequireNonEmpty(ReadOnlySpan<float> values, string paramName)
    {
        if (values.IsEmpty)
        {
            throw new ArgumentException($"{paramName} is empty", paramName);
        }
    }
}
