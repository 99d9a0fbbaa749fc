using System.Globalization;
using Tandem.Cli.Arguments;
using Tandem.Cli.Eval;
using Tandem.Cli.Output;

namespace Tandem.Cli.Commands;

/// <summary>
/// <c>tandem eval [--small DIR --large DIR] [--limit N] [--json]</c>: every decoding method of the pair on the held-out
/// set (large, small, speculative greedy and sampled, R-Stitch and EAD threshold sweeps): a table, the LogTokU
/// reliability AUROC beside its baselines, and PNG plots.
/// </summary>
internal static class EvalCommand
{
    /// <summary>Most tokens of one answer. Answers end at EOS; this only stops a runaway, so it sits well above the
    /// demo task's longest chain (about 330 tokens): a lower cap would count long correct chains as wrong.</summary>
    public const int DefaultMaxTokens = 512;
    public const int DefaultDraft = 4;
    public const string DefaultOutDir = "eval-out";

    private static readonly OptionSpec File = new("--file", "JSONL",
        "the held-out set, lines {\"prompt\":..,\"answer\":..} (default: eval.jsonl beside the large model's folder, i.e. models/demo/eval.jsonl)");
    private static readonly OptionSpec Limit = new("--limit", "N", "only the first N problems (default: 0 = all)");
    private static readonly OptionSpec MaxTokens = new("--max-tokens", "N", $"most tokens of one answer (default: {DefaultMaxTokens})");
    private static readonly OptionSpec Draft = new("--draft", "N", $"speculative decoding: draft tokens per verification (default: {DefaultDraft})");
    private static readonly OptionSpec RStitchThresholds = new("--rstitch-thresholds", "LIST",
        "R-Stitch sweep on normalized entropy H/ln V, comma-separated (default: " +
        string.Join(",", EvalMethods.DefaultRStitchThresholds.Select(Text)) + "; 0 = large only, 1 = small only)");
    private static readonly OptionSpec EadThresholds = new("--ead-thresholds", "LIST",
        "EAD sweep on the 5-token mean entropy in bits, comma-separated (default: " +
        string.Join(",", EvalMethods.DefaultEadThresholdsBelowTop.Select(Text)) + ",log2 V; log2 V = small only)");
    private static readonly OptionSpec EadRegenerate = new("--ead-regenerate", null,
        "EAD drops the small token that triggered a switch and the large model writes that position (default: the paper's rule, keep it)");
    private static readonly OptionSpec Seed = new("--seed", "S", "seed of speculative-sampled (temperature 1); problem i uses S + i (default: 0)");
    private static readonly OptionSpec OutDir = new("--out-dir", "DIR", $"where the PNG plots go (default: ./{DefaultOutDir})");

    public static readonly CliCommand Command = new(
        new CommandSpec("eval",
            "Run every decoding method of a model pair on a held-out set: accuracy, tokens/s, large-model share, acceptance; " +
            "LogTokU reliability AUROC (small model's greedy answers) against entropy and max-probability; PNG plots.",
            [PairArguments.Small, PairArguments.Large, File, Limit, MaxTokens, Draft, RStitchThresholds, EadThresholds, EadRegenerate, Seed, OutDir,
             ModelArguments.Device, ModelArguments.Threads, ModelArguments.Json]),
        Execute);

    private static int Execute(ParsedArguments args, CommandContext context)
    {
        var modelOptions = ModelArguments.BindOptions(args);
        int limit = args.Int32(Limit.Name, 0);
        int maxTokens = args.Int32(MaxTokens.Name, DefaultMaxTokens);
        int draft = args.Int32(Draft.Name, DefaultDraft);
        ulong seed = args.UInt64(Seed.Name, 0);
        float[]? rstitch = Thresholds(args, RStitchThresholds);
        float[]? ead = Thresholds(args, EadThresholds);
        bool eadRegenerate = args.Flag(EadRegenerate.Name);
        bool json = args.Flag(ModelArguments.Json.Name);
        string outDir = args.Optional(OutDir.Name) ?? DefaultOutDir;

        ModelArguments.Validate(modelOptions);
        if (limit < 0)
        {
            throw new ArgumentException($"--limit must be 0 (all) or more, not {limit}");
        }
        if (maxTokens < 1)
        {
            throw new ArgumentException($"--max-tokens must be at least 1, not {maxTokens}");
        }
        if (draft < 1)
        {
            throw new ArgumentException($"--draft must be at least 1, not {draft}");
        }
        if (outDir.Length == 0)
        {
            throw new ArgumentException("--out-dir is empty");
        }
        var (smallPath, largePath) = PairArguments.Folders(args);
        string file = args.Optional(File.Name) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(largePath)) ?? ".", "eval.jsonl");
        var problems = EvalSet.Read(file, limit);

        var (small, large) = PairArguments.Load(smallPath, largePath, modelOptions, context);
        using var smallModel = small;
        using var largeModel = large;
        using var pair = ModelPair.Create(small, large);
        var methods = EvalMethods.All(rstitch ?? EvalMethods.DefaultRStitchThresholds, ead ?? EvalMethods.EadThresholds(small.Info.VocabSize), draft,
            eadRegenerate);

        var runner = new MethodRunner(pair, maxTokens, seed);
        var bar = new ProgressBar(context.Error, context.Environment.StderrIsTerminal, methods.Count * problems.Count);
        IReadOnlyList<MethodResult> results;
        int done = 0;
        try
        {
            results = runner.Run(methods, problems, UncertaintySource, label => bar.Report(++done, label), context.Cancellation);
        }
        finally
        {
            bar.Clear();
        }

        var source = results.First(r => r.Method.Name == UncertaintySource).Outcomes;
        var aurocs = ReliabilityScores.Aurocs(source);
        var plots = EvalPlots.Write(outDir, results, source, UncertaintySourceTitle, ReliabilityScores.ForkingCut(source),
            UncertaintyStyle.HighAu, UncertaintyStyle.HighEu);

        if (json)
        {
            context.Out.WriteLine(EvalReport.Json(results, aurocs));
        }
        else
        {
            EvalReport.WriteTable(context.Out, results, problems.Count);
            context.Out.WriteLine();
            EvalReport.WriteReliability(context.Out, aurocs, UncertaintySourceTitle, source.Count(o => !o.Correct), source.Count);
            context.Out.WriteLine($"plots: {string.Join(", ", plots)}");
        }
        return 0;
    }

    /// <summary>The answers the uncertainty report reads: the small model's, whose mistakes routing is meant to catch.</summary>
    private const string UncertaintySource = "small";

    private const string UncertaintySourceTitle = "small model, greedy";

    private static float[]? Thresholds(ParsedArguments args, OptionSpec option)
    {
        if (args.Optional(option.Name) is not { } text)
        {
            return null;
        }
        var values = new List<float>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!float.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out float value))
            {
                throw new UsageException($"{option.Name} needs comma-separated numbers, not '{text}'", args.Command);
            }
            values.Add(float.IsFinite(value) ? value : throw new ArgumentException(
                $"{option.Name}: {part} is not a finite number (the grid's extremes already cover never and always switching)"));
        }
        return [.. values];
    }

    private static string Text(float value) => value.ToString(CultureInfo.InvariantCulture);
}
