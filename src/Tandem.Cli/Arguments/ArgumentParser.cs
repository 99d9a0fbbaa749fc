using System.Globalization;

namespace Tandem.Cli.Arguments;

/// <summary>
/// A command line that is not well-formed: unknown option, missing required option or value, a value that does
/// not parse. Exit code 2, with the command's usage.
/// </summary>
internal sealed class UsageException(string message, CommandSpec? command = null) : Exception(message)
{
    public CommandSpec? Command { get; } = command;
}

/// <summary>The options of one command line, checked against its <see cref="CommandSpec"/>.</summary>
internal sealed class ParsedArguments
{
    private readonly Dictionary<string, string> _values;
    private readonly HashSet<string> _flags;

    public ParsedArguments(CommandSpec command, Dictionary<string, string> values, HashSet<string> flags)
    {
        Command = command;
        _values = values;
        _flags = flags;
    }

    public CommandSpec Command { get; }

    public bool Flag(string name) => _flags.Contains(name);

    /// <summary>The value of a required option (the parser has checked that it is there).</summary>
    public string Required(string name) => _values[name];

    public string? Optional(string name) => _values.GetValueOrDefault(name);

    public int Int32(string name, int fallback) =>
        Parse(name, fallback, static s => int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v) ? v : null, "an integer");

    public ulong UInt64(string name, ulong fallback) =>
        Parse(name, fallback, static s => ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out ulong v) ? v : null,
            "a non-negative integer");

    /// <summary>
    /// A float; "nan" and "infinity" parse (they are numbers, rejected later as invalid values, exit code 1).
    /// </summary>
    public float Single(string name, float fallback) =>
        Parse(name, fallback, static s => float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out float v) ? v : null,
            "a number");

    /// <summary>One of <paramref name="choices"/> (case-insensitive), mapped to its value.</summary>
    public T Choice<T>(string name, T fallback, IReadOnlyDictionary<string, T> choices)
    {
        if (Optional(name) is not { } text)
        {
            return fallback;
        }
        return choices.TryGetValue(text.ToLowerInvariant(), out T? value)
            ? value
            : throw new UsageException($"{name} must be {string.Join(" or ", choices.Keys)}, not '{text}'", Command);
    }

    private T Parse<T>(string name, T fallback, Func<string, T?> parse, string what)
        where T : struct
    {
        if (Optional(name) is not { } text)
        {
            return fallback;
        }
        return parse(text.Trim()) ?? throw new UsageException($"{name} needs {what}, not '{text}'", Command);
    }
}

/// <summary>
/// The hand-written parser of <c>tandem</c>: long options only, "--name value" or "--name=value", flags without
/// values, no positional arguments. Hand-written so that each kind of mistake maps to an exact exit code.
/// </summary>
internal static class ArgumentParser
{
    public static ParsedArguments Parse(CommandSpec command, IReadOnlyList<string> args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var flags = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (!arg.StartsWith('-') || arg == "-" || arg == "--")
            {
                throw new UsageException($"unexpected argument '{arg}'", command);
            }
            int equals = arg.IndexOf('=');
            string name = equals < 0 ? arg : arg[..equals];
            var option = command.Find(name) ?? throw new UsageException($"unknown option {name}", command);
            if (option.IsFlag)
            {
                if (equals >= 0)
                {
                    throw new UsageException($"{name} takes no value", command);
                }
                flags.Add(option.Name);
                continue;
            }

            string value;
            if (equals >= 0)
            {
                value = arg[(equals + 1)..];
            }
            else if (i + 1 < args.Count && command.Find(args[i + 1]) is null)
            {
                // The next argument is the value even when it starts with '-' (a negative number, a prompt), unless
                // it is one of this command's options, which means the value was forgotten.
                value = args[++i];
            }
            else
            {
                throw new UsageException($"{name} needs a value ({option.ValueName})", command);
            }
            if (!values.TryAdd(option.Name, value))
            {
                throw new UsageException($"{name} is given twice", command);
            }
        }

        if (!flags.Contains(CommandSpec.Help.Name))
        {
            foreach (var option in command.Options.Where(o => o.Required && !values.ContainsKey(o.Name)))
            {
                throw new UsageException($"missing required option {option.Name} {option.ValueName}", command);
            }
        }
        return new ParsedArguments(command, values, flags);
    }
}
