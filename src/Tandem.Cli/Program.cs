using Tandem.Cli;

// Ctrl+C cancels the running command (generation stops between tokens, a prefill between layers); a second
// Ctrl+C terminates the process the usual way.
using var interrupt = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = !interrupt.IsCancellationRequested;
    interrupt.Cancel();
};
return Cli.Run(args, Console.Out, Console.Error, CliEnvironment.FromConsole(interrupt.Token));
