using System.Text.Json;
using NUnit.Framework;
using Tandem.Tests.Support;
using CliProgram = Tandem.Cli.Cli;

namespace Tandem.Tests.CommandLine;

/// <summary>
/// <c>tandem entropy</c>: response tokens only, their entropies as the model scores them, and exactly
/// max(1, ceil(rho * N)) forking tokens over the whole file.
/// </summary>
[TestFixture]
public sealed class EntropyCommandTests
{
    private string _folder = "";

    private static string Llama => Repository.Fixture("llama-f32");

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("tandem-entropy-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    /// <summary>Fresh random prompt/response pairs of ragged lengths.</summary>
    private (string Path, (string Prompt, string Response)[] Pairs) RandomFile(int lines)
    {
        var random = TestContext.CurrentContext.Random;
        const string letters = "abcdefghijklmnopqrstuvwxyz ";
        var pairs = Enumerable.Range(0, lines)
            .Select(_ => (random.GetString(random.Next(1, 12), letters), random.GetString(random.Next(1, 40), letters))).ToArray();
        string path = Path.Combine(_folder, "pairs.jsonl");
        File.WriteAllLines(path, pairs.Select(p => JsonSerializer.Serialize(new { prompt = p.Item1, response = p.Item2 })));
        return (path, pairs);
    }

    [TestCase(0.2)]
    [TestCase(0.5)]
    [TestCase(1.0)]
    [TestCase(0.01)]
    public void Json_marks_exactly_ceil_rho_n_forking_tokens_among_response_tokens(double rho)
    {
        var (path, pairs) = RandomFile(TestContext.CurrentContext.Random.Next(2, 6));
        var result = CliRunner.Run("entropy", "--model", Llama, "--file", path, "--rho", rho.ToString(System.Globalization.CultureInfo.InvariantCulture), "--json");

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        using var json = JsonDocument.Parse(result.Out);
        var root = json.RootElement;
        Assert.That(root.EnumerateObject().Select(p => p.Name),
            Is.EqualTo(new[] { "rho", "valid_tokens", "forking_tokens", "threshold", "percentiles", "lines" }));
        var lines = root.GetProperty("lines").EnumerateArray().ToArray();
        Assert.That(lines, Has.Length.EqualTo(pairs.Length));

        using var model = Model.Load(Llama);
        int n = 0, forking = 0;
        double threshold = root.GetProperty("threshold").GetDouble();
        for (int i = 0; i < lines.Length; i++)
        {
            Assert.That(lines[i].EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "tokens" }));
            var tokens = lines[i].GetProperty("tokens").EnumerateArray().ToArray();
            int[] prompt = [.. model.Tokenizer.Encode(pairs[i].Prompt)];
            int[] response = [.. model.Tokenizer.Encode(pairs[i].Response, addSpecialTokens: false)];
            Assert.That(tokens.Select(t => t.GetProperty("id").GetInt32()), Is.EqualTo(response), "only the response's tokens");

            using var session = model.CreateSession();
            var scored = session.Score([.. prompt, .. response]);
            for (int t = 0; t < tokens.Length; t++)
            {
                Assert.That(tokens[t].EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "id", "text", "entropy", "forking" }));
                double entropy = tokens[t].GetProperty("entropy").GetDouble();
                // The JSON holds the core's fp32 entropy as the shortest text of that float, so it reads back as it exactly.
                Assert.That((float)entropy, Is.EqualTo((float)scored[prompt.Length + t].Entropy!.Value));
                bool isForking = tokens[t].GetProperty("forking").GetBoolean();
                if (isForking)
                {
                    Assert.That(entropy, Is.GreaterThanOrEqualTo(threshold));
                }
                else
                {
                    Assert.That(entropy, Is.LessThanOrEqualTo(threshold));
                }
                forking += isForking ? 1 : 0;
            }
            n += tokens.Length;
        }
        Assert.That(root.GetProperty("valid_tokens").GetInt32(), Is.EqualTo(n));
        int expected = Math.Max(1, (int)Math.Ceiling((decimal)rho * n));
        Assert.That(forking, Is.EqualTo(expected));
        Assert.That(root.GetProperty("forking_tokens").GetInt32(), Is.EqualTo(expected));

        var percentiles = root.GetProperty("percentiles").EnumerateObject().ToArray();
        Assert.That(percentiles.Select(p => p.Name), Does.Contain("p0").And.Contain("p50").And.Contain("p80").And.Contain("p100"));
        double[] values = [.. percentiles.Select(p => p.Value.GetDouble())];
        Assert.That(values, Is.Ordered, "percentiles ascend");
    }

    [Test]
    public void Text_prints_the_percentiles_and_brackets_forking_tokens_and_out_writes_the_trainer_jsonl()
    {
        var (path, pairs) = RandomFile(3);
        string jsonl = Path.Combine(_folder, "mask.jsonl");
        var result = CliRunner.Run("entropy", "--model", Llama, "--file", path, "--rho", "0.3", "--out", jsonl);

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.That(result.Out, Does.Contain("entropy percentiles (nats)").And.Contain("p80=").And.Contain("[["));
        string[] lines = File.ReadAllLines(jsonl);
        Assert.That(lines, Has.Length.EqualTo(pairs.Length));
        int selected = lines.Sum(l =>
        {
            using var doc = JsonDocument.Parse(l);
            return doc.RootElement.GetProperty("mask").EnumerateArray().Count(v => v.GetInt32() == 1);
        });
        int valid = lines.Sum(l =>
        {
            using var doc = JsonDocument.Parse(l);
            return doc.RootElement.GetProperty("response_mask").EnumerateArray().Count(v => v.GetInt32() == 1);
        });
        Assert.That(selected, Is.EqualTo(Math.Max(1, (int)Math.Ceiling(0.3m * valid))));
    }

    [Test]
    public void Without_file_is_a_usage_error()
    {
        var result = CliRunner.Run("entropy", "--model", Llama);
        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitUsage), result.ToString());
    }

    [TestCase("0", "--rho")]
    [TestCase("1.5", "--rho")]
    [TestCase("nan", "--rho")]
    public void Rho_outside_0_1_exits_1(string rho, string message)
    {
        var (path, _) = RandomFile(1);
        var result = CliRunner.Run("entropy", "--model", Llama, "--file", path, "--rho", rho);
        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitError), result.ToString());
        Assert.That(result.ErrorLines[0], Does.Contain(message));
    }

    [TestCase("{\"prompt\":\"a\"}", "\"response\" is missing")]
    [TestCase("{\"prompt\":\"a\",\"response\":3}", "must be a string")]
    [TestCase("not json", "not valid JSON")]
    [TestCase("[1,2]", "JSON object")]
    [TestCase("{\"prompt\":\"a\",\"response\":\"\"}", "response has no tokens")]
    public void A_bad_line_exits_1_naming_the_file_and_line(string line, string message)
    {
        string path = Path.Combine(_folder, "bad.jsonl");
        File.WriteAllLines(path, ["{\"prompt\":\"ok\",\"response\":\"fine\"}", line]);
        var result = CliRunner.Run("entropy", "--model", Llama, "--file", path);

        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitError), result.ToString());
        Assert.That(result.ErrorLines[0], Does.Contain(message).And.Contain("bad.jsonl:2"));
    }

    [Test]
    public void A_missing_file_exits_1()
    {
        var result = CliRunner.Run("entropy", "--model", Llama, "--file", Path.Combine(_folder, "none.jsonl"));
        Assert.That(result.ExitCode, Is.EqualTo(CliProgram.ExitError), result.ToString());
        Assert.That(result.ErrorLines[0], Does.Contain("none.jsonl"));
    }
}
