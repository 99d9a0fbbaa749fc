namespace Tandem.Cli;

/// <summary>
/// What the command knows about where it runs. <see cref="Cli.Run(string[], TextWriter, TextWriter)"/> (the tests)
/// uses <see cref="Plain"/>: no terminal, so no colours, no progress line, annotations instead.
/// </summary>
/// <param name="StdoutIsTerminal">Stdout is a terminal (colours may be used).</param>
/// <param name="StderrIsTerminal">Stderr is a terminal (a progress line may be drawn).</param>
/// <param name="NoColor">The user asked for no colour (NO_COLOR set and not empty, or TERM=dumb).</param>
/// <param name="Cancellation">Cancelled by Ctrl+C.</param>
internal sealed record CliEnvironment(bool StdoutIsTerminal, bool StderrIsTerminal, bool NoColor, CancellationToken Cancellation)
{
    public static readonly CliEnvironment Plain = new(false, false, true, CancellationToken.None);

    /// <summary>Whether stdout gets ANSI colours.</summary>
    public bool UseColor => StdoutIsTerminal && !NoColor;

    /// <summary>The real console; see https://no-color.org for NO_COLOR.</summary>
    public static CliEnvironment FromConsole(CancellationToken cancellation) => new(
        StdoutIsTerminal: !Console.IsOutputRedirected,
        StderrIsTerminal: !Console.IsErrorRedirected,
        NoColor: !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"))
            || Environment.GetEnvironmentVariable("TERM") == "dumb",
        Cancellation: cancellation);
}
