using System.Text.Json;
using NUnit.Framework;
using CliProgram = Tandem.Cli.Cli;
using Tandem.Cli.Arguments;
using Tandem.Cli.Commands;
using Tandem.Tests.Support;

namespace Tandem.Tests.CommandLine;

/// <summary>
/// The prefill attention options of <c>tandem generate</c> and <c>tandem score</c>: parsing, usage errors (exit 2),
/// invalid values (exit 1) before the model loads, and the "attention" field of <c>score --json</c>.
/// </summary>
[TestFixture]
public sealed class AttentionArgumentsTests
{
    private static string Long => Repository.Fixture("long-llama-bf16");

    private static string LongText => Golden.Load("long-llama-bf16").Json.Long!.Text;

    [Test]
    public void Both_commands_list_the_options()
    {
        foreach (string command in new[] { "generate", "score" })
        {
            var help = CliRunner.Run(command, "--help");
            Assert.That(help.Out, Does.Contain("--attention").And.Contain("--xattn-stride").And.Contain("--xattn-threshold").And.Contain("--xattn-fp8")
                .And.Contain("--flex-gamma").And.Contain("--flex-tau").And.Contain("--flex-min-budget").And.Contain("--block-size"),
                command);
        }
    }

    [TestCase("dense")]
    [TestCase("xattention")]
    [TestCase("flexprefill")]
    public void Score_json_reports_the_method_and_its_mean_density(string method)
    {
        string[] knobs = method switch
        {
            "xattention" => ["--block-size", "64", "--xattn-stride", "16", "--xattn-threshold", "0.8"],
            "flexprefill" => ["--block-size", "64", "--flex-gamma", "0.9", "--flex-tau", "0.1", "--flex-min-budget", "128"],
            _ => [],
        };
        var result = CliRunner.Run(["score", "--model", Long, "--text", LongText, "--json", "--attention", method, .. knobs]);

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        using var json = JsonDocument.Parse(result.Out);
        var attention = json.RootElement.GetProperty("attention");
        Assert.That(attention.GetProperty("method").GetString(), Is.EqualTo(method));
        double density = attention.GetProperty("density").GetDouble();
        if (method == "dense")
        {
            Assert.That(density, Is.EqualTo(1.0));
        }
        else
        {
            Assert.That(density, Is.GreaterThan(0).And.LessThan(1.0), "a 1,650-token prompt in blocks of 64 skips blocks");
        }
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Generate_runs_with_a_sparse_prefill(bool fp8)
    {
        string[] args = ["generate", "--model", Long, "--prompt", LongText, "--max-tokens", "3", "--temperature", "0",
            "--attention", "xattention", "--block-size", "64", "--json", .. (fp8 ? new[] { "--xattn-fp8" } : Array.Empty<string>())];
        var result = CliRunner.Run(args);
        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        using var json = JsonDocument.Parse(result.Out);
        Assert.That(json.RootElement.GetProperty("tokens").GetArrayLength(), Is.EqualTo(3));
    }

    [Test]
    public void Score_runs_with_fp8_estimation_and_keeps_its_json_shape()
    {
        var result = CliRunner.Run("score", "--model", Long, "--text", LongText, "--json", "--attention", "xattention",
            "--block-size", "64", "--xattn-fp8");
        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        using var json = JsonDocument.Parse(result.Out);
        var attention = json.RootElement.GetProperty("attention");
        Assert.That(attention.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "method", "density" }));
        Assert.That(attention.GetProperty("method").GetString(), Is.EqualTo("xattention"));
        Assert.That(attention.GetProperty("density").GetDouble(), Is.GreaterThan(0).And.LessThan(1.0));
    }

    [TestCase("generate", "--prompt")]
    [TestCase("score", "--text")]
    public void Xattn_fp8_is_a_flag_of_both_commands(string command, string text)
    {
        var spec = (command == "generate" ? GenerateCommand.Command : ScoreCommand.Command).Spec;
        string[] head = ["--model", "m", text, "t", "--attention", "xattention"];
        Assert.That(AttentionArguments.Bind(ArgumentParser.Parse(spec, [.. head, "--xattn-fp8"])).XAttentionFp8, Is.True);
        Assert.That(AttentionArguments.Bind(ArgumentParser.Parse(spec, head)).XAttentionFp8, Is.False, "off by default");
        var withValue = Assert.Throws<UsageException>(() => ArgumentParser.Parse(spec, [.. head, "--xattn-fp8=1"]));
        Assert.That(withValue!.Message, Does.Contain("--xattn-fp8 takes no value"));
    }

    private static IEnumerable<TestCaseData> UsageErrors()
    {
        string[] score = ["score", "--model", "m", "--text", "t"];
        yield return new TestCaseData(Args(score, "--attention", "sparse"), "--attention").SetName("unknown method");
        yield return new TestCaseData(Args(score, "--attention", "xattention", "--xattn-stride", "four"), "--xattn-stride").SetName("stride does not parse");
        yield return new TestCaseData(Args(score, "--attention", "flexprefill", "--flex-gamma", "high"), "--flex-gamma").SetName("gamma does not parse");
        yield return new TestCaseData(Args(score, "--xattn-threshold", "0.5"), "--xattn-threshold").SetName("xattention knob with dense");
        yield return new TestCaseData(Args(score, "--attention", "xattention", "--flex-tau", "0.2"), "--flex-tau").SetName("flexprefill knob with xattention");
        yield return new TestCaseData(Args(score, "--attention", "flexprefill", "--xattn-stride", "4"), "--xattn-stride").SetName("xattention knob with flexprefill");
        yield return new TestCaseData(Args(score, "--xattn-fp8"), "--xattn-fp8").SetName("fp8 flag with dense");
        yield return new TestCaseData(Args(score, "--attention", "flexprefill", "--xattn-fp8"), "--xattn-fp8").SetName("fp8 flag with flexprefill");
        yield return new TestCaseData(new[] { "generate", "--prompt", "p", "--attention", "xattention" }, "--attention").SetName("attention in pair mode");
        yield return new TestCaseData(new[] { "generate", "--prompt", "p", "--xattn-fp8" }, "--xattn-fp8").SetName("fp8 flag in pair mode");
    }

    private static string[] Args(string[] head, params string[] tail) => [.. head, .. tail];

    [TestCaseSource(nameof(UsageErrors))]
    public void Usage_errors_exit_2(string[] args, string option)
    {
        var result = CliRunner.Run(args);
        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitUsage), result.ToString());
        Assert.That(result.ErrorLines[0], Does.StartWith("tandem: error: ").And.Contain(option));
    }

    private static IEnumerable<TestCaseData> InvalidValues()
    {
        string[] score = ["score", "--model", "/no/such/model", "--text", "t"];
        yield return new TestCaseData(Args(score, "--attention", "xattention", "--block-size", "96"), "BlockSize").SetName("block size 96");
        yield return new TestCaseData(Args(score, "--attention", "xattention", "--xattn-stride", "3"), "XAttentionStride").SetName("stride 3");
        yield return new TestCaseData(Args(score, "--attention", "xattention", "--xattn-threshold", "-1"), "thresholds").SetName("negative threshold");
        yield return new TestCaseData(Args(score, "--attention", "flexprefill", "--flex-gamma", "0"), "FlexGamma").SetName("gamma 0");
        yield return new TestCaseData(Args(score, "--attention", "flexprefill", "--flex-tau", "nan"), "FlexTau").SetName("NaN tau");
        yield return new TestCaseData(new[] { "generate", "--model", "/no/such/model", "--prompt", "p", "--attention", "flexprefill",
            "--flex-min-budget", "-5" }, "FlexMinBudget").SetName("negative budget");
    }

    [TestCaseSource(nameof(InvalidValues))]
    public void Invalid_values_exit_1_before_the_model_loads(string[] args, string message)
    {
        var result = CliRunner.Run(args);
        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitError), result.ToString());
        Assert.That(result.Error, Does.Contain(message).And.Not.Contain("/no/such/model"), "checked before the load");
    }
}
