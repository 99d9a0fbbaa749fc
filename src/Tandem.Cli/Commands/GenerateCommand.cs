using System.Diagnostics;
using System.Globalization;
using System.Text;
using Tandem.Cli.Arguments;
using Tandem.Cli.Output;

namespace Tandem.Cli.Commands;

/// <summary>
/// <c>tandem generate --model DIR --prompt TEXT [...]</c>: streams a continuation; <c>--show-uncertainty</c> marks
/// each token by EU/AU; <c>--json</c> prints one object with every generated token.
/// </summary>
internal static class GenerateCommand
{
    // The command's documented, stable defaults (the library's own defaults are the native ones: temperature 1,
    // no top-k, no top-p). These are the usual chat-sampling settings.
    public const float DefaultTemperature = 0.8f;
    public const int DefaultTopK = 40;
    public const float DefaultTopP = 0.95f;

    private static readonly OptionSpec Prompt = new("--prompt", "TEXT", "the prompt, tokenized as the model's tokenizer.json says", Required: true);
    private static readonly OptionSpec MaxTokens = new("--max-tokens", "N", $"most tokens to generate (default: {GenerationOptions.DefaultMaxTokens})");
    private static readonly OptionSpec Temperature = new("--temperature", "T",
        $"sampling temperature, 0 = greedy (default: {DefaultTemperature.ToString(CultureInfo.InvariantCulture)})");
    private static readonly OptionSpec TopK = new("--top-k", "K", $"keep the K most likely tokens, 0 = off (default: {DefaultTopK})");
    private static readonly OptionSpec TopP = new("--top-p", "P",
        $"keep the smallest set of tokens with mass >= P, in (0, 1], 1 = off (default: {DefaultTopP.ToString(CultureInfo.InvariantCulture)})");
    private static readonly OptionSpec Seed = new("--seed", "S", "random seed; the same seed gives the same text (default: a fresh seed each run)");
    private static readonly OptionSpec ShowUncertainty = new("--show-uncertainty", null,
        "colour each token by epistemic (red) / aleatoric (yellow) uncertainty, a pair's large-model tokens bold and underlined; " +
        "[EU/AU] annotations when not a terminal or NO_COLOR is set");
    private static readonly OptionSpec IgnoreEos = new("--ignore-eos", null, "do not stop at the model's end-of-sequence tokens");

    public static readonly CliCommand Command = new(
        new CommandSpec("generate",
            "Stream a continuation of a prompt, from one model (--model) or from a small and a large model decoding together " +
            "(without --model; the shipped demo pair by default). Stops at an end-of-sequence token, at --max-tokens, or at the context limit.",
            [PairGenerateCommand.Model, Prompt, MaxTokens, Temperature, TopK, TopP, Seed, ModelArguments.Device, ModelArguments.Threads,
             ShowUncertainty, ModelArguments.Json, IgnoreEos, .. AttentionArguments.Options, .. PairGenerateCommand.Options]),
        Execute);

    private static int Execute(ParsedArguments args, CommandContext context)
    {
        if (PairGenerateCommand.Applies(args))
        {
            AttentionArguments.RequireAbsent(args, "a model pair (the prefill attention options need --model)");
            return PairGenerateCommand.Execute(args, context);
        }
        // Bind everything first, so that any value that does not parse is a usage error before any work is done.
        var (modelPath, modelOptions) = ModelArguments.Bind(args);
        string prompt = args.Required(Prompt.Name);
        var options = new GenerationOptions(
            MaxTokens: args.Int32(MaxTokens.Name, GenerationOptions.DefaultMaxTokens),
            Temperature: args.Single(Temperature.Name, DefaultTemperature),
            TopK: args.Int32(TopK.Name, DefaultTopK),
            TopP: args.Single(TopP.Name, DefaultTopP),
            Seed: args.UInt64(Seed.Name, (ulong)Random.Shared.NextInt64()),
            IgnoreEos: args.Flag(IgnoreEos.Name)) // sessions take --threads from the model options
        {
            Prefill = AttentionArguments.Bind(args),
        };
        bool json = args.Flag(ModelArguments.Json.Name);
        bool showUncertainty = args.Flag(ShowUncertainty.Name) && !json;

        // Values that parse but are invalid: checked before the (possibly long) model load.
        ModelArguments.Validate(modelOptions);
        if (options.MaxTokens < 1)
        {
            throw new ArgumentException($"--max-tokens must be at least 1, not {options.MaxTokens}");
        }
        if (prompt.Length == 0)
        {
            throw new ArgumentException("--prompt is empty");
        }
        options.Sampling.Validate();
        options.Prefill!.Validate();

        using var model = ModelArguments.Load(modelPath, modelOptions, context);
        var tokens = new List<GeneratedToken>();
        var text = new StringBuilder();
        bool color = context.Environment.UseColor;
        var clock = Stopwatch.StartNew();
        var stream = model.GenerateAsync(prompt, options, context.Cancellation);
        foreach (var token in stream.Blocking())
        {
            tokens.Add(token);
            text.Append(token.Text);
            if (!json)
            {
                context.Out.Write(showUncertainty ? UncertaintyStyle.Mark(token.Text, token.Au, token.Eu, color) : token.Text);
                context.Out.Flush();
            }
        }
        clock.Stop();

        if (json)
        {
            context.Out.WriteLine(Json.Write(w =>
            {
                w.WriteStartObject();
                w.WriteString("text", text.ToString());
                w.WriteStartArray("tokens");
                foreach (var token in tokens)
                {
                    w.WriteStartObject();
                    w.WriteNumber("id", token.Id);
                    w.WriteString("text", token.TokenText);
                    w.WriteStatistic("entropy", token.Entropy);
                    w.WriteStatistic("au", token.Au);
                    w.WriteStatistic("eu", token.Eu);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }));
        }
        else
        {
            context.Out.WriteLine();
            if (showUncertainty)
            {
                context.Out.WriteLine(UncertaintyStyle.Legend(color));
            }
        }

        var last = tokens[^1];
        if (last.Finish == FinishReason.ContextLimit)
        {
            context.Error.WriteLine($"tandem: stopped: {last.FinishDetail}");
        }
        if (args.Flag(CommandSpec.Verbose.Name))
        {
            context.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"tandem: {tokens.Count} tokens in {clock.Elapsed.TotalSeconds:0.000} s " +
                $"({tokens.Count / Math.Max(clock.Elapsed.TotalSeconds, 1e-9):0.0} tokens/s, prefill included); " +
                $"seed {options.Seed}; stopped: {last.FinishDetail}"));
        }
        return 0;
    }
}
