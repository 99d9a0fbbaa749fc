namespace Tandem;

/// <summary>
/// LogTokU's response-level reliability (ALGORITHMS.md 5.2): per token u = AU × EU (K = 2); the response's uncertainty
/// is the mean of its largest <see cref="DefaultTopCount"/> values of u (of all of them when there are fewer), and its
/// reliability is the negative of that: higher means more reliable.
/// </summary>
public static class ResponseReliability
{
    /// <summary>How many of the largest AU × EU values are averaged (the reference code's top-25).</summary>
    public const int DefaultTopCount = 25;

    /// <summary>The reliability of a response whose tokens have these AU and EU values (same length, at least one).</summary>
    /// <exception cref="ArgumentException">Empty or unequal spans, a NaN, or <paramref name="topCount"/> &lt; 1.</exception>
    public static double Compute(ReadOnlySpan<double> au, ReadOnlySpan<double> eu, int topCount = DefaultTopCount)
    {
        if (au.Length != eu.Length)
        {
            throw new ArgumentException($"{au.Length} AU values but {eu.Length} EU values", nameof(eu));
        }
        if (au.IsEmpty)
        {
            throw new ArgumentException("a response needs at least one token", nameof(au));
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(topCount, 1);
        var products = new double[au.Length];
        for (int i = 0; i < products.Length; i++)
        {
            products[i] = au[i] * eu[i];
            if (double.IsNaN(products[i]))
            {
                throw new ArgumentException($"token {i} has a NaN AU or EU", nameof(au));
            }
        }
        Array.Sort(products);
        int count = Math.Min(topCount, products.Length);
        double sum = 0;
        for (int i = products.Length - count; i < products.Length; i++)
        {
            sum += products[i];
        }
        return -(sum / count);
    }

    /// <summary>The reliability of the committed tokens of a pair generation (rejected and discarded ones do not count).</summary>
    public static double Compute(IEnumerable<PairToken> tokens, int topCount = DefaultTopCount)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var committed = tokens.Where(t => t.Committed).ToArray();
        return Compute(committed.Select(t => t.Au).ToArray(), committed.Select(t => t.Eu).ToArray(), topCount);
    }

    /// <summary>
    /// The reliability of scored tokens (e.g. a response's part of <see cref="Session.Score(ReadOnlySpan{int}, int, CancellationToken)"/>,
    /// with K = 2); tokens nothing predicted (AU or EU null) do not count.
    /// </summary>
    public static double Compute(IEnumerable<ScoredToken> tokens, int topCount = DefaultTopCount)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var defined = tokens.Where(t => t.Au is not null && t.Eu is not null).ToArray();
        return Compute(defined.Select(t => t.Au!.Value).ToArray(), defined.Select(t => t.Eu!.Value).ToArray(), topCount);
    }
}
