namespace Tandem.Cli.Output;

/// <summary>
/// A one-line "loading model 42% (120 / 285 MiB)" on stderr while a large model loads. Drawn only on a terminal
/// and only for models above <see cref="MinimumBytes"/>, where a load takes long enough to need it.
/// </summary>
internal sealed class LoadProgressDisplay(TextWriter stderr, bool stderrIsTerminal) : IProgress<LoadProgress>
{
    public const long MinimumBytes = 50L * 1024 * 1024;

    private int _lastPercent = -1;

    public void Report(LoadProgress value)
    {
        if (!stderrIsTerminal || value.BytesTotal < MinimumBytes || value.Fraction is not { } fraction)
        {
            return;
        }
        int percent = (int)(fraction * 100);
        if (percent == _lastPercent)
        {
            return;
        }
        _lastPercent = percent;
        stderr.Write($"\rloading model {percent,3}% ({value.BytesDone >> 20} / {value.BytesTotal >> 20} MiB)");
        stderr.Flush();
    }

    /// <summary>Erases the line, if one was drawn, so the command's output starts on a clean line.</summary>
    public void Clear()
    {
        if (_lastPercent >= 0)
        {
            stderr.Write("\r\u001b[2K");
            stderr.Flush();
            _lastPercent = -1;
        }
    }
}
