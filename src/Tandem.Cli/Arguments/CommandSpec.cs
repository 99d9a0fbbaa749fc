using System.Text;

namespace Tandem.Cli.Arguments;

/// <summary>One option of a command: a flag when <see cref="ValueName"/> is null, else it takes one value.</summary>
/// <param name="Name">The long name with its dashes, e.g. "--model".</param>
/// <param name="ValueName">The placeholder shown in the usage, e.g. "DIR"; null for a flag.</param>
/// <param name="Description">One line for the usage, defaults included.</param>
/// <param name="Required">Whether the command fails with a usage error without it.</param>
internal sealed record OptionSpec(string Name, string? ValueName, string Description, bool Required = false)
{
    public bool IsFlag => ValueName is null;
}

/// <summary>A command's name, summary and options; renders its usage text.</summary>
internal sealed record CommandSpec(string Name, string Summary, IReadOnlyList<OptionSpec> Options)
{
    /// <summary>Options every command accepts.</summary>
    public static readonly OptionSpec Verbose = new("--verbose", null, "on error, print the stack trace too");

    public static readonly OptionSpec Help = new("--help", null, "print this help and exit");

    public OptionSpec? Find(string name) =>
        Options.FirstOrDefault(o => o.Name == name) ?? (name == Verbose.Name ? Verbose : name == Help.Name || name == "-h" ? Help : null);

    public string Usage()
    {
        var text = new StringBuilder();
        text.Append("usage: tandem ").Append(Name);
        foreach (var option in Options)
        {
            string shown = option.IsFlag ? option.Name : $"{option.Name} {option.ValueName}";
            text.Append(' ').Append(option.Required ? shown : $"[{shown}]");
        }
        text.AppendLine().AppendLine().Append("  ").AppendLine(Summary).AppendLine();
        int width = Options.Append(Verbose).Max(o => Label(o).Length) + 2;
        foreach (var option in Options.Append(Verbose))
        {
            text.Append("  ").Append(Label(option).PadRight(width)).AppendLine(option.Description);
        }
        return text.ToString();
    }

    private static string Label(OptionSpec option) => option.IsFlag ? option.Name : $"{option.Name} {option.ValueName}";
}
