using System.Diagnostics;
using System.Globalization;
using Tandem.Cli.Arguments;
using Tandem.Cli.Output;

namespace Tandem.Cli.Commands;

/// <summary>
/// The model-pair path of <c>tandem generate</c>: without --model, a small and a large model (the shipped demo pair by
/// default) decode together with --mode large|small|speculative|rstitch|ead. --show-uncertainty colours each token by
/// who wrote it and by its uncertainty; --json adds "model" and, for speculative decoding, "accepted" to each token.
/// </summary>
internal static class PairGenerateCommand
{
    public const PairMode DefaultMode = PairMode.RStitch;

    /// <summary>--model in <c>generate</c>: optional there, since without it the pair runs.</summary>
    public static readonly OptionSpec Model = new("--model", "DIR",
        "one Hugging Face model folder (config.json, safetensors, tokenizer.json); without it a model pair runs (--small, --large)");

    private static readonly Dictionary<string, PairMode> Modes = new()
    {
        ["large"] = PairMode.Large,
        ["small"] = PairMode.Small,
        ["speculative"] = PairMode.Speculative,
        ["rstitch"] = PairMode.RStitch,
        ["ead"] = PairMode.Ead,
    };

    private enum Signal
    {
        Entropy,
        MaxProb,
        Eu,
    }

    private static readonly Dictionary<string, Signal> Signals = new()
    {
        ["entropy"] = Signal.Entropy,
        ["maxprob"] = Signal.MaxProb,
        ["eu"] = Signal.Eu,
    };

    private static readonly OptionSpec Mode = new("--mode", "large|small|speculative|rstitch|ead",
        "pair: how the two models decode together (default: rstitch)");
    private static readonly OptionSpec Threshold = new("--threshold", "T",
        "pair: rstitch uncertainty threshold on --signal (default: 0.3 normalized entropy); ead: tau on the window-mean entropy in bits (default: 1.5)");
    private static readonly OptionSpec SignalOption = new("--signal", "entropy|maxprob|eu",
        "pair, rstitch: normalized entropy (above T is uncertain), max probability (below T) or LogTokU EU (above T) (default: entropy)");
    private static readonly OptionSpec Window = new("--window", "W", $"pair, ead: rolling window in tokens (default: {WindowedEntropyPolicy.DefaultWindow})");
    private static readonly OptionSpec MinLarge = new("--min-large", "N", "pair, ead: tokens the large model writes before it may hand back (default: 1)");
    private static readonly OptionSpec Regenerate = new("--regenerate", null,
        "pair, ead: drop the small token that triggered a switch and let the large model write that position (default: keep it)");
    private static readonly OptionSpec Draft = new("--draft", "N", "pair, speculative: draft tokens per verification (default: 4)");
    private static readonly OptionSpec AdaptiveDraft = new("--adaptive-draft", null,
        "pair, speculative: grow the draft after a full accept, shrink it after an early reject");
    private static readonly OptionSpec DraftConfidence = new("--draft-confidence", "P",
        "pair, speculative: stop drafting when the small model's max probability falls below P (default: 0 = off)");

    /// <summary>The options the pair path adds to <c>generate</c>'s.</summary>
    public static readonly OptionSpec[] Options =
        [PairArguments.Small, PairArguments.Large, Mode, Threshold, SignalOption, Window, MinLarge, Regenerate, Draft, AdaptiveDraft, DraftConfidence];

    // The generate options that apply to a pair as to one model; any other (e.g. a prefill knob of one session) is a
    // usage error in pair mode, named.
    private static readonly HashSet<string> Shared =
    [
        "--prompt", "--max-tokens", "--temperature", "--top-k", "--top-p", "--seed", "--device", "--threads", "--show-uncertainty", "--json",
        "--ignore-eos", CommandSpec.Verbose.Name, CommandSpec.Help.Name,
    ];

    /// <summary>
    /// Whether this command line is for a pair: no --model. With --model, the pair's own options are a usage error.
    /// </summary>
    public static bool Applies(ParsedArguments args)
    {
        bool pair = args.Optional(Model.Name) is null;
        if (!pair)
        {
            foreach (var option in Options.Where(o => Given(args, o)))
            {
                throw new UsageException($"{option.Name} is for a model pair; drop --model to run one", args.Command);
            }
        }
        else
        {
            foreach (var option in args.Command.Options.Where(o => o.Name != Model.Name && !Shared.Contains(o.Name) && !Options.Contains(o) && Given(args, o)))
            {
                throw new UsageException($"{option.Name} applies to one model (--model DIR), not to a model pair", args.Command);
            }
        }
        return pair;
    }

    public static int Execute(ParsedArguments args, CommandContext context)
    {
        // Bind everything first, so that any value that does not parse is a usage error before any work is done.
        var modelOptions = ModelArguments.BindOptions(args);
        string prompt = args.Required("--prompt");
        var mode = args.Choice(Mode.Name, DefaultMode, Modes);
        int maxTokens = args.Int32("--max-tokens", GenerationOptions.DefaultMaxTokens);
        var options = new PairOptions(
            Mode: mode,
            Temperature: args.Single("--temperature", GenerateCommand.DefaultTemperature),
            TopK: args.Int32("--top-k", GenerateCommand.DefaultTopK),
            TopP: args.Single("--top-p", GenerateCommand.DefaultTopP),
            Seed: args.UInt64("--seed", (ulong)Random.Shared.NextInt64()),
            MaxNewTokens: maxTokens,
            StopAtEos: !args.Flag("--ignore-eos"),
            DraftLength: args.Int32(Draft.Name, 4),
            AdaptiveDraft: args.Flag(AdaptiveDraft.Name),
            DraftConfidence: args.Single(DraftConfidence.Name, 0f));
        var signal = args.Choice(SignalOption.Name, Signal.Entropy, Signals);
        float? threshold = args.Optional(Threshold.Name) is null ? null : args.Single(Threshold.Name, 0f);
        int window = args.Int32(Window.Name, WindowedEntropyPolicy.DefaultWindow);
        int minLarge = args.Int32(MinLarge.Name, 1);
        bool regenerate = args.Flag(Regenerate.Name);
        bool json = args.Flag("--json");
        bool showUncertainty = args.Flag("--show-uncertainty") && !json;
        RequireModeOptions(args, mode);

        // Values that parse but are invalid: checked before the models load.
        ModelArguments.Validate(modelOptions);
        if (maxTokens < 1)
        {
            throw new ArgumentException($"--max-tokens must be at least 1, not {maxTokens}");
        }
        if (prompt.Length == 0)
        {
            throw new ArgumentException("--prompt is empty");
        }
        options = options with { Policy = Policy(mode, signal, threshold, window, minLarge, regenerate) };
        options.Validate();
        var (smallPath, largePath) = PairArguments.Folders(args);

        var (small, large) = PairArguments.Load(smallPath, largePath, modelOptions, context);
        using var smallModel = small;
        using var largeModel = large;
        using var pair = ModelPair.Create(small, large);
        var tokenizer = small.Tokenizer;
        int[] promptIds = [.. tokenizer.Encode(prompt)];
        if (promptIds.Length == 0)
        {
            throw new ArgumentException("--prompt has no tokens");
        }

        var generation = pair.GenerateAsync(promptIds, options, context.Cancellation);
        var records = new List<PairToken>();
        var decoder = tokenizer.CreateIncrementalDecoder();
        bool color = context.Environment.UseColor;
        var clock = Stopwatch.StartNew();
        foreach (var token in generation.Blocking())
        {
            records.Add(token);
            if (json)
            {
                continue;
            }
            if (!token.Committed)
            {
                context.Out.Write(showUncertainty ? PairStyle.MarkDropped(tokenizer.DecodeToken(token.Token), color) : "");
                continue;
            }
            string text = decoder.Append(token.Token);
            context.Out.Write(showUncertainty ? PairStyle.Mark(text, token.Model, token.Au, token.Eu, color) : text);
            context.Out.Flush();
        }
        clock.Stop();
        string tail = decoder.Flush();
        var stats = generation.Stats!;

        if (json)
        {
            context.Out.WriteLine(Json(tokenizer, generation, records, stats));
        }
        else
        {
            context.Out.WriteLine(tail);
            if (showUncertainty)
            {
                context.Out.WriteLine(PairStyle.Legend(color));
            }
        }
        if (args.Flag(CommandSpec.Verbose.Name))
        {
            context.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"tandem: {ModeName(mode)}: {stats.Tokens} tokens in {clock.Elapsed.TotalSeconds:0.000} s " +
                $"({stats.TokensPerSecond ?? 0:0.0} tokens/s, prefill included), {stats.TokensLarge} by the large model; " +
                $"{stats.Switches} switches, {stats.Discarded} discarded, {stats.Accepted}/{stats.Drafted} drafts accepted; seed {options.Seed}"));
        }
        return 0;
    }

    /// <summary>The mode's name as --mode spells it.</summary>
    public static string ModeName(PairMode mode) => Modes.First(m => m.Value == mode).Key;

    /// <summary>The routing policy the options describe; null for the modes that do not route.</summary>
    private static IRoutingPolicy? Policy(PairMode mode, Signal signal, float? threshold, int window, int minLarge, bool regenerate) => mode switch
    {
        PairMode.RStitch => signal switch
        {
            Signal.Entropy => new EntropyThresholdPolicy(threshold ?? EntropyThresholdPolicy.DefaultThreshold),
            Signal.MaxProb => new ConfidencePolicy(threshold ?? throw new ArgumentException("--signal maxprob needs --threshold T (a probability)")),
            _ => new EvidencePolicy(threshold ?? throw new ArgumentException("--signal eu needs --threshold T (EU is in (0, 1])")),
        },
        PairMode.Ead => Ead(threshold ?? WindowedEntropyPolicy.DefaultTau, window, minLarge, regenerate),
        _ => null,
    };

    private static WindowedEntropyPolicy Ead(float tau, int window, int minLarge, bool regenerate)
    {
        if (window < 1)
        {
            throw new ArgumentException($"--window must be at least 1, not {window}");
        }
        if (minLarge < 1)
        {
            throw new ArgumentException($"--min-large must be at least 1, not {minLarge}");
        }
        return new WindowedEntropyPolicy(tau, window, minLarge, regenerate);
    }

    /// <summary>An option of one mode given with another is a usage error, not silently ignored.</summary>
    private static void RequireModeOptions(ParsedArguments args, PairMode mode)
    {
        var byMode = new (OptionSpec Option, PairMode[] Modes)[]
        {
            (Threshold, [PairMode.RStitch, PairMode.Ead]),
            (SignalOption, [PairMode.RStitch]),
            (Window, [PairMode.Ead]),
            (MinLarge, [PairMode.Ead]),
            (Regenerate, [PairMode.Ead]),
            (Draft, [PairMode.Speculative]),
            (AdaptiveDraft, [PairMode.Speculative]),
            (DraftConfidence, [PairMode.Speculative]),
        };
        foreach (var (option, modes) in byMode)
        {
            if (Given(args, option) && !modes.Contains(mode))
            {
                throw new UsageException(
                    $"{option.Name} applies to --mode {string.Join(" or ", modes.Select(ModeName))}, not {ModeName(mode)}", args.Command);
            }
        }
    }

    private static bool Given(ParsedArguments args, OptionSpec option) =>
        option.IsFlag ? args.Flag(option.Name) : args.Optional(option.Name) is not null;

    /// <summary>
    /// The single-model JSON with, per token, "model" ("small" or "large"), "accepted" (speculative: whether the large
    /// model kept the token; null in the other modes) and "outcome"; rejected and discarded proposals are listed too,
    /// in order, and "text" is the committed text. "stats" holds the run statistics.
    /// </summary>
    private static string Json(TandemTokenizer tokenizer, PairGeneration generation, IReadOnlyList<PairToken> records, PairStats stats) =>
        Output.Json.Write(w =>
        {
            bool speculative = generation.Options.Mode == PairMode.Speculative;
            w.WriteStartObject();
            w.WriteString("text", tokenizer.Decode([.. generation.Output]));
            w.WriteStartArray("tokens");
            foreach (var token in records)
            {
                w.WriteStartObject();
                w.WriteNumber("id", token.Token);
                w.WriteString("text", tokenizer.DecodeToken(token.Token));
                w.WriteStatistic("entropy", token.Entropy);
                w.WriteStatistic("au", token.Au);
                w.WriteStatistic("eu", token.Eu);
                w.WriteString("model", token.Model == PairModelKind.Large ? "large" : "small");
                if (speculative)
                {
                    w.WriteBoolean("accepted", token.Committed);
                }
                else
                {
                    w.WriteNull("accepted");
                }
                w.WriteString("outcome", token.Outcome.ToString().ToLowerInvariant());
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("stats");
            w.WriteString("mode", ModeName(generation.Options.Mode));
            w.WriteNumber("tokens_small", stats.TokensSmall);
            w.WriteNumber("tokens_large", stats.TokensLarge);
            WriteFraction(w, "large_share", stats.LargeShare);
            w.WriteNumber("drafted", stats.Drafted);
            w.WriteNumber("accepted", stats.Accepted);
            WriteFraction(w, "acceptance", speculative ? stats.AcceptanceRate : null);
            WriteFraction(w, "mean_accepted", speculative && stats.Verifications > 0 ? stats.MeanAccepted : null);
            w.WriteNumber("discarded", stats.Discarded);
            w.WriteNumber("switches", stats.Switches);
            w.WriteNumber("seconds", stats.SecondsTotal);
            w.WriteEndObject();
            w.WriteEndObject();
        });

    private static void WriteFraction(System.Text.Json.Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v && double.IsFinite(v))
        {
            w.WriteNumber(name, v);
        }
        else
        {
            w.WriteNull(name);
        }
    }
}
