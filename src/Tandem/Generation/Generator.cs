using System.Runtime.CompilerServices;
using Tandem.Interop;

namespace Tandem;

/// <summary>
/// The sampling loop behind <see cref="Model.GenerateAsync(string, GenerationOptions?, CancellationToken)"/>:
/// prefill the prompt, then sample → stream → decode until a stop condition.
/// </summary>
/// <remarks>
/// Native work runs on the thread pool (<c>Task.Run</c>), never on the
/// caller's synchronization context, so a UI thread stays responsive and a cancellation is seen between steps;
/// a long prompt's prefill polls the token between layers through the native abort callback. Each step runs
/// after the previous one completed, which satisfies the session's one-thread-at-a-time rule.
/// </remarks>
internal static class Generator
{
    public static async IAsyncEnumerable<GeneratedToken> RunAsync(Model model, int[] prompt, GenerationOptions options,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var tokenizer = model.Tokenizer;
        HashSet<int> endOfSequence = options.IgnoreEos ? [] : [.. model.Info.EosTokenIds, .. tokenizer.EosTokenIds];
        using var session = model.CreateSession(options.Session);
        using var sampler = new Sampler(options.Sampling);
        if (prompt.Length >= session.Capacity)
        {
            throw new ContextFullException(
                $"the prompt has {prompt.Length} tokens, which leaves no room to generate within the context limit of " +
                $"{session.Capacity} tokens, set by {session.ContextLimitSource}");
        }
        var decoder = tokenizer.CreateIncrementalDecoder();

        Step step = await Task.Run(() =>
        {
            session.Prefill(prompt, options.Prefill is { } prefill ? prefill with { AllLogits = false } : null, cancellationToken);
            return SampleStep(sampler, session);
        }, cancellationToken).ConfigureAwait(false);

        for (int generated = 1; ; generated++)
        {
            (FinishReason finish, string? detail) = StopCondition(step.Token, generated, prompt.Length + generated);
            // Models often pad their vocabulary past the tokenizer's (Qwen2: 151936 rows, 151665 tokens); a padding
            // row has no text.
            bool hasText = step.Token < tokenizer.VocabularySize;
            string text = hasText ? decoder.Append(step.Token) : string.Empty;
            if (finish != FinishReason.None)
            {
                text += decoder.Flush(); // the bytes of a character the stream ended inside, as U+FFFD
            }
            yield return new GeneratedToken(step.Token, text, hasText ? tokenizer.DecodeToken(step.Token) : string.Empty,
                step.Entropy, step.Au, step.Eu, step.MaxProb, finish, detail);
            if (finish != FinishReason.None)
            {
                yield break;
            }

            int token = step.Token;
            step = await Task.Run(() =>
            {
                session.Decode(token);
                return SampleStep(sampler, session);
            }, cancellationToken).ConfigureAwait(false);
        }

        (FinishReason, string?) StopCondition(int token, int generated, int sequenceLength)
        {
            if (endOfSequence.Contains(token))
            {
                return (FinishReason.EndOfSequence, $"end-of-sequence token {token}");
            }
            if (generated >= options.MaxTokens)
            {
                return (FinishReason.MaxTokens, $"generated the maximum of {options.MaxTokens} tokens");
            }
            if (sequenceLength >= session.Capacity)
            {
                return (FinishReason.ContextLimit,
                    $"reached the context limit of {session.Capacity} tokens, set by {session.ContextLimitSource}");
            }
            return (FinishReason.None, null);
        }
    }

    /// <summary>One sampled token with the statistics of the distribution it came from.</summary>
    private readonly record struct Step(int Token, double Entropy, double Au, double Eu, double MaxProb);

    private static unsafe Step SampleStep(Sampler sampler, Session session)
    {
        tdm_token_stats stats = default;
        stats.struct_size = (uint)sizeof(tdm_token_stats);
        int token = sampler.Sample(session, &stats);
        return new Step(token, stats.entropy, stats.au, stats.eu, stats.max_prob);
    }
}
