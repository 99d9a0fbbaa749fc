using System.Text;

namespace Tandem.Bindings;

/// <summary>
/// Finds the C comment that documents a declaration, from the header's text and the declaration's extent.
/// </summary>
/// <remarks>
/// libclang attaches a comment to the next declaration even across a blank line, so the section banners of
/// tandem.h ("Status codes and errors") would become the docs of whatever follows them, and it gives macros no
/// comments at all. The rules here are the ones a reader of the header applies:
/// <list type="bullet">
/// <item>a trailing comment starts on the declaration's last line, after it and its ';' or ',';</item>
/// <item>a leading comment stands alone on its lines and ends on the line right above the declaration
/// (a blank line in between detaches it).</item>
/// </list>
/// Offsets are byte offsets into the UTF-8 file, as libclang reports them.
/// </remarks>
internal sealed class CommentReader
{
    private readonly byte[] _text;

    public CommentReader(byte[] text) => _text = text;

    /// <summary>The comment's lines without delimiters and decoration, or an empty list if there is none.</summary>
    public IReadOnlyList<string> For(int begin, int end)
    {
        var lines = new List<string>();
        if (Leading(begin) is { } leading)
            lines.AddRange(Clean(leading));
        if (Trailing(end) is { } trailing)
            lines.AddRange(Clean(trailing));
        return lines;
    }

    private string? Trailing(int end)
    {
        int i = SkipBlanksOnLine(end);
        if (i < _text.Length && (_text[i] == ';' || _text[i] == ','))
            i = SkipBlanksOnLine(i + 1);
        if (StartsWith(i, "/*"))
        {
            int close = IndexOf("*/", i + 2);
            return close < 0 ? null : Decode(i, close + 2);
        }
        if (StartsWith(i, "//"))
            return Decode(i, LineEnd(i));
        return null;
    }

    private string? Leading(int begin)
    {
        int lineStart = LineStart(begin);
        if (lineStart == 0)
            return null;
        int previousEnd = lineStart - 1; // the '\n' ending the previous line
        int previousStart = LineStart(previousEnd);
        string previous = Decode(previousStart, previousEnd).Trim();

        if (previous.EndsWith("*/", StringComparison.Ordinal))
        {
            int close = LastIndexOf("*/", previousEnd);
            int open = LastIndexOf("/*", close);
            if (open < 0 || !OnlyBlanksBefore(open))
                return null; // a trailing comment of the line above, or no comment at all
            return Decode(open, close + 2);
        }

        if (previous.StartsWith("//", StringComparison.Ordinal))
        {
            int first = previousStart;
            while (first > 0)
            {
                int aboveStart = LineStart(first - 1);
                if (!Decode(aboveStart, first - 1).TrimStart().StartsWith("//", StringComparison.Ordinal))
                    break;
                first = aboveStart;
            }
            return Decode(first, previousEnd);
        }
        return null;
    }

    /// <summary>Strips /* */, // and the " * " column of block comments; drops blank lines at either end.</summary>
    internal static List<string> Clean(string comment)
    {
        bool block = comment.StartsWith("/*", StringComparison.Ordinal);
        string body = block ? comment[2..^2] : comment;
        var lines = new List<string>();
        foreach (string raw in body.Split('\n'))
        {
            string line = raw.Trim();
            if (block)
            {
                if (line.StartsWith('*'))
                    line = line[1..];
            }
            else
            {
                line = line.TrimStart('/');
            }
            lines.Add(line.Trim());
        }
        while (lines.Count > 0 && lines[0].Length == 0)
            lines.RemoveAt(0);
        while (lines.Count > 0 && lines[^1].Length == 0)
            lines.RemoveAt(lines.Count - 1);
        return lines;
    }

    private int SkipBlanksOnLine(int i)
    {
        while (i < _text.Length && (_text[i] == ' ' || _text[i] == '\t' || _text[i] == '\r'))
            i++;
        return i;
    }

    private bool OnlyBlanksBefore(int i)
    {
        for (int j = i - 1; j >= 0 && _text[j] != '\n'; j--)
            if (_text[j] != ' ' && _text[j] != '\t')
                return false;
        return true;
    }

    private int LineStart(int i)
    {
        while (i > 0 && _text[i - 1] != '\n')
            i--;
        return i;
    }

    private int LineEnd(int i)
    {
        while (i < _text.Length && _text[i] != '\n')
            i++;
        return i;
    }

    private bool StartsWith(int i, string token) =>
        i + token.Length <= _text.Length && Encoding.ASCII.GetString(_text, i, token.Length) == token;

    private int IndexOf(string token, int from)
    {
        for (int i = from; i + token.Length <= _text.Length; i++)
            if (StartsWith(i, token))
                return i;
        return -1;
    }

    private int LastIndexOf(string token, int before)
    {
        for (int i = before - token.Length; i >= 0; i--)
            if (StartsWith(i, token))
                return i;
        return -1;
    }

    private string Decode(int begin, int end) => Encoding.UTF8.GetString(_text, begin, end - begin).Replace("\r", "");
}
