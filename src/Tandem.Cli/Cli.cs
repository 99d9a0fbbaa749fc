using System.Reflection;
using System.Text;
using Tandem.Cli.Arguments;
using Tandem.Cli.Commands;

namespace Tandem.Cli;

/// <summary>
/// The <c>tandem</c> command. <see cref="Run(string[], TextWriter, TextWriter)"/> is the whole program behind an
/// entry point that takes its writers, so the tests run it in-process.
/// </summary>
/// <remarks>
/// Exit codes: 0 success; 2 usage error (unknown option, missing required option or value, a value that does not
/// parse), printed as one line and the command's usage; 1 any other error, including values that parse but are
/// invalid (a negative temperature), as one line on stderr (the stack trace too with --verbose); 130 interrupted by
/// Ctrl+C.
/// </remarks>
internal static class Cli
{
    public const int ExitOk = 0;
    public const int ExitError = 1;
    public const int ExitUsage = 2;
    public const int ExitInterrupted = 130;

    private static readonly CliCommand[] Commands =
        [InfoCommand.Command, GenerateCommand.Command, ScoreCommand.Command, EntropyCommand.Command, EvalCommand.Command];

    /// <summary>Runs the command line as the console program would, without a terminal (no colours, no progress line).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr) => Run(args, stdout, stderr, CliEnvironment.Plain);

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, CliEnvironment environment)
    {
        bool verbose = args.Contains(CommandSpec.Verbose.Name);
        try
        {
            if (args.Length == 0)
            {
                throw new UsageException("no command given");
            }
            switch (args[0])
            {
                case "--help" or "-h" or "help":
                    stdout.Write(GeneralUsage());
                    return ExitOk;
                case "--version":
                    if (args.Skip(1).Any(a => a != CommandSpec.Verbose.Name))
                    {
                        throw new UsageException($"--version takes no arguments, got '{args[1]}'");
                    }
                    WriteVersion(stdout);
                    return ExitOk;
            }

            var command = Commands.FirstOrDefault(c => c.Spec.Name == args[0])
                ?? throw new UsageException(args[0].StartsWith('-') ? $"unknown option {args[0]}" : $"unknown command '{args[0]}'");
            var parsed = ArgumentParser.Parse(command.Spec, args[1..]);
            if (parsed.Flag(CommandSpec.Help.Name))
            {
                stdout.Write(command.Spec.Usage());
                return ExitOk;
            }
            return command.Execute(parsed, new CommandContext(stdout, stderr, environment));
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"tandem: error: {e.Message}");
            stderr.WriteLine();
            stderr.Write(e.Command?.Usage() ?? GeneralUsage());
            return ExitUsage;
        }
        catch (OperationCanceledException) when (environment.Cancellation.IsCancellationRequested)
        {
            stderr.WriteLine();
            stderr.WriteLine("tandem: interrupted");
            return ExitInterrupted;
        }
        catch (Exception e)
        {
            stdout.Flush();
            stderr.WriteLine($"tandem: error: {OneLine(e)}");
            if (verbose)
            {
                stderr.WriteLine(e);
            }
            return ExitError;
        }
    }

    /// <summary>The exception's message as one line, without .NET's " (Parameter 'x')" suffix.</summary>
    internal static string OneLine(Exception e)
    {
        string message = e.Message;
        if (e is ArgumentException { ParamName: { } param })
        {
            message = message.Replace($" (Parameter '{param}')", string.Empty, StringComparison.Ordinal);
        }
        return string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    internal static string Version
    {
        get
        {
            string version = typeof(Cli).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
            int metadata = version.IndexOf('+');
            return metadata < 0 ? version : version[..metadata];
        }
    }

    private static void WriteVersion(TextWriter stdout)
    {
        stdout.WriteLine($"tandem {Version}");
        var build = TandemRuntime.BuildInfo;
        stdout.WriteLine($"libtandem {build.Version} (ABI {build.AbiVersion}, {build.Compiler}) at {build.LibraryPath}");
        stdout.WriteLine($"backends: {InfoCommand.Backends(build)}");
    }

    private static string GeneralUsage()
    {
        var text = new StringBuilder();
        text.AppendLine("usage: tandem <command> [options]");
        text.AppendLine();
        text.AppendLine("commands:");
        int width = Commands.Max(c => c.Spec.Name.Length) + 2;
        foreach (var command in Commands)
        {
            text.Append("  ").Append(command.Spec.Name.PadRight(width)).AppendLine(command.Spec.Summary);
        }
        text.AppendLine();
        text.AppendLine("  tandem <command> --help   the options of a command, with their defaults");
        text.AppendLine("  tandem --version          versions of the command and of the native library");
        text.AppendLine();
        text.AppendLine("exit codes: 0 ok, 1 error, 2 usage error, 130 interrupted");
        return text.ToString();
    }
}
