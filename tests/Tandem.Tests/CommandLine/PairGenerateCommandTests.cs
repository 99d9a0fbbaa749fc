using System.Text.Json;
using NUnit.Framework;
using Tandem.Tests.Support;
using CliProgram = Tandem.Cli.Cli;

namespace Tandem.Tests.CommandLine;

/// <summary>
/// <c>tandem generate</c> for a model pair (no --model): option parsing and validation, and the JSON shape with the
/// per-token "model" and "accepted". The pair is two fixtures that share a tokenizer: llama-f32 (small) and
/// mistral-swa-f32 (large).
/// </summary>
[TestFixture]
public sealed class PairGenerateCommandTests
{
    private static string Small => Repository.Fixture("llama-f32");

    private static string Large => Repository.Fixture("mistral-swa-f32");

    private static readonly string[] TokenFields = ["id", "text", "entropy", "au", "eu", "model", "accepted", "outcome"];

    private static readonly string[] StatsFields =
        ["mode", "tokens_small", "tokens_large", "large_share", "drafted", "accepted", "acceptance", "mean_accepted", "discarded", "switches", "seconds"];

    private static CliResult Pair(params string[] args) =>
        CliRunner.Run(["generate", "--small", Small, "--large", Large, "--temperature", "0", "--ignore-eos", .. args]);

    private static JsonElement[] Tokens(JsonElement root) => [.. root.GetProperty("tokens").EnumerateArray()];

    [TestCase("speculative")]
    [TestCase("rstitch")]
    [TestCase("ead")]
    [TestCase("large")]
    [TestCase("small")]
    public void Json_has_the_token_fields_model_and_accepted_and_the_stats(string mode)
    {
        int maxTokens = TestContext.CurrentContext.Random.Next(3, 14); // ragged: a fresh length each run
        var result = Pair("--mode", mode, "--prompt", "The quick brown fox", "--max-tokens", maxTokens.ToString(), "--json");

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        using var json = JsonDocument.Parse(result.Out);
        var root = json.RootElement;
        Assert.That(root.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "text", "tokens", "stats" }));
        var tokens = Tokens(root);
        foreach (var token in tokens)
        {
            Assert.That(token.EnumerateObject().Select(p => p.Name), Is.EqualTo(TokenFields));
            Assert.That(token.GetProperty("model").GetString(), Is.AnyOf("small", "large"));
            Assert.That(token.GetProperty("eu").GetDouble(), Is.InRange(0.0, 1.0));
            var accepted = token.GetProperty("accepted");
            if (mode == "speculative")
            {
                Assert.That(accepted.ValueKind, Is.AnyOf(JsonValueKind.True, JsonValueKind.False));
                Assert.That(accepted.GetBoolean(), Is.EqualTo(token.GetProperty("outcome").GetString() != "rejected"));
            }
            else
            {
                Assert.That(accepted.ValueKind, Is.EqualTo(JsonValueKind.Null), "accepted applies to speculative decoding only");
            }
        }
        int committed = tokens.Count(t => t.GetProperty("outcome").GetString() is not ("rejected" or "discarded"));
        Assert.That(committed, Is.EqualTo(maxTokens), "--ignore-eos: exactly --max-tokens committed tokens");

        var stats = root.GetProperty("stats");
        Assert.That(stats.EnumerateObject().Select(p => p.Name), Is.EqualTo(StatsFields));
        Assert.That(stats.GetProperty("mode").GetString(), Is.EqualTo(mode));
        long small = stats.GetProperty("tokens_small").GetInt64(), large = stats.GetProperty("tokens_large").GetInt64();
        Assert.That(small + large, Is.EqualTo(maxTokens));
        Assert.That(stats.GetProperty("large_share").GetDouble(), Is.EqualTo((double)large / maxTokens).Within(1e-12));
        Assert.That(tokens.Count(t => t.GetProperty("model").GetString() == "large" && t.GetProperty("outcome").GetString() is not ("rejected" or "discarded")),
            Is.EqualTo(large));
        if (mode == "speculative")
        {
            Assert.That(stats.GetProperty("acceptance").GetDouble(), Is.InRange(0.0, 1.0));
            Assert.That(stats.GetProperty("mean_accepted").GetDouble(), Is.GreaterThanOrEqualTo(0.0));
        }
        else
        {
            Assert.That(stats.GetProperty("acceptance").ValueKind, Is.EqualTo(JsonValueKind.Null));
            Assert.That(stats.GetProperty("mean_accepted").ValueKind, Is.EqualTo(JsonValueKind.Null));
        }
        if (mode == "large")
        {
            Assert.That(small, Is.Zero);
        }
        if (mode == "small")
        {
            Assert.That(large, Is.Zero);
        }
    }

    [Test]
    public void Greedy_speculative_text_is_the_large_models_and_small_mode_is_the_single_model_command()
    {
        string prompt = "Hello world " + TestContext.CurrentContext.Random.GetString(4, "abcdefghij");
        string[] common = ["--prompt", prompt, "--max-tokens", "12", "--json"];
        string Text(CliResult r)
        {
            Assert.That(r.ExitCode, Is.Zero, r.ToString());
            using var json = JsonDocument.Parse(r.Out);
            return json.RootElement.GetProperty("text").GetString()!;
        }

        string speculative = Text(Pair(["--mode", "speculative", "--draft", "3", .. common]));
        string large = Text(Pair(["--mode", "large", .. common]));
        string small = Text(Pair(["--mode", "small", .. common]));
        string single = Text(CliRunner.Run(["generate", "--model", Small, "--temperature", "0", "--ignore-eos", .. common]));

        Assert.That(speculative, Is.EqualTo(large), "greedy speculative decoding is lossless");
        Assert.That(small, Is.EqualTo(single), "the pair's small-only mode decodes as the model alone");
    }

    /// <summary>
    /// EAD at threshold 0 switches at the first token of positive entropy (every token of these random weights) and
    /// never hands back: the paper's rule keeps that first small token; <c>--regenerate</c> drops it (outcome
    /// "discarded") and the large model writes that position, and with it every committed token.
    /// </summary>
    [Test]
    public void Ead_regenerate_discards_the_small_token_that_triggered_the_switch()
    {
        string[] common = ["--mode", "ead", "--threshold", "0", "--prompt", "The quick brown fox", "--max-tokens", "5", "--json"];
        JsonElement[] Run(params string[] extra)
        {
            var result = Pair([.. common, .. extra]);
            Assert.That(result.ExitCode, Is.Zero, result.ToString());
            using var json = JsonDocument.Parse(result.Out);
            return [.. Tokens(json.RootElement).Select(t => t.Clone())];
        }
        static string Model(JsonElement t) => t.GetProperty("model").GetString()!;
        static string Outcome(JsonElement t) => t.GetProperty("outcome").GetString()!;

        var kept = Run();
        Assert.That(kept.Any(t => Outcome(t) == "discarded"), Is.False);
        Assert.That(Model(kept[0]), Is.EqualTo("small"), "the triggering token stays");
        Assert.That(kept.Skip(1).All(t => Model(t) == "large"), Is.True);

        var regenerated = Run("--regenerate");
        Assert.That(Outcome(regenerated[0]), Is.EqualTo("discarded"));
        Assert.That(Model(regenerated[0]), Is.EqualTo("small"));
        var committed = regenerated.Where(t => Outcome(t) != "discarded").ToArray();
        Assert.That(committed, Has.Length.EqualTo(5));
        Assert.That(committed.All(t => Model(t) == "large"), Is.True, "the large model writes every committed token");
    }

    [Test]
    public void Show_uncertainty_marks_who_wrote_each_token_without_a_terminal()
    {
        var large = Pair("--mode", "large", "--prompt", "Once upon", "--max-tokens", "4", "--show-uncertainty");
        var small = Pair("--mode", "small", "--prompt", "Once upon", "--max-tokens", "4", "--show-uncertainty");

        Assert.That(large.ExitCode, Is.Zero, large.ToString());
        Assert.That(small.ExitCode, Is.Zero, small.ToString());
        Assert.That(System.Text.RegularExpressions.Regex.Matches(large.Out, @"\[L \d\.\d\d/\d\.\d\d\]"), Has.Count.EqualTo(4));
        Assert.That(System.Text.RegularExpressions.Regex.Matches(small.Out, @"\[S \d\.\d\d/\d\.\d\d\]"), Has.Count.EqualTo(4));
        Assert.That(large.Out, Does.Contain("small (S) or large (L)"), "the legend");
        Assert.That(large.Out, Does.Not.Contain("\u001b["), "no colour without a terminal");
    }

    [Test]
    public void Show_uncertainty_on_a_terminal_makes_large_tokens_bold_and_underlined()
    {
        var terminal = new Tandem.Cli.CliEnvironment(true, false, false, CancellationToken.None);
        var result = CliRunner.Run(terminal, "generate", "--small", Small, "--large", Large, "--temperature", "0", "--ignore-eos",
            "--mode", "large", "--prompt", "Once upon", "--max-tokens", "3", "--show-uncertainty");

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.That(result.Out, Does.Contain("\u001b[1;4m"));
    }

    private static IEnumerable<TestCaseData> UsageErrors()
    {
        static TestCaseData Case(string name, params string[] args) => new TestCaseData(new object[] { args }).SetName(name);
        yield return Case("unknown mode", "generate", "--prompt", "p", "--mode", "fast");
        yield return Case("unknown signal", "generate", "--prompt", "p", "--signal", "vibes");
        yield return Case("window with rstitch", "generate", "--prompt", "p", "--mode", "rstitch", "--window", "3");
        yield return Case("regenerate with rstitch", "generate", "--prompt", "p", "--mode", "rstitch", "--regenerate");
        yield return Case("draft with ead", "generate", "--prompt", "p", "--mode", "ead", "--draft", "3");
        yield return Case("threshold with speculative", "generate", "--prompt", "p", "--mode", "speculative", "--threshold", "0.1");
        yield return Case("signal with ead", "generate", "--prompt", "p", "--mode", "ead", "--signal", "eu");
        yield return Case("model with small", "generate", "--model", "m", "--small", "s", "--prompt", "p");
        yield return Case("model with mode", "generate", "--model", "m", "--mode", "small", "--prompt", "p");
        yield return Case("threshold does not parse", "generate", "--prompt", "p", "--threshold", "high");
        yield return Case("window does not parse", "generate", "--prompt", "p", "--mode", "ead", "--window", "five");
        yield return Case("pair without prompt", "generate", "--mode", "rstitch");
    }

    [TestCaseSource(nameof(UsageErrors))]
    public void Usage_errors_exit_2_before_any_model_loads(string[] args)
    {
        var result = CliRunner.Run(args);

        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitUsage), result.ToString());
        Assert.That(result.ErrorLines[0], Does.StartWith("tandem: error: "));
        Assert.That(result.Error, Does.Contain("usage: tandem generate"));
        Assert.That(result.Out, Is.Empty);
    }

    private static IEnumerable<TestCaseData> InvalidValues()
    {
        static TestCaseData Case(string message, string name, params string[] args) => new TestCaseData(args, message).SetName(name);
        yield return Case("--window", "zero window", "--mode", "ead", "--window", "0");
        yield return Case("--min-large", "zero min-large", "--mode", "ead", "--min-large", "0");
        yield return Case("--threshold", "maxprob without a threshold", "--mode", "rstitch", "--signal", "maxprob");
        yield return Case("DraftLength", "zero draft", "--mode", "speculative", "--draft", "0");
        yield return Case("DraftConfidence", "draft confidence above 1", "--mode", "speculative", "--draft-confidence", "1.5");
        yield return Case("threshold is NaN", "NaN threshold", "--mode", "rstitch", "--threshold", "nan");
        yield return Case("--max-tokens", "zero max-tokens", "--max-tokens", "0");
        yield return Case("temperature", "negative temperature", "--temperature", "-1");
    }

    [TestCaseSource(nameof(InvalidValues))]
    public void Invalid_values_exit_1_with_one_line(string[] args, string message)
    {
        var result = CliRunner.Run(["generate", "--small", Small, "--large", Large, "--prompt", "p", .. args]);

        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitError), result.ToString());
        Assert.That(result.ErrorLines, Has.Length.EqualTo(1));
        Assert.That(result.ErrorLines[0], Does.StartWith("tandem: error: ").And.Contain(message));
    }

    [Test]
    public void A_missing_small_model_exits_1_naming_it()
    {
        var result = CliRunner.Run("generate", "--small", "/no/such/small", "--large", Large, "--prompt", "p");
        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitError), result.ToString());
        Assert.That(result.Error, Does.Contain("/no/such/small"));
    }

    [Test]
    public void Models_with_different_vocabularies_exit_1()
    {
        var result = CliRunner.Run("generate", "--small", Small, "--large", Repository.Fixture("qwen2-tied-f32"), "--prompt", "p");
        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitError), result.ToString());
        Assert.That(result.ErrorLines, Has.Length.EqualTo(1));
    }

    [Test]
    public void Help_lists_the_pair_options()
    {
        var help = CliRunner.Run("generate", "--help");
        Assert.That(help.ExitCode, Is.Zero);
        Assert.That(help.Out, Does.Contain("--small DIR").And.Contain("--large DIR").And.Contain("--mode large|small|speculative|rstitch|ead")
            .And.Contain("--threshold T").And.Contain("--window W").And.Contain("--regenerate").And.Contain("--draft N")
            .And.Contain("[--model DIR]"));
    }
}
