using Tandem.Interop;

namespace Tandem;

/// <summary>How the two models of a <see cref="ModelPair"/> decode together (<c>tdm_pair_mode</c>).</summary>
public enum PairMode
{
    /// <summary>The large model alone.</summary>
    Large = 0,
    /// <summary>The small model alone.</summary>
    Small = 1,
    /// <summary>Speculative decoding (ALGORITHMS.md 2): the small model drafts, the large one verifies; the output is
    /// distributed exactly as the large model's (greedy: identical to it).</summary>
    Speculative = 2,
    /// <summary>R-Stitch (ALGORITHMS.md 6): the small model writes; uncertain tokens are dropped and rewritten by the
    /// large model.</summary>
    RStitch = 3,
    /// <summary>Entropy Adaptive Decoding (ALGORITHMS.md 7): windowed-entropy switching between the models.</summary>
    Ead = 4,
}

/// <summary>
/// How a <see cref="ModelPair"/> generates (<c>tdm_pair_options</c>); the defaults are the native defaults: R-Stitch,
/// greedy, until end-of-sequence or a full context.
/// </summary>
/// <param name="Mode">Which decoding loop runs.</param>
/// <param name="Temperature">Softmax temperature, applied identically to both models (required for speculative
/// decoding to be lossless); 0 = greedy.</param>
/// <param name="TopK">Keep the K most likely tokens; 0 = off.</param>
/// <param name="TopP">Keep the smallest set with mass ≥ TopP; in (0, 1], 1 = off.</param>
/// <param name="Seed">One seed for sampling and acceptance draws: the same seed, prompt and options give the same
/// tokens.</param>
/// <param name="StatsTopK">K of the per-token LogTokU statistics, in [1, <see cref="Uncertainty.MaxTopK"/>].</param>
/// <param name="MaxNewTokens">Stop after this many committed tokens; 0 = until the context is full.</param>
/// <param name="StopAtEos">Stop after the model's end-of-sequence token.</param>
/// <param name="DraftLength">Speculative decoding: drafts per verification (γ), ≥ 1.</param>
/// <param name="AdaptiveDraft">Speculative decoding: grow γ after a fully accepted draft, shrink it after an early
/// reject.</param>
/// <param name="DraftConfidence">Speculative decoding: stop drafting early when the small model's max probability
/// falls below this; 0 = off.</param>
/// <param name="Policy">R-Stitch and EAD: who writes each token; null for the mode's native default
/// (<see cref="EntropyThresholdPolicy"/> with threshold 0.3 or <see cref="WindowedEntropyPolicy"/> with τ = 1.5
/// bits). Built-in policies run natively in their own mode; any other policy is called from native code once per
/// decision. Not allowed in the other modes.</param>
public sealed record PairOptions(
    PairMode Mode = PairMode.RStitch,
    float Temperature = 0f,
    int TopK = 0,
    float TopP = 1f,
    ulong Seed = 0,
    int StatsTopK = Uncertainty.DefaultTopK,
    int MaxNewTokens = 0,
    bool StopAtEos = true,
    int DraftLength = 4,
    bool AdaptiveDraft = false,
    float DraftConfidence = 0f,
    IRoutingPolicy? Policy = null)
{
    /// <summary>The largest <see cref="IRoutingPolicy.EntropyWindow"/> the native loop accepts.</summary>
    public const int MaxEntropyWindow = 4096;

    /// <summary>Whether <see cref="Mode"/> routes token by token with a <see cref="Policy"/>.</summary>
    public bool IsRouted => Mode is PairMode.RStitch or PairMode.Ead;

    /// <summary>Checks the options, so that a caller can reject bad settings before a generation starts.</summary>
    /// <exception cref="ArgumentException">An option is out of range, or a policy is given for a mode that does not route.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Mode))
        {
            throw new ArgumentOutOfRangeException(nameof(Mode), Mode, "not a pair mode");
        }
        // The sampling rules are the native sampler's own.
        new SamplerOptions(Temperature, TopK, TopP, Seed, StatsTopK).Validate();
        ArgumentOutOfRangeException.ThrowIfNegative(MaxNewTokens, nameof(MaxNewTokens));
        ArgumentOutOfRangeException.ThrowIfLessThan(DraftLength, 1, nameof(DraftLength));
        if (!(DraftConfidence is >= 0f and <= 1f))
        {
            throw new ArgumentOutOfRangeException(nameof(DraftConfidence), DraftConfidence, "DraftConfidence must be in [0, 1]");
        }
        if (Policy is not null && !IsRouted)
        {
            throw new ArgumentException($"a routing policy applies to the RStitch and Ead modes, not to {Mode}", nameof(Policy));
        }
        if (Policy is not null && Policy.EntropyWindow is < 1 or > MaxEntropyWindow)
        {
            throw new ArgumentOutOfRangeException(nameof(Policy), Policy.EntropyWindow,
                $"the policy's EntropyWindow must be in [1, {MaxEntropyWindow}]");
        }
    }

    /// <summary>
    /// The native options, except <c>policy</c>, <c>route</c> and <c>abort</c>, which point at memory the caller owns
    /// (see <see cref="PairGeneration"/>).
    /// </summary>
    internal unsafe tdm_pair_options ToNative()
    {
        tdm_pair_options native;
        NativeMethods.tdm_pair_options_init(&native);
        native.mode = (int)Mode;
        native.temperature = Temperature;
        native.top_k = TopK;
        native.top_p = TopP;
        native.seed = Seed;
        native.stats_top_k = (uint)StatsTopK;
        native.max_new_tokens = (uint)MaxNewTokens;
        native.stop_at_eos = StopAtEos ? (byte)1 : (byte)0;
        native.draft_length = (uint)DraftLength;
        native.adaptive_draft = AdaptiveDraft ? (byte)1 : (byte)0;
        native.draft_confidence = DraftConfidence;
        return native;
    }
}
