using System.Globalization;
using ScottPlot;

namespace Tandem.Cli.Eval;

/// <summary>
/// The PNG plots of <c>tandem eval</c> (ScottPlot): accuracy against latency, EAD's large-model share against its
/// score, the entropy histogram with the top-20% (forking token) cut, and the LogTokU AU/EU quadrant scatter.
/// </summary>
internal static class EvalPlots
{
    public const string AccuracyVsLatency = "accuracy-vs-latency.png";
    public const string EadLargeShare = "ead-large-share.png";
    public const string EntropyHistogram = "entropy-histogram.png";
    public const string QuadrantScatter = "au-eu-quadrants.png";

    private const int Width = 900;
    private const int Height = 600;

    // A scatter of every token of 500 answers draws some 50k markers; beyond this many an evenly spaced subset
    // shows the same cloud and keeps the PNG quick to render.
    private const int MaxScatterPoints = 20_000;

    private static readonly Color[] Palette =
    [
        Colors.Black, Colors.Gray, Colors.Blue, Colors.DarkCyan, Colors.OrangeRed, Colors.Green,
    ];

    /// <summary>Writes the four plots into <paramref name="folder"/> (created if needed) and returns their paths.</summary>
    /// <param name="results">Every method's row.</param>
    /// <param name="uncertainty">The committed tokens of the answers the uncertainty plots are drawn from.</param>
    /// <param name="uncertaintySource">Which answers those are, for the titles (e.g. "small model, greedy").</param>
    /// <param name="forkingCut">Entropy (nats) at and above which a token is among the top 20%; null without tokens.</param>
    public static IReadOnlyList<string> Write(string folder, IReadOnlyList<MethodResult> results,
        IReadOnlyList<ProblemOutcome> uncertainty, string uncertaintySource, double? forkingCut, double highAu, double highEu)
    {
        Directory.CreateDirectory(folder);
        var paths = new List<string>();
        string Save(Plot plot, string name)
        {
            string path = Path.Combine(folder, name);
            plot.SavePng(path, Width, Height);
            paths.Add(path);
            return path;
        }
        Save(AccuracyLatency(results), AccuracyVsLatency);
        Save(ShareScore(results), EadLargeShare);
        Save(Histogram(uncertainty, uncertaintySource, forkingCut), EntropyHistogram);
        Save(Quadrants(uncertainty, uncertaintySource, highAu, highEu), QuadrantScatter);
        return paths;
    }

    private static Plot AccuracyLatency(IReadOnlyList<MethodResult> results)
    {
        var plot = new Plot();
        int colour = 0;
        foreach (var family in results.GroupBy(r => r.Method.Name))
        {
            var rows = family.OrderBy(r => r.SecondsPerProblem).ToArray();
            double[] xs = [.. rows.Select(r => r.SecondsPerProblem * 1000)];
            double[] ys = [.. rows.Select(r => r.Accuracy * 100)];
            var series = rows.Length > 1 ? plot.Add.Scatter(xs, ys) : plot.Add.ScatterPoints(xs, ys);
            series.LegendText = rows.Length > 1 ? $"{family.Key} (threshold sweep)" : family.Key;
            series.Color = Palette[colour++ % Palette.Length];
            series.MarkerSize = 8;
        }
        plot.Title("Accuracy against latency");
        plot.XLabel("mean latency of one answer (ms)");
        plot.YLabel("accuracy (%)");
        plot.ShowLegend(Alignment.LowerRight);
        return plot;
    }

    private static Plot ShareScore(IReadOnlyList<MethodResult> results)
    {
        var plot = new Plot();
        var ead = results.Where(r => r.Method.Name == "ead").OrderBy(r => r.LargeShare).ToArray();
        double[] shares = [.. ead.Select(r => r.LargeShare * 100)];
        double[] scores = [.. ead.Select(r => r.Accuracy * 100)];
        var series = plot.Add.Scatter(shares, scores);
        series.LegendText = ead.Any(r => r.Method.RegeneratesOnSwitch)
            ? "EAD, regenerate on switch (label: tau, bits)"
            : "EAD (label: tau, bits)";
        series.Color = Colors.Green;
        series.MarkerSize = 8;
        foreach (var row in ead)
        {
            var label = plot.Add.Text(string.Create(CultureInfo.InvariantCulture, $"{row.Method.Threshold:0.###}"),
                row.LargeShare * 100, row.Accuracy * 100);
            label.LabelFontSize = 11;
            label.LabelOffsetX = 6;
            label.LabelOffsetY = -6;
        }
        foreach (var (name, colour) in new[] { ("large", Colors.Black), ("small", Colors.Gray) })
        {
            if (results.FirstOrDefault(r => r.Method.Name == name) is { } reference)
            {
                var line = plot.Add.HorizontalLine(reference.Accuracy * 100);
                line.Text = $"{name} only";
                line.Color = colour;
                line.LinePattern = LinePattern.Dashed;
            }
        }
        plot.Title("EAD: large-model share against score");
        plot.XLabel("tokens written by the large model (%)");
        plot.YLabel("accuracy (%)");
        plot.Axes.SetLimitsX(-5, 105);
        plot.ShowLegend(Alignment.LowerRight);
        return plot;
    }

    private static Plot Histogram(IReadOnlyList<ProblemOutcome> outcomes, string source, double? cut)
    {
        var plot = new Plot();
        double[] entropies = [.. outcomes.SelectMany(o => o.Tokens).Select(t => t.Entropy).Where(double.IsFinite)];
        if (entropies.Length > 0)
        {
            double max = Math.Max(entropies.Max(), 1e-3);
            var histogram = ScottPlot.Statistics.Histogram.WithBinCount(60, 0, max * 1.0001);
            histogram.AddRange(entropies);
            plot.Add.Histogram(histogram);
        }
        if (cut is { } c)
        {
            var line = plot.Add.VerticalLine(c);
            line.Text = string.Create(CultureInfo.InvariantCulture, $"top 20% cut: {c:0.####} nats");
            line.Color = Colors.Red;
            line.LinePattern = LinePattern.Dashed;
            line.LegendText = "top-20% (forking token) cut";
        }
        plot.Title($"Token entropy ({source}, {entropies.Length} tokens)");
        plot.XLabel("entropy (nats)");
        plot.YLabel("tokens");
        plot.ShowLegend(Alignment.UpperRight);
        return plot;
    }

    private static Plot Quadrants(IReadOnlyList<ProblemOutcome> outcomes, string source, double highAu, double highEu)
    {
        var plot = new Plot();
        int total = outcomes.Sum(o => o.Tokens.Count);
        int stride = Math.Max(1, (total + MaxScatterPoints - 1) / MaxScatterPoints);
        foreach (var (correct, label, colour) in new[] { (true, "tokens of right answers", Colors.SteelBlue), (false, "tokens of wrong answers", Colors.Red) })
        {
            var tokens = outcomes.Where(o => o.Correct == correct).SelectMany(o => o.Tokens)
                .Where(t => double.IsFinite(t.Au) && double.IsFinite(t.Eu)).Where((_, i) => i % stride == 0).ToArray();
            if (tokens.Length == 0)
            {
                continue;
            }
            double[] au = [.. tokens.Select(t => t.Au)];
            double[] eu = [.. tokens.Select(t => t.Eu)];
            var points = plot.Add.ScatterPoints(au, eu);
            points.LegendText = label;
            points.Color = colour.WithAlpha(0.5);
            points.MarkerSize = 4;
        }
        var auLine = plot.Add.VerticalLine(highAu);
        auLine.Color = Colors.Gray;
        auLine.LinePattern = LinePattern.Dashed;
        var euLine = plot.Add.HorizontalLine(highEu);
        euLine.Color = Colors.Gray;
        euLine.LinePattern = LinePattern.Dashed;
        // The quadrants as ALGORITHMS.md 5.1 names them, placed in their corners of AU in [0, ln 2], EU in (0, 1].
        foreach (var (text, x, y) in new[]
        {
            ("I: does not know", 0.69, 0.98), ("II: lacks knowledge", 0.0, 0.98), ("III: sure", 0.0, 0.02), ("IV: several answers", 0.69, 0.02),
        })
        {
            var label = plot.Add.Text(text, x, y);
            label.LabelFontSize = 12;
            label.LabelAlignment = x > 0 ? (y > 0.5 ? Alignment.UpperRight : Alignment.LowerRight) : (y > 0.5 ? Alignment.UpperLeft : Alignment.LowerLeft);
        }
        plot.Title($"LogTokU quadrants, K = 2 ({source}{(stride > 1 ? $", every {stride}th token" : "")})");
        plot.XLabel("AU (aleatoric)");
        plot.YLabel("EU (epistemic)");
        plot.Axes.SetLimits(-0.02, Math.Log(2) + 0.02, 0, 1.02);
        plot.ShowLegend(Alignment.MiddleRight);
        return plot;
    }
}
