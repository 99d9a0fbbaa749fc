using System.Text;

namespace Tandem.Bindings.Emit;

/// <summary>
/// Builds C# source text with four-space indentation and '\n' line endings on every platform, so the
/// generated files are byte-for-byte the same wherever they are produced.
/// </summary>
internal sealed class CodeWriter
{
    private readonly StringBuilder _text = new();
    private int _depth;

    public void Line(string line = "")
    {
        if (line.Length > 0)
            _text.Append(' ', 4 * _depth).Append(line);
        _text.Append('\n');
    }

    public void Open(string header)
    {
        Line(header);
        Line("{");
        _depth++;
    }

    public void Close(string closer = "}")
    {
        _depth--;
        Line(closer);
    }

    /// <summary>An XML doc summary from comment lines; nothing when there are none.</summary>
    public void Summary(IReadOnlyList<string> lines)
    {
        if (lines.Count == 0)
            return;
        if (lines.Count == 1)
        {
            Line($"/// <summary>{CSharpSyntax.EscapeXml(lines[0])}</summary>");
            return;
        }
        Line("/// <summary>");
        foreach (string line in lines)
            Line(line.Length == 0 ? "///" : "/// " + CSharpSyntax.EscapeXml(line));
        Line("/// </summary>");
    }

    public override string ToString() => _text.ToString();
}
