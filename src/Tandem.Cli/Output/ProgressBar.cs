using System.Diagnostics;
using System.Globalization;

namespace Tandem.Cli.Output;

/// <summary>
/// A one-line progress bar on stderr, "[#######.........]  420/1000  rstitch 0.10  ETA 1m05s", redrawn in place.
/// Drawn only on a terminal, so pipes, files and the tests see nothing of it.
/// </summary>
internal sealed class ProgressBar(TextWriter stderr, bool stderrIsTerminal, int total)
{
    private const int Width = 30;

    // Redrawing more often than this only costs time: a person cannot read it, and a slow terminal lags behind.
    private static readonly TimeSpan MinimumInterval = TimeSpan.FromMilliseconds(100);

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private TimeSpan _lastDrawn = TimeSpan.MinValue;
    private bool _drawn;

    public void Report(int done, string label)
    {
        if (!stderrIsTerminal || total <= 0)
        {
            return;
        }
        var now = _clock.Elapsed;
        if (done < total && now - _lastDrawn < MinimumInterval)
        {
            return;
        }
        _lastDrawn = now;
        double fraction = Math.Clamp((double)done / total, 0, 1);
        int filled = (int)Math.Round(fraction * Width);
        string eta = done > 0 && done < total ? $"  ETA {Duration(now.TotalSeconds / done * (total - done))}" : "";
        stderr.Write(string.Create(CultureInfo.InvariantCulture,
            $"\r\u001b[2K[{new string('#', filled)}{new string('.', Width - filled)}] {done,5}/{total}  {label}{eta}"));
        stderr.Flush();
        _drawn = true;
    }

    /// <summary>Erases the bar, if one was drawn, so the table starts on a clean line.</summary>
    public void Clear()
    {
        if (_drawn)
        {
            stderr.Write("\r\u001b[2K");
            stderr.Flush();
            _drawn = false;
        }
    }

    internal static string Duration(double seconds) => seconds < 60
        ? string.Create(CultureInfo.InvariantCulture, $"{seconds:0}s")
        : string.Create(CultureInfo.InvariantCulture, $"{(int)(seconds / 60)}m{(int)(seconds % 60):00}s");
}
