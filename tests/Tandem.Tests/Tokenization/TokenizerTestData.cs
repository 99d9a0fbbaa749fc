using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Tandem.Tests.Tokenization;

/// <summary>Where the shared fixtures and vectors live, and the tokenizer vectors read from them.</summary>
internal static class TokenizerTestData
{
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public static string FixturesDirectory => Path.Combine(RepositoryRoot, "tests", "fixtures");

    public static string FixtureDirectory(string name) => Path.Combine(FixturesDirectory, name);

    /// <summary>tests/vectors/tokenizer_ids.json: one entry per tokenizer kind, with the fixture that holds it.</summary>
    public static IReadOnlyList<TokenizerVector> Vectors { get; } = ReadVectors();

    /// <summary>Every fixture folder that has a golden.json with tokenizer cases.</summary>
    public static IEnumerable<string> FixturesWithGoldens() =>
        Directory.Exists(FixturesDirectory)
            ? Directory.EnumerateDirectories(FixturesDirectory)
                .Where(d => File.Exists(Path.Combine(d, "golden.json")))
                .Select(Path.GetFileName)
                .OfType<string>()
                .Order(StringComparer.Ordinal)
            : [];

    public static IReadOnlyList<TokenizerCase> GoldenCases(string fixture)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDirectory(fixture), "golden.json")));
        return document.RootElement.GetProperty("tokenizer").EnumerateArray().Select(TokenizerCase.Read).ToArray();
    }

    /// <summary>A fresh empty folder under the system temp folder, deleted when disposed.</summary>
    public static TempDirectory CreateTempDirectory() => new();

    private static IReadOnlyList<TokenizerVector> ReadVectors()
    {
        string path = Path.Combine(RepositoryRoot, "tests", "vectors", "tokenizer_ids.json");
        if (!File.Exists(path))
        {
            return [];
        }

        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return document.RootElement.GetProperty("tokenizers").EnumerateArray()
            .Select(t => new TokenizerVector(
                t.GetProperty("fixture").GetString()!,
                t.GetProperty("kind").GetString()!,
                t.TryGetProperty("shared_by", out var shared) ? shared.EnumerateArray().Select(s => s.GetString()!).ToArray() : [],
                t.GetProperty("cases").EnumerateArray().Select(TokenizerCase.Read).ToArray()))
            .ToArray();
    }

    private static string FindRepositoryRoot([CallerFilePath] string sourceFile = "")
    {
        // This file lives in tests/Tandem.Tests/Tokenization; fall back to walking up from the test binaries.
        foreach (string start in new[] { Path.GetDirectoryName(sourceFile) ?? "", AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (Directory.Exists(Path.Combine(dir.FullName, "tests", "fixtures")) && Directory.Exists(Path.Combine(dir.FullName, "src", "Tandem")))
                {
                    return dir.FullName;
                }
            }
        }

        throw new DirectoryNotFoundException("Cannot find the repository root (a folder with tests/fixtures and src/Tandem) above the tests.");
    }
}

public sealed record TokenizerVector(string Fixture, string Kind, IReadOnlyList<string> SharedBy, IReadOnlyList<TokenizerCase> Cases)
{
    public override string ToString() => $"{Kind} ({Fixture})";
}

public sealed record TokenizerCase(string Text, int[] Ids, int[] IdsNoSpecial, string Decoded)
{
    public static TokenizerCase Read(JsonElement c) => new(
        c.GetProperty("text").GetString()!,
        c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
        c.GetProperty("ids_no_special").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
        c.GetProperty("decoded").GetString()!);
}

internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "tandem-tokenizer-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // best effort: a leftover temp folder must not fail a test
        }
    }
}
