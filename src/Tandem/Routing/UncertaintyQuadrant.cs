namespace Tandem;

/// <summary>
/// The four LogTokU quadrants of (aleatoric, epistemic) uncertainty (ALGORITHMS.md 5.1). Probability-based measures
/// cannot tell II from III, nor I from IV; evidence can. The values are the quadrants' numbers.
/// </summary>
public enum UncertaintyQuadrant
{
    /// <summary>I: high AU, high EU: "I do not know".</summary>
    DoesNotKnow = 1,
    /// <summary>II: low AU, high EU: lacks knowledge, but suggests one answer.</summary>
    LacksKnowledge = 2,
    /// <summary>III: low AU, low EU: sure.</summary>
    Sure = 3,
    /// <summary>IV: high AU, low EU: knows more than one answer.</summary>
    SeveralAnswers = 4,
}

/// <summary>Classifies LogTokU (AU, EU) pairs into <see cref="UncertaintyQuadrant"/>s.</summary>
public static class Quadrant
{
    /// <summary>
    /// The quadrant of (<paramref name="au"/>, <paramref name="eu"/>): each is high when strictly above its threshold.
    /// </summary>
    /// <exception cref="ArgumentException">A value or threshold is NaN.</exception>
    public static UncertaintyQuadrant Classify(double au, double eu, double auThreshold, double euThreshold)
    {
        RequireNumber(au, nameof(au));
        RequireNumber(eu, nameof(eu));
        RequireNumber(auThreshold, nameof(auThreshold));
        RequireNumber(euThreshold, nameof(euThreshold));
        bool highAu = au > auThreshold;
        bool highEu = eu > euThreshold;
        return (highAu, highEu) switch
        {
            (true, true) => UncertaintyQuadrant.DoesNotKnow,
            (false, true) => UncertaintyQuadrant.LacksKnowledge,
            (false, false) => UncertaintyQuadrant.Sure,
            (true, false) => UncertaintyQuadrant.SeveralAnswers,
        };
    }

    /// <summary>Whether the quadrant has high epistemic uncertainty (I or II): the model lacks evidence.</summary>
    public static bool HasHighEu(UncertaintyQuadrant quadrant) =>
        quadrant is UncertaintyQuadrant.DoesNotKnow or UncertaintyQuadrant.LacksKnowledge;

    private static void RequireNumber(double value, string paramName)
    {
        if (double.IsNaN(value))
        {
            throw new ArgumentException($"{paramName} is NaN", paramName);
        }
    }
}
