using System.Globalization;

namespace Tandem.Cli.Eval;

/// <summary>One row of the evaluation: a decoding method of the pair, at one threshold where it has one.</summary>
/// <param name="Name">"large", "small", "speculative-greedy", "speculative-sampled", "rstitch" or "ead" (the JSON names).</param>
/// <param name="Threshold">The swept threshold (R-Stitch: normalized entropy; EAD: window-mean bits); null otherwise.</param>
/// <param name="Options">How the pair generates for this row (max tokens and seed set by the runner).</param>
internal sealed record EvalMethod(string Name, float? Threshold, PairOptions Options)
{
    public string Label => Threshold is { } t ? string.Create(CultureInfo.InvariantCulture, $"{Name} {t:0.###}") : Name;

    /// <summary>Whether this is an EAD row that drops the triggering small token (<c>--ead-regenerate</c>).</summary>
    public bool RegeneratesOnSwitch => Options.Policy is WindowedEntropyPolicy { RegenerateOnSwitch: true };
}

/// <summary>
/// The methods <c>tandem eval</c> runs, in order. Every method decodes greedily except speculative-sampled, which
/// samples at temperature 1 (no top-k/top-p) so that its output is distributed exactly as the large model's.
/// </summary>
/// <remarks>
/// The threshold grids cover each signal's whole range, extremes included, denser where the demo models' tokens lie
/// (most are near-deterministic: entropy close to 0):
/// R-Stitch on normalized entropy H / ln V in [0, 1]: 0 sends every token to the large model (large-only apart from
/// the rare token of exactly zero entropy), 1 never does (small-only).
/// EAD on the rolling mean of the entropy in bits over 5 tokens, in [0, log2 V]: 0 hands over to the large model
/// after the first small token, log2 V never does (small-only). EAD keeps the small token that triggered a switch (the
/// paper's rule, ALGORITHMS.md 7.2) unless <c>eadRegenerate</c> asks for the knob that drops it and lets the large model
/// write that position, as R-Stitch does.
/// </remarks>
internal static class EvalMethods
{
    public static readonly float[] DefaultRStitchThresholds = [0f, 0.001f, 0.002f, 0.005f, 0.01f, 0.02f, 0.05f, 0.1f, 0.2f, 0.5f, 1f];

    /// <summary>EAD's grid without its top, which is log2 V of the pair's vocabulary (<see cref="EadThresholds"/>).</summary>
    public static readonly float[] DefaultEadThresholdsBelowTop = [0f, 0.01f, 0.02f, 0.05f, 0.1f, 0.2f, 0.35f, 0.5f, 1f, 2f];

    /// <summary>The grid, topped by a threshold that never switches: log2 V rounded up, the largest entropy in bits a
    /// vocabulary of V tokens allows.</summary>
    public static float[] EadThresholds(int vocabSize) =>
        [.. DefaultEadThresholdsBelowTop, MathF.Ceiling(MathF.Log2(vocabSize) * 1000f) / 1000f];

    public static IReadOnlyList<EvalMethod> All(IReadOnlyList<float> rstitch, IReadOnlyList<float> ead, int draftLength,
        bool eadRegenerate = false)
    {
        var greedy = new PairOptions(Temperature: 0f);
        var methods = new List<EvalMethod>
        {
            new("large", null, greedy with { Mode = PairMode.Large }),
            new("small", null, greedy with { Mode = PairMode.Small }),
            new("speculative-greedy", null, greedy with { Mode = PairMode.Speculative, DraftLength = draftLength }),
            new("speculative-sampled", null, greedy with { Mode = PairMode.Speculative, DraftLength = draftLength, Temperature = 1f }),
        };
        methods.AddRange(rstitch.Select(t => new EvalMethod("rstitch", t,
            greedy with { Mode = PairMode.RStitch, Policy = new EntropyThresholdPolicy(t) })));
        methods.AddRange(ead.Select(t => new EvalMethod("ead", t,
            greedy with { Mode = PairMode.Ead, Policy = new WindowedEntropyPolicy(t, regenerateOnSwitch: eadRegenerate) })));
        return methods;
    }
}
