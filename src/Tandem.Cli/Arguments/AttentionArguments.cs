using System.Globalization;

namespace Tandem.Cli.Arguments;

/// <summary>
/// The prefill attention options shared by <c>tandem generate</c> and <c>tandem score</c>: the method and its knobs
/// (ALGORITHMS.md 3 and 4). Each knob carries its method's prefix (--threshold belongs to the routing policies of
/// two-model decoding); a knob of the other method is a usage error rather than silently ignored.
/// </summary>
internal static class AttentionArguments
{
    private static readonly PrefillOptions Defaults = new();

    public static readonly OptionSpec Method = new("--attention", "METHOD",
        "prefill attention: dense, xattention or flexprefill (block-sparse: skips attention blocks of long prompts; decode stays dense) (default: dense)");

    public static readonly OptionSpec BlockSize = new("--block-size", "B",
        $"block-sparse attention block in tokens, 64 or 128 (default: {Defaults.BlockSize})");

    public static readonly OptionSpec XAttentionStride = new("--xattn-stride", "S",
        $"XAttention antidiagonal stride, divides the block size (default: {Defaults.XAttentionStride})");

    public static readonly OptionSpec XAttentionThreshold = new("--xattn-threshold", "T",
        $"XAttention cumulative threshold per block row, >= 0; 1 keeps every block (default: {Number(Defaults.XAttentionThreshold)})");

    public static readonly OptionSpec XAttentionFp8 = new("--xattn-fp8", null,
        "XAttention scores blocks from fp8 (E4M3) copies of Q and K, per-head power-of-two scale; the attention itself stays exact (default: off)");

    public static readonly OptionSpec FlexGamma = new("--flex-gamma", "G",
        $"FlexPrefill attention coverage, in (0, 1] (default: {Number(Defaults.FlexGamma)})");

    public static readonly OptionSpec FlexTau = new("--flex-tau", "T",
        $"FlexPrefill Jensen-Shannon distance below which a head is query-aware, >= 0 (default: {Number(Defaults.FlexTau)})");

    public static readonly OptionSpec FlexMinBudget = new("--flex-min-budget", "N",
        $"FlexPrefill minimum budget in tokens (default: {Defaults.FlexMinBudget})");

    /// <summary>Every option, in the order the usage text lists them.</summary>
    public static readonly OptionSpec[] Options =
        [Method, BlockSize, XAttentionStride, XAttentionThreshold, XAttentionFp8, FlexGamma, FlexTau, FlexMinBudget];

    private static readonly Dictionary<string, Attention> Methods = new()
    {
        ["dense"] = Attention.Dense,
        ["xattention"] = Attention.XAttention,
        ["flexprefill"] = Attention.FlexPrefill,
    };

    /// <summary>The name --attention takes for <paramref name="method"/> (also what score --json reports).</summary>
    public static string Name(Attention method) => Methods.First(m => m.Value == method).Key;

    /// <summary>
    /// The prefill options the arguments ask for (values that do not parse, an unknown method or a knob of another
    /// method are usage errors); call <see cref="PrefillOptions.Validate"/> for the ranges.
    /// </summary>
    public static PrefillOptions Bind(ParsedArguments args)
    {
        var method = args.Choice(Method.Name, Attention.Dense, Methods);
        OptionSpec[] xattention = [XAttentionStride, XAttentionThreshold, XAttentionFp8];
        OptionSpec[] flexprefill = [FlexGamma, FlexTau, FlexMinBudget];
        OptionSpec[] sparse = [BlockSize, .. xattention, .. flexprefill];
        foreach (var option in sparse)
        {
            bool applies = method switch
            {
                Attention.XAttention => option == BlockSize || xattention.Contains(option),
                Attention.FlexPrefill => option == BlockSize || flexprefill.Contains(option),
                _ => false,
            };
            if (!applies && Given(args, option))
            {
                throw new UsageException($"{option.Name} does not apply to --attention {Name(method)}", args.Command);
            }
        }
        return new PrefillOptions(Attention: method)
        {
            BlockSize = args.Int32(BlockSize.Name, Defaults.BlockSize),
            XAttentionStride = args.Int32(XAttentionStride.Name, Defaults.XAttentionStride),
            XAttentionThreshold = args.Single(XAttentionThreshold.Name, Defaults.XAttentionThreshold),
            XAttentionFp8 = args.Flag(XAttentionFp8.Name),
            FlexGamma = args.Single(FlexGamma.Name, Defaults.FlexGamma),
            FlexTau = args.Single(FlexTau.Name, Defaults.FlexTau),
            FlexMinBudget = args.Int32(FlexMinBudget.Name, Defaults.FlexMinBudget),
        };
    }

    /// <summary>A usage error if any attention option was given where none applies (e.g. a model pair's generation).</summary>
    public static void RequireAbsent(ParsedArguments args, string where)
    {
        if (Options.FirstOrDefault(o => Given(args, o)) is { } given)
        {
            throw new UsageException($"{given.Name} does not apply to {where}", args.Command);
        }
    }

    private static bool Given(ParsedArguments args, OptionSpec option) =>
        option.IsFlag ? args.Flag(option.Name) : args.Optional(option.Name) is not null;

    private static string Number(float value) => value.ToString(CultureInfo.InvariantCulture);
}
