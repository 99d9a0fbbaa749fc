using System.Globalization;
using System.Text;
using Tandem.Cli.Arguments;
using Tandem.Cli.Output;

namespace Tandem.Cli.Commands;

/// <summary>
/// <c>tandem score --model DIR --text TEXT [...]</c>: for each token of the text, log p(token | tokens before it)
/// and the entropy, AU and EU of that predictive distribution (all undefined for the first token).
/// </summary>
internal static class ScoreCommand
{
    private static readonly OptionSpec Text = new("--text", "TEXT",
        "the text to score, tokenized as the model's tokenizer.json says (special tokens only if its post-processor adds them)",
        Required: true);

    public static readonly CliCommand Command = new(
        new CommandSpec("score",
            "Per token of a text: log-probability given the tokens before it, and the entropy (nats), AU and EU of that prediction.",
            [ModelArguments.Model, Text, ModelArguments.Device, ModelArguments.Threads, ModelArguments.Json, .. AttentionArguments.Options]),
        Execute);

    private static int Execute(ParsedArguments args, CommandContext context)
    {
        var (modelPath, modelOptions) = ModelArguments.Bind(args);
        string text = args.Required(Text.Name);
        bool json = args.Flag(ModelArguments.Json.Name);
        var prefill = AttentionArguments.Bind(args);

        ModelArguments.Validate(modelOptions);
        prefill.Validate();
        if (text.Length == 0)
        {
            throw new ArgumentException("--text is empty");
        }

        using var model = ModelArguments.Load(modelPath, modelOptions, context);
        // --threads: the model's default
        var scored = model.Score(text, prefill, out var density, cancellationToken: context.Cancellation);
        var tokenizer = model.Tokenizer;
        if (json)
        {
            context.Out.WriteLine(Json.Write(w =>
            {
                w.WriteStartObject();
                w.WriteStartArray("tokens");
                foreach (var token in scored)
                {
                    w.WriteStartObject();
                    w.WriteNumber("id", token.Id);
                    w.WriteString("text", tokenizer.DecodeToken(token.Id));
                    w.WriteStatistic("logprob", token.LogProb);
                    w.WriteStatistic("entropy", token.Entropy);
                    w.WriteStatistic("au", token.Au);
                    w.WriteStatistic("eu", token.Eu);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartObject("attention");
                w.WriteString("method", AttentionArguments.Name(prefill.Attention));
                w.WriteNumber("density", Math.Round(density.Mean, 6));
                w.WriteEndObject();
                w.WriteEndObject();
            }));
            return 0;
        }

        WriteTable(context.Out, scored, tokenizer.DecodeToken);
        return 0;
    }

    private static void WriteTable(TextWriter output, ScoredToken[] scored, Func<int, string> tokenText)
    {
        output.WriteLine($"{"#",5} {"id",8}  {"token",-16} {"logprob",10} {"entropy",9} {"au",9} {"eu",9}");
        double total = 0;
        int predicted = 0;
        for (int i = 0; i < scored.Length; i++)
        {
            var token = scored[i];
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{i,5} {token.Id,8}  {Shown(tokenText(token.Id)),-16} {Cell(token.LogProb),10} {Cell(token.Entropy),9} " +
                $"{Cell(token.Au),9} {Cell(token.Eu),9}"));
            if (token.LogProb is { } logProb)
            {
                total += logProb;
                predicted++;
            }
        }
        if (predicted > 0)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"total logprob {total:0.0000} over {predicted} predicted tokens; perplexity {Math.Exp(-total / predicted):0.000}"));
        }
    }

    private static string Cell(double? value) =>
        value is { } v ? v.ToString("0.0000", CultureInfo.InvariantCulture) : "-";

    /// <summary>A token's text quoted, with control characters escaped so that the table stays one line a token.</summary>
    private static string Shown(string text)
    {
        var shown = new StringBuilder("\"");
        foreach (char c in text)
        {
            shown.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '"' => "\\\"",
                '\\' => "\\\\",
                _ when char.IsControl(c) => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }
        return shown.Append('"').ToString();
    }
}
