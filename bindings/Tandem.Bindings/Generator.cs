using Tandem.Bindings.Emit;

namespace Tandem.Bindings;

/// <summary>The two generated files, as text with '\n' line endings.</summary>
/// <param name="NativeMethods">The contents of NativeMethods.g.cs.</param>
/// <param name="StructLayoutTests">The contents of StructLayoutTests.g.cs.</param>
public sealed record GeneratedBindings(string NativeMethods, string StructLayoutTests);

/// <summary>Parses a C header with libclang and writes its P/Invoke layer and the layout tests of its structs.</summary>
public static class Generator
{
    /// <summary>Generates from the header that <paramref name="config"/> names.</summary>
    public static GeneratedBindings Generate(BindingsConfig config) => Generate(config.HeaderPath, config);

    /// <summary>
    /// Generates from <paramref name="headerPath"/> with the settings of <paramref name="config"/> (namespaces,
    /// names, handles, clang arguments). The result depends only on the header, the configuration and the
    /// libclang version, never on the machine or the working directory.
    /// </summary>
    /// <exception cref="GeneratorException">The header does not parse cleanly or holds something that cannot be bound.</exception>
    public static GeneratedBindings Generate(string headerPath, BindingsConfig config)
    {
        string fullPath = Path.GetFullPath(headerPath);
        if (!File.Exists(fullPath))
            throw new GeneratorException($"header {fullPath} does not exist.");
        string target = PinnedTarget(config);
        HeaderModel header = HeaderReader.Read(fullPath, config);

        string source = config.Display(fullPath);
        return new GeneratedBindings(
            NativeMethodsWriter.Write(header, config, source),
            LayoutTestsWriter.Write(header, config, source, target));
    }

    /// <summary>
    /// The --target of the clang arguments. It is required: without it libclang lays structs out for whatever
    /// machine runs the generator, and the committed file would depend on who generated it.
    /// </summary>
    private static string PinnedTarget(BindingsConfig config)
    {
        for (int i = 0; i < config.ClangArgs.Count; i++)
        {
            string argument = config.ClangArgs[i];
            if (argument.StartsWith("--target=", StringComparison.Ordinal))
                return argument["--target=".Length..];
            if (argument is "-target" or "--target" && i + 1 < config.ClangArgs.Count)
                return config.ClangArgs[i + 1];
        }
        throw new GeneratorException("clangArgs in bindings.json must pin the target (--target=<triple>) so that every machine generates the same layout.");
    }
}

/// <summary>Where two texts first differ, for messages that tell a reader what is stale.</summary>
public static class TextDiff
{
    /// <summary>Null if the texts are equal; otherwise the first differing line of each, with its number.</summary>
    public static string? FirstDifference(string expected, string actual, string expectedLabel = "expected", string actualLabel = "actual")
    {
        if (string.Equals(expected, actual, StringComparison.Ordinal))
            return null;
        string[] a = expected.Split('\n');
        string[] b = actual.Split('\n');
        int line = 0;
        while (line < a.Length && line < b.Length && string.Equals(a[line], b[line], StringComparison.Ordinal))
            line++;
        string At(string[] lines) => line < lines.Length ? $"`{lines[line].TrimEnd('\r')}`" : "(end of file)";
        return $"first difference at line {line + 1}:\n  {expectedLabel}: {At(a)}\n  {actualLabel}: {At(b)}";
    }
}
