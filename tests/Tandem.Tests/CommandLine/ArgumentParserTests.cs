using NUnit.Framework;
using Tandem.Cli.Arguments;

namespace Tandem.Tests.CommandLine;

/// <summary>The hand-written parser: every malformed command line is a <see cref="UsageException"/>.</summary>
[TestFixture]
public sealed class ArgumentParserTests
{
    private static readonly CommandSpec Spec = new("demo", "A command for the parser tests.",
    [
        new OptionSpec("--model", "DIR", "model", Required: true),
        new OptionSpec("--count", "N", "a count"),
        new OptionSpec("--scale", "X", "a scale"),
        new OptionSpec("--seed", "S", "a seed"),
        new OptionSpec("--json", null, "a flag"),
    ]);

    private static ParsedArguments Parse(params string[] args) => ArgumentParser.Parse(Spec, args);

    [Test]
    public void Values_flags_and_the_equals_form_parse()
    {
        var parsed = Parse("--model", "/m", "--count=3", "--json", "--scale", "-2.5");
        Assert.Multiple(() =>
        {
            Assert.That(parsed.Required("--model"), Is.EqualTo("/m"));
            Assert.That(parsed.Int32("--count", 0), Is.EqualTo(3));
            Assert.That(parsed.Single("--scale", 0), Is.EqualTo(-2.5f), "a negative number is a value, not an option");
            Assert.That(parsed.Flag("--json"), Is.True);
            Assert.That(parsed.Flag("--verbose"), Is.False);
            Assert.That(parsed.UInt64("--seed", 9), Is.EqualTo(9UL), "absent: the fallback");
        });
    }

    [Test]
    public void A_value_may_start_with_a_dash_or_be_empty()
    {
        Assert.That(Parse("--model", "-weird-folder").Required("--model"), Is.EqualTo("-weird-folder"));
        Assert.That(Parse("--model=").Required("--model"), Is.Empty);
    }

    [Test]
    public void NaN_and_infinity_parse_as_numbers_for_the_command_to_reject()
    {
        Assert.That(Parse("--model", "m", "--scale", "nan").Single("--scale", 0), Is.NaN);
        Assert.That(Parse("--model", "m", "--scale", "-Infinity").Single("--scale", 0), Is.EqualTo(float.NegativeInfinity));
    }

    [TestCase(new[] { "--model", "m", "--bogus" }, "unknown option --bogus")]
    [TestCase(new[] { "--count", "3" }, "missing required option --model")]
    [TestCase(new[] { "--model" }, "--model needs a value")]
    [TestCase(new[] { "--model", "--json" }, "--model needs a value")]
    [TestCase(new[] { "--model", "m", "extra" }, "unexpected argument 'extra'")]
    [TestCase(new[] { "--model", "m", "--model", "n" }, "--model is given twice")]
    [TestCase(new[] { "--model", "m", "--json=yes" }, "--json takes no value")]
    public void Malformed_command_lines_are_usage_errors(string[] args, string message)
    {
        var thrown = Assert.Throws<UsageException>(() => Parse(args));
        Assert.That(thrown!.Message, Does.Contain(message));
        Assert.That(thrown.Command, Is.SameAs(Spec));
    }

    [TestCase("--count", "three")]
    [TestCase("--count", "1.5")]
    [TestCase("--count", "99999999999")]
    [TestCase("--scale", "fast")]
    [TestCase("--seed", "-1")]
    [TestCase("--seed", "18446744073709551616")]
    public void Values_that_do_not_parse_are_usage_errors(string option, string value)
    {
        var parsed = Parse("--model", "m", option, value);
        var thrown = Assert.Throws<UsageException>(() =>
        {
            _ = option switch
            {
                "--count" => parsed.Int32(option, 0),
                "--scale" => (object)parsed.Single(option, 0),
                _ => parsed.UInt64(option, 0),
            };
        });
        Assert.That(thrown!.Message, Does.Contain(option).And.Contain(value));
    }

    [Test]
    public void The_largest_seed_parses()
    {
        Assert.That(Parse("--model", "m", "--seed", "18446744073709551615").UInt64("--seed", 0), Is.EqualTo(ulong.MaxValue));
    }

    [Test]
    public void Help_skips_the_required_option_check_and_the_usage_lists_every_option()
    {
        Assert.That(Parse("--help").Flag("--help"), Is.True);
        Assert.That(Parse("-h").Flag("--help"), Is.True);
        string usage = Spec.Usage();
        Assert.That(usage, Does.StartWith("usage: tandem demo --model DIR [--count N] [--scale X] [--seed S] [--json]"));
        Assert.That(usage, Does.Contain("--verbose"));
    }

    [Test]
    public void A_choice_is_case_insensitive_and_anything_else_is_a_usage_error()
    {
        var choices = new Dictionary<string, int> { ["cpu"] = 0, ["cuda"] = 1 };
        var spec = new CommandSpec("d", "s", [new OptionSpec("--device", "D", "device")]);
        Assert.That(ArgumentParser.Parse(spec, ["--device", "CUDA"]).Choice("--device", -1, choices), Is.EqualTo(1));
        Assert.That(ArgumentParser.Parse(spec, []).Choice("--device", -1, choices), Is.EqualTo(-1));
        var thrown = Assert.Throws<UsageException>(() => ArgumentParser.Parse(spec, ["--device", "gpu"]).Choice("--device", -1, choices));
        Assert.That(thrown!.Message, Does.Contain("cpu or cuda"));
    }
}
