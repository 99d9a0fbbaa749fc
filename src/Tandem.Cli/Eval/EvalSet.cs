using System.Text.Json;

namespace Tandem.Cli.Eval;

/// <summary>One problem of an evaluation set: the prompt to continue and the answer the continuation must reach.</summary>
/// <param name="Id">The line's "id" (its 0-based line number when the line has none).</param>
/// <param name="Prompt">The text the model continues.</param>
/// <param name="Answer">The expected answer, compared with <see cref="AnswerExtraction.Extract"/> of the continuation.</param>
internal sealed record EvalProblem(string Id, string Prompt, string Answer);

/// <summary>
/// A held-out set in JSONL, one <c>{"id":..,"prompt":"..","response":"..","answer":".."}</c> per line (the format of
/// models/demo/eval.jsonl); "response" (the reference solution) is not needed to grade and may be absent.
/// </summary>
internal static class EvalSet
{
    /// <summary>Reads the first <paramref name="limit"/> problems (all when 0).</summary>
    /// <exception cref="ArgumentException">A line is not such an object, naming the file and line.</exception>
    public static IReadOnlyList<EvalProblem> Read(string path, int limit)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"the evaluation set {path} does not exist", path);
        }
        var problems = new List<EvalProblem>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            if (limit > 0 && problems.Count == limit)
            {
                break;
            }
            problems.Add(Parse(line, problems.Count, $"{path}:{lineNumber}"));
        }
        if (problems.Count == 0)
        {
            throw new ArgumentException($"the evaluation set {path} has no problems");
        }
        return problems;
    }

    private static EvalProblem Parse(string line, int index, string where)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new ArgumentException($"{where}: a line must be a JSON object, not {root.ValueKind}");
            }
            string id = root.TryGetProperty("id", out var idElement) && idElement.ValueKind != JsonValueKind.Null
                ? idElement.ToString()
                : index.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return new EvalProblem(id, RequiredString(root, "prompt", where), RequiredString(root, "answer", where));
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"{where}: not valid JSON ({e.Message})", e);
        }
    }

    /// <summary>A string field; a number is accepted for "answer" (an integer answer written without quotes).</summary>
    internal static string RequiredString(JsonElement root, string name, string where)
    {
        if (!root.TryGetProperty(name, out var value))
        {
            throw new ArgumentException($"{where}: \"{name}\" is missing");
        }
        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString()!,
            JsonValueKind.Number when name == "answer" => value.GetRawText(),
            _ => throw new ArgumentException($"{where}: \"{name}\" must be a string, not {value.ValueKind}"),
        };
    }
}
