namespace Tandem.Cli.Eval;

/// <summary>Runs the methods of <c>tandem eval</c> over the problems, one pair and one generation at a time.</summary>
/// <param name="pair">The pair every method runs on (each generation starts afresh: both caches cleared).</param>
/// <param name="maxNewTokens">Most tokens one answer may take.</param>
/// <param name="seed">Seed of the sampled method; problem i uses seed + i, so each has its own stream.</param>
internal sealed class MethodRunner(ModelPair pair, int maxNewTokens, ulong seed)
{
    private readonly TandemTokenizer _tokenizer = pair.Small.Tokenizer;
    private readonly Dictionary<EvalProblem, int[]> _prompts = [];

    /// <summary>Runs <paramref name="method"/> on every problem; <paramref name="progress"/> is told after each.</summary>
    /// <param name="keepTokens">Keep each answer's committed tokens in the result (for the uncertainty report).</param>
    public MethodResult Run(EvalMethod method, IReadOnlyList<EvalProblem> problems, bool keepTokens, Action progress,
        CancellationToken cancellationToken)
    {
        long tokensSmall = 0, tokensLarge = 0, drafted = 0, accepted = 0, verifications = 0;
        double seconds = 0;
        int correct = 0;
        var outcomes = new List<ProblemOutcome>(problems.Count);
        for (int i = 0; i < problems.Count; i++)
        {
            var options = method.Options with { MaxNewTokens = maxNewTokens, Seed = seed + (ulong)i };
            var generation = pair.Generate(Prompt(problems[i]), options, cancellationToken);
            var records = generation.RunToEnd(cancellationToken);
            var stats = generation.Stats ?? throw new InvalidOperationException("the pair returned no statistics for a finished generation");

            bool isCorrect = AnswerExtraction.IsCorrect(_tokenizer.Decode([.. generation.Output]), problems[i].Answer);
            correct += isCorrect ? 1 : 0;
            outcomes.Add(new ProblemOutcome(isCorrect, keepTokens ? [.. records.Where(r => r.Committed)] : []));
            tokensSmall += stats.TokensSmall;
            tokensLarge += stats.TokensLarge;
            drafted += stats.Drafted;
            accepted += stats.Accepted;
            verifications += stats.Verifications;
            seconds += stats.SecondsTotal;
            progress();
        }

        long tokens = tokensSmall + tokensLarge;
        bool speculative = method.Options.Mode == PairMode.Speculative;
        return new MethodResult(
            method,
            Accuracy: (double)correct / problems.Count,
            TokensPerSecond: seconds > 0 ? tokens / seconds : 0,
            LargeShare: tokens > 0 ? (double)tokensLarge / tokens : 0,
            Acceptance: speculative && drafted > 0 ? (double)accepted / drafted : null,
            MeanAccepted: speculative && verifications > 0 ? (double)accepted / verifications : null,
            SecondsPerProblem: seconds / problems.Count,
            outcomes);
    }

    /// <summary>The prompt's ids, tokenized once for all methods (the tokenizer's post-processor adds BOS).</summary>
    private int[] Prompt(EvalProblem problem)
    {
        if (!_prompts.TryGetValue(problem, out int[]? ids))
        {
            ids = [.. _tokenizer.Encode(problem.Prompt)];
            if (ids.Length == 0)
            {
                throw new ArgumentException($"problem {problem.Id}: the prompt has no tokens");
            }
            _prompts[problem] = ids;
        }
        return ids;
    }
}
