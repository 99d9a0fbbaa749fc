using Tandem.Cli.Arguments;

namespace Tandem.Cli.Commands;

/// <summary>
/// The options of the commands that run a model pair (<c>generate</c> in pair mode, <c>eval</c>), and where the
/// shipped demo pair is when --small and --large are not given.
/// </summary>
internal static class PairArguments
{
    /// <summary>The demo pair's folder, relative to the repository (or to an install that ships it).</summary>
    public static readonly string DemoFolder = Path.Combine("models", "demo");

    public static readonly OptionSpec Small = new("--small", "DIR", "the small model's folder (default: the shipped demo pair, models/demo/small)");

    public static readonly OptionSpec Large = new("--large", "DIR",
        "the large model's folder; it must share the small model's tokenizer (default: models/demo/large)");

    /// <summary>The small and large folders as given, or the demo pair's (an error naming where it looked if absent).</summary>
    public static (string Small, string Large) Folders(ParsedArguments args)
    {
        string? small = args.Optional(Small.Name);
        string? large = args.Optional(Large.Name);
        if (small is not null && large is not null)
        {
            return (small, large);
        }
        string demo = FindDemoFolder() ?? throw new ArgumentException(
            $"the demo pair ({Path.Combine(DemoFolder, "small")} and large) was found neither above {Environment.CurrentDirectory} " +
            $"nor above {AppContext.BaseDirectory}; pass --small DIR and --large DIR");
        return (small ?? Path.Combine(demo, "small"), large ?? Path.Combine(demo, "large"));
    }

    /// <summary>
    /// models/demo in the current folder or one above it, else beside or above the executable (a build output sits
    /// inside the repository, so that finds the repository's copy from anywhere).
    /// </summary>
    public static string? FindDemoFolder()
    {
        foreach (string start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var folder = new DirectoryInfo(start); folder is not null; folder = folder.Parent)
            {
                string candidate = Path.Combine(folder.FullName, DemoFolder);
                if (File.Exists(Path.Combine(candidate, "small", "config.json")) && File.Exists(Path.Combine(candidate, "large", "config.json")))
                {
                    return candidate;
                }
            }
        }
        return null;
    }

    /// <summary>Loads both models (the small one first: it is the one a bad folder name most often points at).</summary>
    public static (Model Small, Model Large) Load(string small, string large, ModelOptions options, CommandContext context)
    {
        var smallModel = ModelArguments.Load(small, options, context);
        try
        {
            return (smallModel, ModelArguments.Load(large, options, context));
        }
        catch
        {
            smallModel.Dispose();
            throw;
        }
    }
}
