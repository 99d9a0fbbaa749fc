using NUnit.Framework;

namespace Tandem.Tests.Support;

/// <summary>
/// Paths of the repository's test data. A missing fixture or vector file fails the test that needs it, loudly:
/// CI has them all, so a missing one is a broken checkout, never a reason to skip.
/// </summary>
internal static class Repository
{
    private static readonly Lazy<string> RootFolder = new(FindRoot);

    /// <summary>The folder holding Interop.sln.</summary>
    public static string Root => RootFolder.Value;

    /// <summary>Every model fixture the facade is checked on.</summary>
    public static readonly string[] Fixtures =
    [
        "llama-f32", "llama-bf16", "qwen2-tied-f32", "mistral-swa-f32", "llama3-sharded-bf16", "llama-spm-f32", "long-llama-bf16",
    ];

    /// <summary>The folder of fixture <paramref name="name"/> under tests/fixtures.</summary>
    public static string Fixture(string name)
    {
        string folder = Path.Combine(Root, "tests", "fixtures", name);
        if (!File.Exists(Path.Combine(folder, "config.json")))
        {
            Assert.Fail($"fixture {folder} is missing; regenerate the fixtures with tools/make_fixtures.py (see tools/README.md)");
        }
        return folder;
    }

    /// <summary>A file under tests/vectors.</summary>
    public static string Vector(string fileName)
    {
        string path = Path.Combine(Root, "tests", "vectors", fileName);
        if (!File.Exists(path))
        {
            Assert.Fail($"test vector file {path} is missing; regenerate it with python3 tools/make_vectors.py");
        }
        return path;
    }

    private static string FindRoot()
    {
        // AppContext.BaseDirectory (the test assembly's folder) also works while NUnit discovers test case sources.
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "Interop.sln")))
            {
                return folder.FullName;
            }
        }
        throw new InvalidOperationException($"no Interop.sln above {AppContext.BaseDirectory}");
    }
}
