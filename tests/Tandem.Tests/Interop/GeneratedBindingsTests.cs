using NUnit.Framework;

namespace Tandem.Tests.Interop;

// Inside the namespace, so that these names win over same-named types of the Tandem assembly
// (such as Tandem.Generator, the facade's sampling loop) found while walking out through namespace Tandem.
using Tandem.Bindings;

/// <summary>
/// The committed NativeMethods.g.cs and StructLayoutTests.g.cs must be exactly what the generator makes of
/// the current tandem.h: a header change without a regeneration fails here, with the first stale line.
/// </summary>
[TestFixture]
public sealed class GeneratedBindingsTests
{
    private BindingsConfig _config = null!;
    private GeneratedBindings _generated = null!;

    [OneTimeSetUp]
    public void GenerateFromTheCurrentHeader()
    {
        _config = BindingsConfig.Load(Path.Combine(RepositoryRoot(), "bindings", "bindings.json"));
        _generated = Generator.Generate(_config.HeaderPath, _config);
    }

    [Test]
    public void Committed_NativeMethods_is_what_the_header_generates() =>
        AssertCommitted(_config.OutputPath, _generated.NativeMethods);

    [Test]
    public void Committed_StructLayoutTests_is_what_the_header_generates() =>
        AssertCommitted(_config.LayoutTestsPath, _generated.StructLayoutTests);

    [Test]
    public void Generation_is_deterministic_and_uses_LF_line_endings()
    {
        GeneratedBindings again = Generator.Generate(_config.HeaderPath, _config);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(again.NativeMethods, Is.EqualTo(_generated.NativeMethods));
            Assert.That(again.StructLayoutTests, Is.EqualTo(_generated.StructLayoutTests));
            Assert.That(_generated.NativeMethods, Does.Not.Contain("\r"));
            Assert.That(_generated.StructLayoutTests, Does.Not.Contain("\r"));
        }
    }

    private void AssertCommitted(string path, string generated)
    {
        string shown = _config.Display(path);
        Assert.That(File.Exists(path), Is.True, $"{shown} is missing; run: dotnet run --project bindings/Tandem.Bindings -c Release");
        // A Windows checkout with core.autocrlf holds '\r\n'; that alone does not make the file stale.
        string committed = File.ReadAllText(path).Replace("\r\n", "\n");
        string? difference = TextDiff.FirstDifference(committed, generated, "committed", "generated");
        Assert.That(difference, Is.Null,
            $"{shown} is out of date with {_config.Header}; regenerate it with " +
            $"`dotnet run --project bindings/Tandem.Bindings -c Release` and commit the result.\n{difference}");
    }

    /// <summary>The folder holding Interop.sln, found by walking up from the test assembly.</summary>
    internal static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Interop.sln")))
                return directory.FullName;
        }
        throw new InvalidOperationException($"no Interop.sln above {TestContext.CurrentContext.TestDirectory}");
    }
}
