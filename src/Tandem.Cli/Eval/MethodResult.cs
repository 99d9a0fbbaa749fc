namespace Tandem.Cli.Eval;

/// <summary>One problem as a method solved it.</summary>
/// <param name="Correct">Whether the extracted answer equals the expected one.</param>
/// <param name="Tokens">The committed tokens with their statistics (kept only where the report needs them).</param>
internal sealed record ProblemOutcome(bool Correct, IReadOnlyList<PairToken> Tokens);

/// <summary>What one method achieved over the evaluation set: one row of the table and of the JSON.</summary>
/// <param name="Method">The method and its threshold.</param>
/// <param name="Accuracy">Fraction of problems answered correctly, in [0, 1].</param>
/// <param name="TokensPerSecond">Committed tokens over the wall time of all generations, prompt prefill included.</param>
/// <param name="LargeShare">Fraction of committed tokens the large model wrote, in [0, 1].</param>
/// <param name="Acceptance">Speculative: fraction of draft tokens accepted; null for the other methods.</param>
/// <param name="MeanAccepted">Speculative: accepted draft tokens per verification; null for the other methods.</param>
/// <param name="SecondsPerProblem">Mean wall time of one generation (the latency of one answer).</param>
/// <param name="Outcomes">Per problem, in the set's order.</param>
internal sealed record MethodResult(
    EvalMethod Method,
    double Accuracy,
    double TokensPerSecond,
    double LargeShare,
    double? Acceptance,
    double? MeanAccepted,
    double SecondsPerProblem,
    IReadOnlyList<ProblemOutcome> Outcomes);
