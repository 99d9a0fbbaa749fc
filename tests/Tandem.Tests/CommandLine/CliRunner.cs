using Tandem.Cli;

namespace Tandem.Tests.CommandLine;

/// <summary>Runs the <c>tandem</c> command in-process through <c>Cli.Run</c> and captures what it prints.</summary>
internal static class CliRunner
{
    public static CliResult Run(params string[] args) => Run(CliEnvironment.Plain, args);

    public static CliResult Run(CliEnvironment environment, params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = Tandem.Cli.Cli.Run(args, stdout, stderr, environment);
        return new CliResult(code, stdout.ToString(), stderr.ToString());
    }
}

internal sealed record CliResult(int ExitCode, string Out, string Error)
{
    public string[] ErrorLines => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Out}\n--- stderr ---\n{Error}";
}
