using System.Globalization;
using System.Text.Json;
using Tandem.Cli.Output;

namespace Tandem.Cli.Eval;

/// <summary>
/// AUROC of three response-level scores for telling wrong answers from right ones: LogTokU reliability (ALGORITHMS.md
/// 5.2), and the entropy and max-probability baselines. Null where undefined (all answers right, or all wrong).
/// </summary>
internal sealed record ReliabilityAurocs(double? Auroc, double? EntropyAuroc, double? MaxProbAuroc);

/// <summary>The table and the JSON of <c>tandem eval</c>.</summary>
internal static class EvalReport
{
    /// <summary>
    /// The JSON, exactly as issue 5 spells it: <c>{"methods":[{"name","threshold","accuracy","tokens_per_s",
    /// "large_share","acceptance","mean_accepted"},...],"logtoku":{"auroc","entropy_auroc","maxprob_auroc"}}</c>, fields
    /// that do not apply null.
    /// </summary>
    public static string Json(IReadOnlyList<MethodResult> results, ReliabilityAurocs aurocs) => Output.Json.Write(w =>
    {
        w.WriteStartObject();
        w.WriteStartArray("methods");
        foreach (var row in results)
        {
            w.WriteStartObject();
            w.WriteString("name", row.Method.Name);
            if (row.Method.Threshold is { } threshold)
            {
                w.WriteNumber("threshold", threshold); // as the float it is: 0.005, not 0.004999999888241291
            }
            else
            {
                w.WriteNull("threshold");
            }
            WriteNumber(w, "accuracy", row.Accuracy);
            WriteNumber(w, "tokens_per_s", row.TokensPerSecond);
            WriteNumber(w, "large_share", row.LargeShare);
            WriteNumber(w, "acceptance", row.Acceptance);
            WriteNumber(w, "mean_accepted", row.MeanAccepted);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartObject("logtoku");
        WriteNumber(w, "auroc", aurocs.Auroc);
        WriteNumber(w, "entropy_auroc", aurocs.EntropyAuroc);
        WriteNumber(w, "maxprob_auroc", aurocs.MaxProbAuroc);
        w.WriteEndObject();
        w.WriteEndObject();
    });

    public static void WriteTable(TextWriter output, IReadOnlyList<MethodResult> results, int problems)
    {
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{"method",-20} {"threshold",9} {"accuracy",9} {"tokens/s",9} {"large share",12} {"acceptance",11} {"mean accepted",14} {"ms/answer",10}"));
        foreach (var row in results)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{row.Method.Name,-20} {Cell(row.Method.Threshold, "0.###"),9} {Percent(row.Accuracy),9} {row.TokensPerSecond,9:0.0} " +
                $"{Percent(row.LargeShare),12} {(row.Acceptance is { } a ? Percent(a) : "-"),11} {Cell(row.MeanAccepted, "0.00"),14} " +
                $"{row.SecondsPerProblem * 1000,10:0.0}"));
        }
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{problems} problems; tokens/s = committed tokens / wall time, prompt prefill included; greedy except speculative-sampled (temperature 1)"));
        if (results.Any(r => r.Method.RegeneratesOnSwitch))
        {
            output.WriteLine("ead: regenerate on switch (the small token that triggered a switch is dropped; the large model writes that position)");
        }
    }

    public static void WriteReliability(TextWriter output, ReliabilityAurocs aurocs, string source, int wrong, int total)
    {
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"AUROC for predicting wrong answers ({source}, {wrong} of {total} wrong): LogTokU reliability {Cell(aurocs.Auroc, "0.000")}, " +
            $"entropy {Cell(aurocs.EntropyAuroc, "0.000")}, max probability {Cell(aurocs.MaxProbAuroc, "0.000")}"));
    }

    private static string Percent(double fraction) => string.Create(CultureInfo.InvariantCulture, $"{fraction * 100:0.0}%");

    private static string Cell(double? value, string format) =>
        value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "-";

    private static void WriteNumber(Utf8JsonWriter w, string name, double? value)
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
