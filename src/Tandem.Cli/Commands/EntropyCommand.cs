using System.Globalization;
using System.Text.Json;
using Tandem.Cli.Arguments;
using Tandem.Cli.Eval;
using Tandem.Cli.Output;

namespace Tandem.Cli.Commands;

/// <summary>
/// <c>tandem entropy --model DIR --file JSONL [--rho 0.2] [--json]</c>: the entropy of every response token of
/// (prompt, response) pairs, the entropy percentiles over all of them, and the top-ρ high-entropy "forking" tokens
/// (ALGORITHMS.md 8) marked.
/// </summary>
internal static class EntropyCommand
{
    private static readonly OptionSpec File = new("--file", "JSONL",
        "one {\"prompt\":\"..\",\"response\":\"..\"} per line; only response tokens count", Required: true);
    private static readonly OptionSpec Rho = new("--rho", "R",
        $"fraction of response tokens (over the whole file) marked as forking, in (0, 1] (default: {ForkingTokens.DefaultRho.ToString(CultureInfo.InvariantCulture)})");
    private static readonly OptionSpec Out = new("--out", "FILE",
        "also write the mask for an RL trainer: one {\"ids\",\"entropies\",\"response_mask\",\"mask\"} line per input line");

    public static readonly CliCommand Command = new(
        new CommandSpec("entropy",
            "Entropy (nats, temperature 1) of each response token of prompt/response pairs: percentiles, and the top-rho forking tokens.",
            [ModelArguments.Model, File, Rho, Out, ModelArguments.Device, ModelArguments.Threads, ModelArguments.Json]),
        Execute);

    private static int Execute(ParsedArguments args, CommandContext context)
    {
        var (modelPath, modelOptions) = ModelArguments.Bind(args);
        string file = args.Required(File.Name);
        // Parsed as a double: the mask size is ceil(rho * N), and the float nearest 0.3 would be 0.30000001.
        double rho = ForkingTokens.DefaultRho;
        if (args.Optional(Rho.Name) is { } rhoText &&
            !double.TryParse(rhoText.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out rho))
        {
            throw new UsageException($"{Rho.Name} needs a number, not '{rhoText}'", args.Command);
        }
        string? outPath = args.Optional(Out.Name);
        bool json = args.Flag(ModelArguments.Json.Name);

        ModelArguments.Validate(modelOptions);
        if (!(rho is > 0 and <= 1))
        {
            throw new ArgumentException($"--rho must be in (0, 1], not {rho.ToString(CultureInfo.InvariantCulture)}");
        }
        var pairs = ReadPairs(file);

        using var model = ModelArguments.Load(modelPath, modelOptions, context);
        var tokenizer = model.Tokenizer;
        var batch = pairs.Select((p, i) => (
            Prompt: (IReadOnlyList<int>)[.. tokenizer.Encode(p.Prompt)],
            Response: (IReadOnlyList<int>)[.. tokenizer.Encode(p.Response, addSpecialTokens: false)])).ToArray();
        for (int i = 0; i < batch.Length; i++)
        {
            if (batch[i].Prompt.Count == 0 || batch[i].Response.Count == 0)
            {
                throw new ArgumentException($"{file}:{pairs[i].Line}: the {(batch[i].Prompt.Count == 0 ? "prompt" : "response")} has no tokens " +
                    "(nothing would predict the first response token, or there is nothing to score)");
            }
        }
        var scored = ForkingTokens.Score(model, batch, cancellationToken: context.Cancellation);
        var selection = ForkingTokens.Select(scored, rho);

        if (outPath is not null)
        {
            using var writer = new StreamWriter(outPath);
            selection.WriteJsonl(writer);
        }
        if (json)
        {
            context.Out.WriteLine(Json(selection, tokenizer));
        }
        else
        {
            WriteText(context, selection, tokenizer);
        }
        return 0;
    }

    private sealed record PromptResponse(int Line, string Prompt, string Response);

    private static List<PromptResponse> ReadPairs(string path)
    {
        if (!System.IO.File.Exists(path))
        {
            throw new FileNotFoundException($"{path} does not exist", path);
        }
        var pairs = new List<PromptResponse>();
        int lineNumber = 0;
        foreach (string line in System.IO.File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            string where = $"{path}:{lineNumber}";
            try
            {
                using var document = JsonDocument.Parse(line);
                if (document.RootElement.ValueKind != JsonValueKind.Object)
                {
                    throw new ArgumentException($"{where}: a line must be a JSON object");
                }
                pairs.Add(new PromptResponse(lineNumber, EvalSet.RequiredString(document.RootElement, "prompt", where),
                    EvalSet.RequiredString(document.RootElement, "response", where)));
            }
            catch (JsonException e)
            {
                throw new ArgumentException($"{where}: not valid JSON ({e.Message})", e);
            }
        }
        if (pairs.Count == 0)
        {
            throw new ArgumentException($"{path} has no lines");
        }
        return pairs;
    }

    /// <summary>
    /// <c>{"rho","valid_tokens","forking_tokens","threshold","percentiles":{"p0",..,"p100"},"lines":[{"tokens":[{"id",
    /// "text","entropy","forking"}]}]}</c>: per input line, its response tokens only.
    /// </summary>
    private static string Json(ForkingSelection selection, TandemTokenizer tokenizer) => Output.Json.Write(w =>
    {
        w.WriteStartObject();
        w.WriteNumber("rho", selection.Rho);
        w.WriteNumber("valid_tokens", selection.ValidCount);
        w.WriteNumber("forking_tokens", selection.SelectedCount);
        w.WriteStatistic("threshold", selection.Threshold);
        w.WriteStartObject("percentiles");
        foreach (var percentile in selection.Percentiles)
        {
            w.WriteStatistic($"p{percentile.Percent.ToString(CultureInfo.InvariantCulture)}", percentile.Entropy);
        }
        w.WriteEndObject();
        w.WriteStartArray("lines");
        for (int s = 0; s < selection.Sequences.Count; s++)
        {
            var sequence = selection.Sequences[s];
            w.WriteStartObject();
            w.WriteStartArray("tokens");
            for (int t = 0; t < sequence.Ids.Count; t++)
            {
                if (!sequence.ResponseMask[t])
                {
                    continue;
                }
                w.WriteStartObject();
                w.WriteNumber("id", sequence.Ids[t]);
                w.WriteString("text", tokenizer.DecodeToken(sequence.Ids[t]));
                w.WriteStatistic("entropy", sequence.Entropies[t]);
                w.WriteBoolean("forking", selection.Masks[s][t]);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    });

    private static void WriteText(CommandContext context, ForkingSelection selection, TandemTokenizer tokenizer)
    {
        var output = context.Out;
        bool color = context.Environment.UseColor;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{selection.ValidCount} response tokens; top {selection.Rho:0.###} = {selection.SelectedCount} forking tokens, entropy >= {selection.Threshold:0.####} nats"));
        output.WriteLine("entropy percentiles (nats): " + string.Join("  ", selection.Percentiles.Select(p =>
            string.Create(CultureInfo.InvariantCulture, $"p{p.Percent}={p.Entropy:0.####}"))));
        for (int s = 0; s < selection.Sequences.Count; s++)
        {
            var sequence = selection.Sequences[s];
            int forking = selection.Masks[s].Count(m => m);
            output.WriteLine();
            output.WriteLine($"line {s + 1}: {forking} of {sequence.ResponseCount} response tokens forking");
            for (int t = 0; t < sequence.Ids.Count; t++)
            {
                if (sequence.ResponseMask[t])
                {
                    string text = tokenizer.DecodeToken(sequence.Ids[t]);
                    output.Write(!selection.Masks[s][t] ? text : color ? $"\u001b[1;31m{text}\u001b[0m" : $"[[{text}]]");
                }
            }
            output.WriteLine();
        }
        if (!color)
        {
            output.WriteLine();
            output.WriteLine("[[token]]: a forking token (among the top rho by entropy)");
        }
    }
}
