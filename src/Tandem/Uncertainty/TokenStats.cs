using Tandem.Interop;

namespace Tandem;

/// <summary>
/// Statistics of one predictive distribution at temperature 1 (<c>tdm_token_stats</c>; ALGORITHMS.md sections 1
/// and 5), whatever temperature a token was sampled at.
/// </summary>
/// <param name="Entropy">Shannon entropy in nats.</param>
/// <param name="EntropyBits">Entropy in bits (entropy / ln 2).</param>
/// <param name="EntropyNormalized">Entropy / ln V, in [0, 1].</param>
/// <param name="MaxProb">The largest probability, exp(z_max - lse).</param>
/// <param name="LogSumExp">log Σ exp(z) of the logits.</param>
/// <param name="Au">LogTokU aleatoric uncertainty over the top-K logits ("several tokens are plausible").</param>
/// <param name="Eu">LogTokU epistemic uncertainty, K / (Σ relu(z_k) + K) ("little evidence").</param>
/// <param name="TopIds">The K most likely ids, by descending logit, ties by lower id first.</param>
/// <param name="TopLogits">Their logits.</param>
/// <param name="TopProbs">Their probabilities.</param>
public sealed record TokenStats(
    double Entropy,
    double EntropyBits,
    double EntropyNormalized,
    double MaxProb,
    double LogSumExp,
    double Au,
    double Eu,
    IReadOnlyList<int> TopIds,
    IReadOnlyList<float> TopLogits,
    IReadOnlyList<float> TopProbs)
{
    internal static unsafe TokenStats FromNative(in tdm_token_stats stats)
    {
        int k = (int)Math.Min(stats.top_k, (uint)NativeMethods.TDM_MAX_TOP_K);
        var ids = new int[k];
        var logits = new float[k];
        var probs = new float[k];
        fixed (tdm_token_stats* s = &stats)
        {
            new ReadOnlySpan<int>(s->top_ids, k).CopyTo(ids);
            new ReadOnlySpan<float>(s->top_logits, k).CopyTo(logits);
            new ReadOnlySpan<float>(s->top_probs, k).CopyTo(probs);
        }
        return new TokenStats(stats.entropy, stats.entropy_bits, stats.entropy_normalized, stats.max_prob, stats.logsumexp,
            stats.au, stats.eu, Array.AsReadOnly(ids), Array.AsReadOnly(logits), Array.AsReadOnly(probs));
    }
}
