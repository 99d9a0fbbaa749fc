using System.Runtime.InteropServices;
using NUnit.Framework;
using Tandem.Interop;

namespace Tandem.Tests.Facade;

/// <summary>The library search order, its failure message and the ABI version check.</summary>
[TestFixture]
public sealed class NativeLibraryResolverTests
{
    private string _scratch = null!;

    [SetUp]
    public void MakeScratchFolder() => _scratch = Directory.CreateTempSubdirectory("tandem-resolver-").FullName;

    [TearDown]
    public void RemoveScratchFolder() => Directory.Delete(_scratch, recursive: true);

    [Test]
    public void An_abi_mismatch_names_the_library_and_both_versions()
    {
        var thrown = Assert.Throws<TandemException>(() => NativeLibraryResolver.CheckAbiVersion(7, 1, "/opt/old/libtandem.so"));
        Assert.That(thrown!.Message, Does.StartWith("ABI mismatch: library /opt/old/libtandem.so reports ABI version 7, this Tandem.dll expects 1"));
        Assert.That(thrown.Status, Is.EqualTo(TandemStatus.Unsupported));
    }

    [Test]
    public void A_matching_abi_passes()
    {
        Assert.DoesNotThrow(() => NativeLibraryResolver.CheckAbiVersion(NativeMethods.TDM_ABI_VERSION, NativeMethods.TDM_ABI_VERSION, "x"));
        Assert.That(NativeMethods.tdm_abi_version(), Is.EqualTo(NativeMethods.TDM_ABI_VERSION), "the library this run loaded");
    }

    [Test]
    public void The_failure_lists_every_path_tried_with_the_loaders_reason()
    {
        string missing = Path.Combine(_scratch, "missing", "libtandem.so");
        string notALibrary = Path.Combine(_scratch, "libtandem.so");
        File.WriteAllText(notALibrary, "this is not an ELF file");

        var thrown = Assert.Throws<DllNotFoundException>(() => NativeLibraryResolver.LoadFirst([missing, notALibrary]));

        Assert.That(thrown!.Message, Does.Contain($"{missing} (not found)"));
        Assert.That(thrown.Message, Does.Contain(notALibrary + " ("));
        Assert.That(thrown.Message, Does.Not.Contain(notALibrary + " (not found)"), "an existing file gets the loader's reason");
        if (OperatingSystem.IsLinux())
        {
            Assert.That(thrown.Message, Does.Contain("ELF").Or.Contain("too short"), "dlopen's own message");
        }
        Assert.That(thrown.Message, Does.Contain("TANDEM_NATIVE_PATH"));
        Assert.That(thrown.Message, Does.Not.Contain("\n"), "one line");
    }

    [Test]
    public void The_first_loadable_candidate_wins()
    {
        string missing = Path.Combine(_scratch, "libtandem.so");
        string loaded = TandemRuntime.LibraryPath;

        var (handle, path) = NativeLibraryResolver.LoadFirst([missing, loaded]);
        try
        {
            Assert.That(path, Is.EqualTo(loaded));
            Assert.That(NativeLibrary.TryGetExport(handle, "tdm_abi_version", out _), Is.True);
        }
        finally
        {
            NativeLibrary.Free(handle);
        }
    }

    [Test]
    public void An_explicit_path_is_the_only_candidate()
    {
        string file = Path.Combine(_scratch, "custom.so");
        Assert.That(NativeLibraryResolver.CandidatePaths(file, "/app", "linux-x64"), Is.EqualTo(new[] { file }));
        Assert.That(NativeLibraryResolver.CandidatePaths(_scratch, "/app", "linux-x64"),
            Is.EqualTo(new[] { Path.Combine(_scratch, NativeLibraryResolver.FileName) }), "a folder means the library in it");
    }

    [Test]
    public void Without_an_explicit_path_the_nuget_layout_then_the_assembly_folder_then_the_build_output_are_tried()
    {
        // A fake checkout: Interop.sln at the root, the assembly three levels down.
        string app = Path.Combine(_scratch, "src", "App", "bin");
        Directory.CreateDirectory(app);
        File.WriteAllText(Path.Combine(_scratch, "Interop.sln"), "");

        var paths = NativeLibraryResolver.CandidatePaths(null, app, "linux-x64");

        string name = NativeLibraryResolver.FileName;
        Assert.That(paths, Is.EqualTo(new[]
        {
            Path.Combine(app, "runtimes", "linux-x64", "native", name),
            Path.Combine(app, name),
            Path.Combine(_scratch, "build", "native", name),
        }));
    }

    [Test]
    public void Outside_a_checkout_there_is_no_build_output_candidate()
    {
        var paths = NativeLibraryResolver.CandidatePaths("", _scratch, "linux-x64");
        Assert.That(paths, Has.Count.EqualTo(2), "an empty explicit path counts as none");
    }

    [Test]
    public void Setting_the_explicit_path_after_the_library_is_loaded_is_refused()
    {
        TandemRuntime.EnsureLoaded();
        var thrown = Assert.Throws<InvalidOperationException>(() => TandemRuntime.NativeLibraryPath = "/elsewhere/libtandem.so");
        Assert.That(thrown!.Message, Does.Contain(TandemRuntime.LibraryPath));
    }
}
