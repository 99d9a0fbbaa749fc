using System.Globalization;

namespace Tandem.Cli.Output;

/// <summary>
/// How <c>generate --show-uncertainty</c> marks each token by its LogTokU uncertainty (K = 2): ANSI colours on a
/// terminal, "[EU/AU]" annotations otherwise (NO_COLOR, a pipe, a file).
/// </summary>
/// <remarks>
/// The thresholds split the LogTokU quadrants (ALGORITHMS.md 5.1). EU = 2 / (relu(z1) + relu(z2) + 2) is at
/// least 0.25 when the two top logits sum to 6 or less: little evidence for any token, the model is guessing
/// (red, whatever AU says). Otherwise AU near its K = 2 maximum ln 2 ≈ 0.69 means the two top tokens carry
/// similar evidence; AU ≥ 0.6 holds when they are within about a factor 2 (yellow: several plausible tokens).
/// Everything else is green: evidence for one token.
/// </remarks>
internal static class UncertaintyStyle
{
    public const double HighEu = 0.25;
    public const double HighAu = 0.6;

    private const string Green = "\u001b[32m";
    private const string Yellow = "\u001b[33m";
    private const string Red = "\u001b[31m";
    private const string Reset = "\u001b[0m";

    /// <summary>The text of one token as shown: coloured, or followed by its [EU/AU].</summary>
    public static string Mark(string text, double au, double eu, bool color)
    {
        if (color)
        {
            return text.Length == 0 ? text : ColorOf(au, eu) + text + Reset;
        }
        return string.Create(CultureInfo.InvariantCulture, $"{text}[{eu:0.00}/{au:0.00}]");
    }

    /// <summary>The legend line printed after the text.</summary>
    public static string Legend(bool color) => color
        ? string.Create(CultureInfo.InvariantCulture,
            $"{Green}confident{Reset}  {Yellow}several plausible tokens (AU >= {HighAu:0.00}){Reset}  " +
            $"{Red}little evidence (EU >= {HighEu:0.00}){Reset}")
        : "[EU/AU] after each token: epistemic / aleatoric uncertainty (LogTokU, K = 2)";

    private static string ColorOf(double au, double eu) => eu >= HighEu ? Red : au >= HighAu ? Yellow : Green;
}
