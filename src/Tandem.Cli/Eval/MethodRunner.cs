namespace Tandem.Cli.Eval;

/// <summary>
/// Runs the methods of <c>tandem eval</c> over the problems, one pair and one generation at a time.
/// </summary>
/// <remarks>
/// The loop is problem-major: every method solves problem i before any method sees problem i + 1. Speeds are
/// compared between methods, and a machine's speed drifts (other processes, frequency, memory bandwidth); run
/// method-major, a slow minute would land on whichever methods ran in it. Interleaved, drift spreads evenly over
/// all of them. One untimed warm-up generation per model first pages the weights in and fills the caches, so the
/// first method measured does not pay for them.
/// </remarks>
/// <param name="pair">The pair every method runs on (each generation starts afresh: both caches cleared).</param>
/// <param name="maxNewTokens">Most tokens one answer may take.</param>
/// <param name="seed">Seed of the sampled method; problem i uses seed + i, so each has its own stream.</param>
internal sealed class MethodRunner(ModelPair pair, int maxNewTokens, ulong seed)
{
    private readonly TandemTokenizer _tokenizer = pair.Small.Tokenizer;

    /// <summary>Runs every method on every problem; <paramref name="progress"/> is told after each generation.</summary>
    /// <param name="keepTokensOf">Name of the method whose answers keep their committed tokens (for the uncertainty report).</param>
    public IReadOnlyList<MethodResult> Run(IReadOnlyList<EvalMethod> methods, IReadOnlyList<EvalProblem> problems,
        string keepTokensOf, Action<string> progress, CancellationToken cancellationToken)
    {
        var tallies = methods.Select(m => new Tally(m, keepTokens: m.Name == keepTokensOf)).ToArray();
        if (problems.Count > 0)
        {
            WarmUp(Prompt(problems[0]), cancellationToken);
        }
        for (int i = 0; i < problems.Count; i++)
        {
            int[] prompt = Prompt(problems[i]);
            foreach (var tally in tallies)
            {
                var options = tally.Method.Options with { MaxNewTokens = maxNewTokens, Seed = seed + (ulong)i };
                var generation = pair.GenerateAsync(prompt, options, cancellationToken);
                var records = generation.RunToEnd(cancellationToken);
                var stats = generation.Stats ?? throw new InvalidOperationException("the pair returned no statistics for a finished generation");
                bool correct = AnswerExtraction.IsCorrect(_tokenizer.Decode([.. generation.Output]), problems[i].Answer);
                tally.Add(correct, records, stats);
                progress(tally.Method.Label);
            }
        }
        return [.. tallies.Select(t => t.Result(problems.Count))];
    }

    private void WarmUp(int[] prompt, CancellationToken cancellationToken)
    {
        foreach (var mode in new[] { PairMode.Large, PairMode.Small })
        {
            var options = new PairOptions(Temperature: 0f) { Mode = mode, MaxNewTokens = maxNewTokens };
            pair.GenerateAsync(prompt, options, cancellationToken).RunToEnd(cancellationToken);
        }
    }

    /// <summary>The prompt's ids (the tokenizer's post-processor adds BOS).</summary>
    private int[] Prompt(EvalProblem problem)
    {
        int[] ids = [.. _tokenizer.Encode(problem.Prompt)];
        if (ids.Length == 0)
        {
            throw new ArgumentException($"problem {problem.Id}: the prompt has no tokens");
        }
        return ids;
    }

    /// <summary>What one method has achieved so far.</summary>
    private sealed class Tally(EvalMethod method, bool keepTokens)
    {
        private long _tokensSmall, _tokensLarge, _drafted, _accepted, _verifications;
        private double _seconds;
        private int _correct;
        private readonly List<ProblemOutcome> _outcomes = [];

        public EvalMethod Method => method;

        public void Add(bool correct, IReadOnlyList<PairToken> records, PairStats stats)
        {
            _correct += correct ? 1 : 0;
            _outcomes.Add(new ProblemOutcome(correct, keepTokens ? [.. records.Where(r => r.Committed)] : []));
            _tokensSmall += stats.TokensSmall;
            _tokensLarge += stats.TokensLarge;
            _drafted += stats.Drafted;
            _accepted += stats.Accepted;
            _verifications += stats.Verifications;
            _seconds += stats.SecondsTotal;
        }

        public MethodResult Result(int problems)
        {
            long tokens = _tokensSmall + _tokensLarge;
            bool speculative = method.Options.Mode == PairMode.Speculative;
            return new MethodResult(
                method,
                Accuracy: problems > 0 ? (double)_correct / problems : 0,
                TokensPerSecond: _seconds > 0 ? tokens / _seconds : 0,
                LargeShare: tokens > 0 ? (double)_tokensLarge / tokens : 0,
                Acceptance: speculative && _drafted > 0 ? (double)_accepted / _drafted : null,
                MeanAccepted: speculative && _verifications > 0 ? (double)_accepted / _verifications : null,
                SecondsPerProblem: problems > 0 ? _seconds / problems : 0,
                _outcomes);
        }
    }
}
