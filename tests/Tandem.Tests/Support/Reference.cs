namespace Tandem.Tests.Support;

/// <summary>Plain float64 reference math for checking the engine's outputs.</summary>
internal static class Reference
{
    public static double LogSumExp(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (float z in logits)
        {
            max = Math.Max(max, z);
        }
        double sum = 0;
        foreach (float z in logits)
        {
            sum += Math.Exp(z - max);
        }
        return max + Math.Log(sum);
    }

    public static double[] LogSoftmax(ReadOnlySpan<float> logits)
    {
        double lse = LogSumExp(logits);
        var result = new double[logits.Length];
        for (int i = 0; i < logits.Length; i++)
        {
            result[i] = logits[i] - lse;
        }
        return result;
    }

    /// <summary>Shannon entropy in nats, −Σ p ln p.</summary>
    public static double Entropy(ReadOnlySpan<float> logits)
    {
        double entropy = 0;
        foreach (double logp in LogSoftmax(logits))
        {
            entropy -= Math.Exp(logp) * logp;
        }
        return entropy;
    }

    public static double MaxAbsDifference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length)
        {
            throw new ArgumentException($"lengths differ: {a.Length} vs {b.Length}");
        }
        double max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            max = Math.Max(max, Math.Abs((double)a[i] - b[i]));
        }
        return max;
    }

    public static double MaxAbsDifference(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            max = Math.Max(max, Math.Abs(a[i] - b[i]));
        }
        return max;
    }

    public static double MaxAbs(ReadOnlySpan<float> values)
    {
        double max = 0;
        foreach (float v in values)
        {
            max = Math.Max(max, Math.Abs(v));
        }
        return max;
    }
}
