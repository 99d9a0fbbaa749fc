using System.Globalization;
using System.Text.Json;
using NUnit.Framework;
using Tandem.Cli;
using CliProgram = Tandem.Cli.Cli;
using Tandem.Tests.Support;

namespace Tandem.Tests.CommandLine;

/// <summary>
/// The <c>tandem</c> command run in-process: its stable JSON shapes, its text output, and the exit codes
/// (0 ok, 2 usage error, 1 any other error with one line on stderr).
/// </summary>
[TestFixture]
public sealed class CliTests
{
    private static string Llama => Repository.Fixture("llama-f32");

    [Test]
    public void Help_and_version_exit_0()
    {
        var help = CliRunner.Run("--help");
        Assert.That(help.ExitCode, Is.Zero, help.ToString());
        Assert.That(help.Out, Does.Contain("usage: tandem <command>").And.Contain("info").And.Contain("generate").And.Contain("score"));

        var generateHelp = CliRunner.Run("generate", "--help");
        Assert.That(generateHelp.ExitCode, Is.Zero);
        Assert.That(generateHelp.Out, Does.Contain("--max-tokens N").And.Contain("default: 64").And.Contain("default: 0.8"));

        var version = CliRunner.Run("--version");
        Assert.That(version.ExitCode, Is.Zero, version.ToString());
        Assert.That(version.Out, Does.StartWith("tandem 0.1.0").And.Contain(TandemRuntime.LibraryPath));
    }

    [Test]
    public void Info_json_has_exactly_the_stable_shape()
    {
        var result = CliRunner.Run("info", "--model", Llama, "--json");

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        using var json = JsonDocument.Parse(result.Out);
        var root = json.RootElement;
        Assert.That(root.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[]
        {
            "architecture", "layers", "hidden_size", "heads", "kv_heads", "head_dim", "vocab_size", "context_length", "dtype", "backends",
        }));
        Assert.That(root.GetProperty("backends").EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "cpu", "cuda" }));
        using var model = Model.Load(Llama);
        var info = model.Info;
        Assert.Multiple(() =>
        {
            Assert.That(root.GetProperty("architecture").GetString(), Is.EqualTo("LlamaForCausalLM"));
            Assert.That(root.GetProperty("layers").GetInt32(), Is.EqualTo(info.Layers));
            Assert.That(root.GetProperty("hidden_size").GetInt32(), Is.EqualTo(info.HiddenSize));
            Assert.That(root.GetProperty("heads").GetInt32(), Is.EqualTo(info.Heads));
            Assert.That(root.GetProperty("kv_heads").GetInt32(), Is.EqualTo(info.KvHeads));
            Assert.That(root.GetProperty("head_dim").GetInt32(), Is.EqualTo(info.HeadDim));
            Assert.That(root.GetProperty("vocab_size").GetInt32(), Is.EqualTo(info.VocabSize));
            Assert.That(root.GetProperty("context_length").GetInt32(), Is.EqualTo(info.ContextLength));
            Assert.That(root.GetProperty("dtype").GetString(), Is.EqualTo("f32"));
            Assert.That(root.GetProperty("backends").GetProperty("cpu").GetBoolean(), Is.True);
            Assert.That(root.GetProperty("backends").GetProperty("cuda").GetBoolean(), Is.EqualTo(TandemRuntime.BuildInfo.HasCuda));
        });
        Assert.That(result.Out.TrimEnd('\n'), Does.Not.Contain("\n"), "one line");
    }

    [Test]
    public void Info_text_names_the_shape_and_the_backends()
    {
        var result = CliRunner.Run("info", "--model", Repository.Fixture("llama3-sharded-bf16"));
        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.That(result.Out, Does.Contain("LlamaForCausalLM").And.Contain("bf16").And.Contain("backends").And.Contain("cpu"));
        Assert.That(result.Error, Is.Empty);
    }

    [Test]
    public void Generate_json_has_the_stable_shape_and_greedy_tokens()
    {
        var golden = Golden.Load("llama-f32");
        int steps = golden.Json.Greedy.Margins.TakeWhile(m => m >= 1e-4).Take(10).Count();

        var result = CliRunner.Run("generate", "--model", golden.Folder, "--prompt", golden.Json.Prompts[0].Text,
            "--temperature", "0", "--max-tokens", steps.ToString(CultureInfo.InvariantCulture), "--json", "--ignore-eos");

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        using var json = JsonDocument.Parse(result.Out);
        var root = json.RootElement;
        Assert.That(root.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "text", "tokens" }));
        var tokens = root.GetProperty("tokens").EnumerateArray().ToArray();
        Assert.That(tokens.Select(t => t.GetProperty("id").GetInt32()), Is.EqualTo(golden.Json.Greedy.Tokens.Take(steps)));
        using var model = Model.Load(golden.Folder);
        foreach (var token in tokens)
        {
            Assert.That(token.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "id", "text", "entropy", "au", "eu" }));
            Assert.That(token.GetProperty("text").GetString(), Is.EqualTo(model.Tokenizer.DecodeToken(token.GetProperty("id").GetInt32())));
            Assert.That(token.GetProperty("entropy").GetDouble(), Is.InRange(0.0, Math.Log(model.Info.VocabSize) + 1e-4), "nats");
            Assert.That(token.GetProperty("eu").GetDouble(), Is.InRange(0.0, 1.0));
            Assert.That(token.GetProperty("au").ValueKind, Is.EqualTo(JsonValueKind.Number));
        }
        int[] ids = [.. tokens.Select(t => t.GetProperty("id").GetInt32())];
        Assert.That(root.GetProperty("text").GetString(), Is.EqualTo(model.Tokenizer.Decode(ids)));
    }

    [Test]
    public void Generate_streams_plain_text_and_the_same_seed_gives_the_same_text()
    {
        string[] args = ["generate", "--model", Llama, "--prompt", "The quick brown fox", "--max-tokens", "12", "--seed", "5", "--ignore-eos"];
        var first = CliRunner.Run(args);
        var second = CliRunner.Run(args);
        var json = CliRunner.Run([.. args, "--json"]);

        Assert.That(first.ExitCode, Is.Zero, first.ToString());
        Assert.That(second.Out, Is.EqualTo(first.Out));
        using var document = JsonDocument.Parse(json.Out);
        Assert.That(first.Out, Is.EqualTo(document.RootElement.GetProperty("text").GetString() + Environment.NewLine));
    }

    [Test]
    public void Show_uncertainty_annotates_each_token_without_a_terminal()
    {
        var result = CliRunner.Run("generate", "--model", Llama, "--prompt", "The quick brown fox", "--max-tokens", "5",
            "--temperature", "0", "--show-uncertainty", "--ignore-eos");

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.That(System.Text.RegularExpressions.Regex.Matches(result.Out, @"\[\d\.\d\d/\d\.\d\d\]"), Has.Count.EqualTo(5));
        Assert.That(result.Out, Does.Contain("[EU/AU]"), "the legend");
        Assert.That(result.Out, Does.Not.Contain("\u001b["), "no colour codes off a terminal");
    }

    [Test]
    public void Show_uncertainty_colours_on_a_terminal_unless_NO_COLOR()
    {
        string[] args = ["generate", "--model", Llama, "--prompt", "The quick brown fox", "--max-tokens", "5", "--temperature", "0",
            "--show-uncertainty", "--ignore-eos"];
        var colored = CliRunner.Run(new CliEnvironment(true, true, NoColor: false, CancellationToken.None), args);
        var noColor = CliRunner.Run(new CliEnvironment(true, true, NoColor: true, CancellationToken.None), args);

        Assert.That(colored.ExitCode, Is.Zero, colored.ToString());
        Assert.That(colored.Out, Does.Contain("\u001b[3").And.Contain("\u001b[0m"));
        Assert.That(colored.Out, Does.Contain("confident").And.Contain("little evidence"), "the legend");
        Assert.That(noColor.Out, Does.Not.Contain("\u001b["));
        Assert.That(noColor.Out, Does.Contain("[EU/AU]"));
    }

    [Test]
    public void Score_json_has_the_stable_shape_and_null_for_the_first_token()
    {
        var golden = Golden.Load("llama-f32");
        var prompt = golden.Json.Prompts[0];
        var logits = golden.PromptLogits(0);

        var result = CliRunner.Run("score", "--model", golden.Folder, "--text", prompt.Text, "--json");

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        using var json = JsonDocument.Parse(result.Out);
        Assert.That(json.RootElement.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "tokens", "attention" }));
        var tokens = json.RootElement.GetProperty("tokens").EnumerateArray().ToArray();
        Assert.That(tokens.Select(t => t.GetProperty("id").GetInt32()), Is.EqualTo(prompt.Ids));
        foreach (var token in tokens)
        {
            Assert.That(token.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "id", "text", "logprob", "entropy", "au", "eu" }));
        }
        foreach (string key in new[] { "logprob", "entropy", "au", "eu" })
        {
            Assert.That(tokens[0].GetProperty(key).ValueKind, Is.EqualTo(JsonValueKind.Null), key);
        }
        for (int i = 1; i < tokens.Length; i++)
        {
            double expected = Reference.LogSoftmax(logits.Row(i - 1))[prompt.Ids[i]];
            Assert.That(tokens[i].GetProperty("logprob").GetDouble(), Is.EqualTo(expected).Within(2e-3), $"token {i}");
            Assert.That(tokens[i].GetProperty("entropy").GetDouble(), Is.EqualTo(Reference.Entropy(logits.Row(i - 1))).Within(2e-3));
        }
    }

    [Test]
    public void Score_text_prints_a_table_and_the_perplexity()
    {
        var result = CliRunner.Run("score", "--model", Llama, "--text", "The quick brown fox jumps.");
        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.That(result.Out, Does.Contain("logprob").And.Contain("perplexity"));
    }

    private static IEnumerable<TestCaseData> UsageErrors()
    {
        yield return new TestCaseData(new object[] { Array.Empty<string>() }).SetName("no command");
        yield return new TestCaseData(new object[] { new[] { "frobnicate" } }).SetName("unknown command");
        yield return new TestCaseData(new object[] { new[] { "--bogus" } }).SetName("unknown top-level option");
        yield return new TestCaseData(new object[] { new[] { "info" } }).SetName("info without --model");
        yield return new TestCaseData(new object[] { new[] { "info", "--model", "m", "--bogus" } }).SetName("unknown option");
        yield return new TestCaseData(new object[] { new[] { "generate", "--model", "m" } }).SetName("generate without --prompt");
        yield return new TestCaseData(new object[] { new[] { "generate", "--model", "m", "--prompt" } }).SetName("option without its value");
        yield return new TestCaseData(new object[] { new[] { "generate", "--model", "m", "--prompt", "p", "--max-tokens", "many" } }).SetName("max-tokens does not parse");
        yield return new TestCaseData(new object[] { new[] { "generate", "--model", "m", "--prompt", "p", "--temperature", "hot" } }).SetName("temperature does not parse");
        yield return new TestCaseData(new object[] { new[] { "generate", "--model", "m", "--prompt", "p", "--seed", "-1" } }).SetName("negative seed does not parse");
        yield return new TestCaseData(new object[] { new[] { "generate", "--model", "m", "--prompt", "p", "--device", "gpu" } }).SetName("unknown device");
        yield return new TestCaseData(new object[] { new[] { "generate", "--model", "m", "--prompt", "p", "--threads", "2.5" } }).SetName("threads does not parse");
        yield return new TestCaseData(new object[] { new[] { "score", "--model", "m" } }).SetName("score without --text");
        yield return new TestCaseData(new object[] { new[] { "--version", "extra" } }).SetName("version with an argument");
    }

    [TestCaseSource(nameof(UsageErrors))]
    public void Usage_errors_exit_2_with_a_message_and_the_usage(string[] args)
    {
        var result = CliRunner.Run(args);

        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitUsage), result.ToString());
        Assert.That(result.ErrorLines[0], Does.StartWith("tandem: error: "));
        Assert.That(result.Error, Does.Contain("usage: tandem"));
        Assert.That(result.Out, Is.Empty);
    }

    [Test]
    public void Usage_errors_are_reported_before_invalid_values()
    {
        var result = CliRunner.Run("generate", "--model", Llama, "--prompt", "p", "--temperature", "-1", "--top-k", "x");
        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitUsage), result.ToString());
    }

    private static IEnumerable<TestCaseData> InvalidValues()
    {
        string[] generate = ["generate", "--model", "MODEL", "--prompt", "hello"];
        yield return Case([.. generate, "--temperature", "-0.5"], "temperature", "negative temperature");
        yield return Case([.. generate, "--temperature", "nan"], "temperature", "NaN temperature");
        yield return Case([.. generate, "--top-p", "0"], "top_p", "top-p 0");
        yield return Case([.. generate, "--top-p", "1.5"], "top_p", "top-p above 1");
        yield return Case([.. generate, "--top-k", "-3"], "top_k", "negative top-k");
        yield return Case([.. generate, "--max-tokens", "0"], "--max-tokens", "zero max-tokens");
        yield return Case([.. generate, "--threads", "-2"], "--threads", "negative threads");
        yield return Case(["generate", "--model", "MODEL", "--prompt", ""], "--prompt is empty", "empty prompt");
        yield return Case(["generate", "--model", "MODEL", "--prompt", "bad \uD800 text"], "surrogate", "invalid UTF-16 prompt");
        yield return Case(["score", "--model", "MODEL", "--text", ""], "--text is empty", "empty text");
        yield return Case(["info", "--model", "/no/such/model"], "/no/such/model", "missing model folder");

        static TestCaseData Case(string[] args, string message, string name) => new TestCaseData(args, message).SetName(name);
    }

    [TestCaseSource(nameof(InvalidValues))]
    public void Invalid_values_and_failures_exit_1_with_one_line(string[] args, string message)
    {
        args = [.. args.Select(a => a == "MODEL" ? Llama : a)];
        var result = CliRunner.Run(args);

        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitError), result.ToString());
        Assert.That(result.ErrorLines, Has.Length.EqualTo(1), "one line, no stack trace");
        Assert.That(result.ErrorLines[0], Does.StartWith("tandem: error: ").And.Contain(message));
    }

    [Test]
    public void Verbose_adds_the_stack_trace()
    {
        var result = CliRunner.Run("info", "--model", "/no/such/model", "--verbose");
        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitError));
        Assert.That(result.ErrorLines.Length, Is.GreaterThan(1));
        Assert.That(result.Error, Does.Contain("TandemException").And.Contain(" at "));
    }

    [Test]
    public void A_folder_without_config_json_exits_1()
    {
        string folder = Directory.CreateTempSubdirectory("tandem-cli-").FullName;
        try
        {
            var result = CliRunner.Run("info", "--model", folder);
            Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitError), result.ToString());
            Assert.That(result.ErrorLines.Single(), Does.Contain("config.json"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void Cuda_on_a_build_without_it_exits_1()
    {
        if (TandemRuntime.BuildInfo.HasCuda)
        {
            Assert.Ignore("this build has the CUDA backend");
        }
        var result = CliRunner.Run("generate", "--model", Llama, "--prompt", "hi", "--device", "cuda");
        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitError), result.ToString());
        Assert.That(result.ErrorLines.Single(), Does.Contain("CUDA"));
    }

    [TestCase("generate", "--prompt")]
    [TestCase("score", "--text")]
    public void A_text_longer_than_the_context_exits_1_naming_the_limit(string command, string textOption)
    {
        string text = string.Concat(Enumerable.Repeat("The quick brown fox jumps over the lazy dog. ", 200));
        var result = CliRunner.Run(command, "--model", Llama, textOption, text);

        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitError), result.ToString());
        Assert.That(result.ErrorLines.Single(), Does.Contain("max_position_embeddings"));
    }

    [Test]
    public void An_interrupt_exits_130()
    {
        using var interrupt = new CancellationTokenSource();
        interrupt.Cancel();
        var result = CliRunner.Run(new CliEnvironment(false, false, true, interrupt.Token),
            "generate", "--model", Llama, "--prompt", "hello", "--max-tokens", "5");
        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitInterrupted), result.ToString());
        Assert.That(result.Error, Does.Contain("interrupted"));
    }
}
