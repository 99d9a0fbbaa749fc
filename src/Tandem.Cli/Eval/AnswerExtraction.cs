namespace Tandem.Cli.Eval;

/// <summary>
/// How a generation is graded, as models/demo/README.md (the model card) says: the answer is the text after the last
/// '=' on the last non-empty line, without surrounding whitespace; a generation whose last line has no '=' has no
/// answer and is wrong. The same rule as <c>extract_answer</c> in tools/demo_task.py.
/// </summary>
internal static class AnswerExtraction
{
    public static string? Extract(string generation)
    {
        string? last = generation.Split('\n').LastOrDefault(line => !string.IsNullOrWhiteSpace(line));
        if (last is null)
        {
            return null;
        }
        int equals = last.LastIndexOf('=');
        return equals < 0 ? null : last[(equals + 1)..].Trim();
    }

    public static bool IsCorrect(string generation, string answer) => Extract(generation) == answer.Trim();
}
