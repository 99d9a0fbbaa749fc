using System.Text.Json;
using NUnit.Framework;
using Tandem.Tests.Support;
using CliProgram = Tandem.Cli.Cli;

namespace Tandem.Tests.CommandLine;

/// <summary>
/// <c>tandem eval</c> on a tiny evaluation set with two fixtures as the pair (llama-f32 small, mistral-swa-f32 large,
/// one tokenizer): the JSON shape of issue 5, fractions in [0, 1], null where a field does not apply, and the plots.
/// Short answers and two thresholds per sweep keep it fast on CI.
/// </summary>
[TestFixture]
public sealed class EvalCommandTests
{
    private static readonly string[] MethodFields = ["name", "threshold", "accuracy", "tokens_per_s", "large_share", "acceptance", "mean_accepted"];

    private static readonly string[] PlotFiles = ["accuracy-vs-latency.png", "ead-large-share.png", "entropy-histogram.png", "au-eu-quadrants.png"];

    private string _folder = "";

    private static string Small => Repository.Fixture("llama-f32");

    private static string Large => Repository.Fixture("mistral-swa-f32");

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("tandem-eval-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    /// <summary>Random sums in the demo set's format; the fixtures have random weights, so answers are mostly wrong.</summary>
    private string EvalFile(int problems)
    {
        var random = TestContext.CurrentContext.Random;
        string path = Path.Combine(_folder, "eval.jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, problems).Select(i =>
        {
            int a = random.Next(0, 1000), b = random.Next(0, 1000);
            return JsonSerializer.Serialize(new { id = i, prompt = $"{a}+{b}=", response = "\n...", answer = (a + b).ToString() });
        }));
        return path;
    }

    private CliResult Eval(params string[] args) => CliRunner.Run(
    [
        "eval", "--small", Small, "--large", Large, "--file", EvalFile(4), "--limit", "2", "--max-tokens", "6",
        "--rstitch-thresholds", "0,1", "--ead-thresholds", "0,9.1", "--out-dir", Path.Combine(_folder, "plots"), .. args,
    ]);

    [Test]
    public void Json_has_exactly_the_issue_shape_with_fractions_and_nulls()
    {
        var result = Eval("--json");

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        using var json = JsonDocument.Parse(result.Out);
        var root = json.RootElement;
        Assert.That(root.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "methods", "logtoku" }));
        var methods = root.GetProperty("methods").EnumerateArray().ToArray();
        Assert.That(methods.Select(m => m.GetProperty("name").GetString()), Is.EqualTo(new[]
        {
            "large", "small", "speculative-greedy", "speculative-sampled", "rstitch", "rstitch", "ead", "ead",
        }), "one entry per swept threshold");
        foreach (var method in methods)
        {
            string name = method.GetProperty("name").GetString()!;
            Assert.That(method.EnumerateObject().Select(p => p.Name), Is.EqualTo(MethodFields));
            Assert.That(method.GetProperty("accuracy").GetDouble(), Is.InRange(0.0, 1.0));
            Assert.That(method.GetProperty("large_share").GetDouble(), Is.InRange(0.0, 1.0));
            Assert.That(method.GetProperty("tokens_per_s").GetDouble(), Is.GreaterThan(0.0));
            bool swept = name is "rstitch" or "ead";
            Assert.That(method.GetProperty("threshold").ValueKind, Is.EqualTo(swept ? JsonValueKind.Number : JsonValueKind.Null), name);
            if (name.StartsWith("speculative", StringComparison.Ordinal))
            {
                Assert.That(method.GetProperty("acceptance").GetDouble(), Is.InRange(0.0, 1.0));
                Assert.That(method.GetProperty("mean_accepted").GetDouble(), Is.GreaterThanOrEqualTo(0.0));
            }
            else
            {
                Assert.That(method.GetProperty("acceptance").ValueKind, Is.EqualTo(JsonValueKind.Null), name);
                Assert.That(method.GetProperty("mean_accepted").ValueKind, Is.EqualTo(JsonValueKind.Null), name);
            }
        }
        Assert.Multiple(() =>
        {
            Assert.That(methods[0].GetProperty("large_share").GetDouble(), Is.EqualTo(1.0), "large only");
            Assert.That(methods[1].GetProperty("large_share").GetDouble(), Is.EqualTo(0.0), "small only");
            Assert.That(methods[4].GetProperty("threshold").GetDouble(), Is.EqualTo(0.0));
            Assert.That(methods[5].GetProperty("threshold").GetDouble(), Is.EqualTo(1.0));
            Assert.That(methods[5].GetProperty("large_share").GetDouble(), Is.EqualTo(0.0), "R-Stitch at 1 never hands over");
            Assert.That(methods[7].GetProperty("large_share").GetDouble(), Is.EqualTo(0.0), "EAD above log2 V never hands over");
            Assert.That(methods[7].GetProperty("threshold").GetDouble(), Is.EqualTo(9.1).Within(1e-6));
        });

        var logtoku = root.GetProperty("logtoku");
        Assert.That(logtoku.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "auroc", "entropy_auroc", "maxprob_auroc" }));
        foreach (var field in logtoku.EnumerateObject())
        {
            // Null when the small model's answers are all right or all wrong (AUROC undefined), else in [0, 1].
            Assert.That(field.Value.ValueKind == JsonValueKind.Null || field.Value.GetDouble() is >= 0 and <= 1, Is.True, field.Name);
        }
        Assert.That(result.Out.TrimEnd('\n'), Does.Not.Contain("\n"), "one line");
    }

    /// <summary>
    /// At threshold 0 every positive window mean switches to the large model and none hands back. EAD's rule keeps the
    /// small token that triggered the switch, so the small model still writes each answer's first token; with
    /// <c>--ead-regenerate</c> that token is dropped and the large model writes every token (the fixtures' random
    /// weights never give a distribution of zero entropy).
    /// </summary>
    [Test]
    public void Ead_regenerate_lets_the_large_model_write_the_token_that_triggered_the_switch()
    {
        double EadAtZero(params string[] args)
        {
            var result = Eval(["--json", .. args]);
            Assert.That(result.ExitCode, Is.Zero, result.ToString());
            using var json = JsonDocument.Parse(result.Out);
            var ead = json.RootElement.GetProperty("methods").EnumerateArray()
                .First(m => m.GetProperty("name").GetString() == "ead");
            Assert.That(ead.GetProperty("threshold").GetDouble(), Is.EqualTo(0.0));
            return ead.GetProperty("large_share").GetDouble();
        }

        Assert.That(EadAtZero(), Is.LessThan(1.0), "the paper's rule: the triggering small token stays");
        Assert.That(EadAtZero("--ead-regenerate"), Is.EqualTo(1.0), "regenerated: the large model writes every token");
        Assert.That(Eval("--ead-regenerate").Out, Does.Contain("ead: regenerate on switch"), "the table says which EAD it ran");
        Assert.That(Eval().Out, Does.Not.Contain("regenerate on switch"));
    }

    [Test]
    public void Writes_the_four_plots_as_non_empty_png_files_and_prints_a_table()
    {
        var result = Eval();

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.That(result.Out, Does.Contain("method").And.Contain("tokens/s").And.Contain("large share").And.Contain("speculative-greedy")
            .And.Contain("AUROC for predicting wrong answers").And.Contain("plots:"));
        byte[] signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
        foreach (string file in PlotFiles)
        {
            string path = Path.Combine(_folder, "plots", file);
            Assert.That(File.Exists(path), Is.True, path);
            byte[] bytes = File.ReadAllBytes(path);
            Assert.That(bytes.Length, Is.GreaterThan(1000), path);
            Assert.That(bytes.Take(8), Is.EqualTo(signature), $"{path} is a PNG");
        }
    }

    [Test]
    public void Help_names_the_default_threshold_grids()
    {
        var help = CliRunner.Run("eval", "--help");
        Assert.That(help.ExitCode, Is.Zero);
        Assert.That(help.Out, Does.Contain("--limit N").And.Contain("--rstitch-thresholds LIST").And.Contain("0,0.001,0.002,0.005,0.01")
            .And.Contain("--ead-thresholds LIST").And.Contain("log2 V").And.Contain("--out-dir DIR"));
    }

    private static IEnumerable<TestCaseData> UsageErrors()
    {
        static TestCaseData Case(string name, params string[] args) => new TestCaseData(new object[] { args }).SetName(name);
        yield return Case("limit does not parse", "eval", "--limit", "few");
        yield return Case("thresholds do not parse", "eval", "--rstitch-thresholds", "0,x");
        yield return Case("empty threshold list", "eval", "--ead-thresholds", "");
        yield return Case("unknown option", "eval", "--mode", "rstitch");
    }

    [TestCaseSource(nameof(UsageErrors))]
    public void Usage_errors_exit_2(string[] args)
    {
        var result = CliRunner.Run(args);
        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitUsage), result.ToString());
        Assert.That(result.Error, Does.Contain("usage: tandem eval"));
    }

    [TestCase("--limit", "-1", "--limit")]
    [TestCase("--max-tokens", "0", "--max-tokens")]
    [TestCase("--draft", "0", "--draft")]
    [TestCase("--rstitch-thresholds", "0,Infinity", "finite")]
    [TestCase("--out-dir", "", "--out-dir")]
    public void Invalid_values_exit_1(string option, string value, string message)
    {
        var result = CliRunner.Run("eval", "--small", Small, "--large", Large, "--file", EvalFile(2), option, value);
        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitError), result.ToString());
        Assert.That(result.ErrorLines, Has.Length.EqualTo(1));
        Assert.That(result.ErrorLines[0], Does.Contain(message));
    }

    [TestCase("{\"prompt\":\"1+1=\"}", "\"answer\" is missing")]
    [TestCase("{\"answer\":\"2\"}", "\"prompt\" is missing")]
    [TestCase("{oops", "not valid JSON")]
    public void A_bad_evaluation_line_exits_1_naming_it(string line, string message)
    {
        string path = Path.Combine(_folder, "eval.jsonl");
        File.WriteAllLines(path, [line]);
        var result = CliRunner.Run("eval", "--small", Small, "--large", Large, "--file", path);
        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitError), result.ToString());
        Assert.That(result.ErrorLines[0], Does.Contain("eval.jsonl:1").And.Contain(message));
    }
}
