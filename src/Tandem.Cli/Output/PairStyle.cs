using System.Globalization;

namespace Tandem.Cli.Output;

/// <summary>
/// How <c>generate --show-uncertainty</c> marks the tokens of a model pair: the colour is the token's uncertainty
/// (<see cref="UncertaintyStyle"/>), and the large model's tokens are bold and underlined. Proposals that were not
/// kept (speculative drafts the large model rejected, R-Stitch tokens handed over) are shown struck through and dim
/// on a terminal, and left out of the annotated text otherwise.
/// </summary>
internal static class PairStyle
{
    private const string LargeModel = "\u001b[1;4m";
    private const string Dropped = "\u001b[2;9m";
    private const string Reset = "\u001b[0m";

    /// <summary>A committed token: coloured, or followed by [S|L EU/AU].</summary>
    public static string Mark(string text, PairModelKind model, double au, double eu, bool color)
    {
        if (!color)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{text}[{Letter(model)} {eu:0.00}/{au:0.00}]");
        }
        string coloured = UncertaintyStyle.Mark(text, au, eu, color: true);
        return model == PairModelKind.Large && text.Length > 0 ? LargeModel + coloured : coloured;
    }

    /// <summary>A proposal that was not committed: struck through on a terminal, nothing otherwise.</summary>
    public static string MarkDropped(string text, bool color) => color && text.Length > 0 ? Dropped + text + Reset : "";

    public static string Legend(bool color) => color
        ? $"{UncertaintyStyle.Legend(color)}  small model: plain  {LargeModel}large model{Reset}  {Dropped}not kept{Reset}"
        : "[S|L EU/AU] after each token: written by the small (S) or large (L) model; epistemic / aleatoric uncertainty (LogTokU, K = 2)";

    private static char Letter(PairModelKind model) => model == PairModelKind.Large ? 'L' : 'S';
}
