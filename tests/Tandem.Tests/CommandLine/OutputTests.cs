using System.Text.Json;
using NUnit.Framework;
using Tandem.Cli.Output;

namespace Tandem.Tests.CommandLine;

/// <summary>The command's output helpers: the progress line, the uncertainty marks, the JSON numbers.</summary>
[TestFixture]
public sealed class OutputTests
{
    private const long MiB = 1024 * 1024;

    [Test]
    public void The_progress_line_is_drawn_for_a_large_model_on_a_terminal_and_erased_after()
    {
        using var stderr = new StringWriter();
        var display = new LoadProgressDisplay(stderr, stderrIsTerminal: true);

        display.Report(new LoadProgress(0, 200 * MiB));
        display.Report(new LoadProgress(MiB / 2, 200 * MiB)); // same percent: not redrawn
        display.Report(new LoadProgress(100 * MiB, 200 * MiB));
        display.Clear();

        Assert.That(stderr.ToString(), Is.EqualTo(
            "\rloading model   0% (0 / 200 MiB)\rloading model  50% (100 / 200 MiB)\r\u001b[2K"));
    }

    [Test]
    public void No_progress_line_for_a_small_model_or_off_a_terminal()
    {
        using var small = new StringWriter();
        var forSmall = new LoadProgressDisplay(small, stderrIsTerminal: true);
        forSmall.Report(new LoadProgress(MiB, LoadProgressDisplay.MinimumBytes - 1));
        forSmall.Clear();

        using var piped = new StringWriter();
        var forPipe = new LoadProgressDisplay(piped, stderrIsTerminal: false);
        forPipe.Report(new LoadProgress(MiB, 500 * MiB));
        forPipe.Clear();

        Assert.That(small.ToString(), Is.Empty);
        Assert.That(piped.ToString(), Is.Empty);
    }

    [TestCase(0.10, 0.05, "\u001b[32m", TestName = "low AU, low EU: green")]
    [TestCase(0.65, 0.05, "\u001b[33m", TestName = "high AU, low EU: yellow")]
    [TestCase(0.10, 0.50, "\u001b[31m", TestName = "low AU, high EU: red")]
    [TestCase(0.65, 0.50, "\u001b[31m", TestName = "high AU, high EU: red")]
    public void Tokens_are_coloured_by_their_uncertainty_quadrant(double au, double eu, string color)
    {
        Assert.That(UncertaintyStyle.Mark("word", au, eu, color: true), Is.EqualTo(color + "word\u001b[0m"));
    }

    [Test]
    public void Without_colour_each_token_is_followed_by_its_EU_and_AU()
    {
        Assert.That(UncertaintyStyle.Mark("word", au: 0.456, eu: 0.0123, color: false), Is.EqualTo("word[0.01/0.46]"));
        Assert.That(UncertaintyStyle.Mark("", au: 0.5, eu: 0.5, color: false), Is.EqualTo("[0.50/0.50]"), "a partial character still gets its mark");
        Assert.That(UncertaintyStyle.Mark("", au: 0.5, eu: 0.5, color: true), Is.Empty, "no empty colour spans");
    }

    [Test]
    public void Statistics_are_written_as_floats_and_undefined_ones_as_null()
    {
        string json = Json.Write(w =>
        {
            w.WriteStartObject();
            w.WriteStatistic("a", 0.1f); // widened float: written as the float it was, not 0.10000000149011612
            w.WriteStatistic("b", null);
            w.WriteStatistic("c", double.NaN);
            w.WriteStatistic("d", -2.5);
            w.WriteEndObject();
        });

        Assert.That(json, Is.EqualTo("""{"a":0.1,"b":null,"c":null,"d":-2.5}"""));
    }

    [Test]
    public void Text_stays_readable_and_valid_JSON()
    {
        string text = "café \"quoted\"\n日本 \uFFFD";
        string json = Json.Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("text", text);
            w.WriteEndObject();
        });

        Assert.That(json, Does.Contain("café").And.Contain("日本"), "non-ASCII is not escaped");
        using var parsed = JsonDocument.Parse(json);
        Assert.That(parsed.RootElement.GetProperty("text").GetString(), Is.EqualTo(text));
    }
}
