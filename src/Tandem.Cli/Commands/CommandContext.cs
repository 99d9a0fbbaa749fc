using Tandem.Cli.Arguments;
using Tandem.Cli.Output;

namespace Tandem.Cli.Commands;

/// <summary>The writers and environment a command runs with.</summary>
internal sealed record CommandContext(TextWriter Out, TextWriter Error, CliEnvironment Environment)
{
    public CancellationToken Cancellation => Environment.Cancellation;
}

/// <summary>A subcommand: its options and what it does once they are bound.</summary>
internal sealed record CliCommand(CommandSpec Spec, Func<ParsedArguments, CommandContext, int> Execute);

/// <summary>The options shared by the commands that load a model, and the load itself.</summary>
internal static class ModelArguments
{
    public static readonly OptionSpec Model = new("--model", "DIR", "Hugging Face model folder (config.json, safetensors, tokenizer.json)", Required: true);

    public static readonly OptionSpec Device = new("--device", "cpu|cuda", "where the model runs (default: cpu)");

    public static readonly OptionSpec Threads = new("--threads", "N", "CPU threads (default: 0 = all cores)");

    public static readonly OptionSpec Json = new("--json", null, "print one JSON object instead of text");

    private static readonly Dictionary<string, Device> Devices = new()
    {
        ["cpu"] = Tandem.Device.Cpu,
        ["cuda"] = Tandem.Device.Cuda,
    };

    /// <summary>The model folder and load options, as written on the command line (usage errors here).</summary>
    public static (string Path, ModelOptions Options) Bind(ParsedArguments args) => (args.Required(Model.Name), BindOptions(args));

    /// <summary>--device and --threads, as written on the command line (usage errors here).</summary>
    public static ModelOptions BindOptions(ParsedArguments args)
    {
        var device = args.Choice(Device.Name, Tandem.Device.Cpu, Devices);
        int threads = args.Int32(Threads.Name, 0);
        return new ModelOptions(device, Threads: threads);
    }

    /// <summary>Values that parse but are invalid (exit code 1).</summary>
    public static void Validate(ModelOptions options)
    {
        if (options.Threads < 0)
        {
            throw new ArgumentException($"--threads must be 0 (all cores) or more, not {options.Threads}");
        }
    }

    /// <summary>Loads the model, with a progress line on a terminal for large models.</summary>
    public static Model Load(string path, ModelOptions options, CommandContext context)
    {
        var progress = new LoadProgressDisplay(context.Error, context.Environment.StderrIsTerminal);
        try
        {
            return Tandem.Model.Load(path, options, progress, context.Cancellation);
        }
        finally
        {
            progress.Clear();
        }
    }
}
