using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Tandem.Interop;

namespace Tandem;

/// <summary>
/// Finds and loads libtandem for every <c>[LibraryImport("tandem")]</c> of this assembly, then refuses a library
/// built for another ABI. Registered once, by the module initializer, before any native call can run.
/// </summary>
/// <remarks>
/// Search order (ARCHITECTURE.md, "The C# facade"):
/// <list type="number">
/// <item>an explicit path, <see cref="TandemRuntime.NativeLibraryPath"/> or else the environment variable
/// <c>TANDEM_NATIVE_PATH</c> (a file, or a folder holding the library); when given, nothing else is tried,
/// so a wrong explicit path is reported instead of silently loading another build;</item>
/// <item><c>runtimes/&lt;rid&gt;/native/</c> beside this assembly (the NuGet layout);</item>
/// <item>the folder of this assembly;</item>
/// <item>the CMake output of a source checkout: the nearest folder above this assembly holding
/// <c>Interop.sln</c>, then <c>build/native/</c> in it (where <c>./build.sh</c> puts the library).</item>
/// </list>
/// The failure message lists every path tried and why each failed (the loader's own message), because
/// "cannot be loaded" alone hides the missing dependency that is usually the real cause.
/// </remarks>
internal static unsafe class NativeLibraryResolver
{
    public const string LibraryName = "tandem";
    public const string PathVariable = "TANDEM_NATIVE_PATH";

    private static readonly Lock Gate = new();
    private static nint s_handle;
    private static string? s_loadedPath;
    private static string? s_explicitPath;

    /// <summary>The platform's file name of the library.</summary>
    public static string FileName =>
        OperatingSystem.IsWindows() ? "tandem.dll" : OperatingSystem.IsMacOS() ? "libtandem.dylib" : "libtandem.so";

    /// <summary>The path the library was loaded from, or <see langword="null"/> before the first native call.</summary>
    public static string? LoadedPath
    {
        get
        {
            lock (Gate)
            {
                return s_loadedPath;
            }
        }
    }

    /// <summary>See <see cref="TandemRuntime.NativeLibraryPath"/>.</summary>
    public static string? ExplicitPath
    {
        get
        {
            lock (Gate)
            {
                return s_explicitPath;
            }
        }
        set
        {
            lock (Gate)
            {
                if (s_loadedPath is not null)
                {
                    throw new InvalidOperationException(
                        $"the Tandem native library is already loaded from {s_loadedPath}; set NativeLibraryPath before the first native call");
                }
                s_explicitPath = value;
            }
        }
    }

    // A library must not run code at load time as a rule (CA2255), but a DllImport resolver only works if it is
    // registered before the first P/Invoke of the assembly runs, and any type here may make that first call.
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries",
        Justification = "The resolver must be in place before the first P/Invoke of this assembly.")]
    [ModuleInitializer]
    internal static void Register() =>
        NativeLibrary.SetDllImportResolver(typeof(NativeLibraryResolver).Assembly, Resolve);

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName != LibraryName)
        {
            return 0;
        }
        lock (Gate)
        {
            if (s_handle != 0)
            {
                return s_handle;
            }
            string assemblyFolder = AssemblyFolder();
            var candidates = CandidatePaths(
                s_explicitPath ?? Environment.GetEnvironmentVariable(PathVariable),
                assemblyFolder, RuntimeInformation.RuntimeIdentifier);
            (nint handle, string path) = LoadFirst(candidates);
            try
            {
                CheckAbiVersion(handle, path);
            }
            catch
            {
                NativeLibrary.Free(handle);
                throw;
            }
            s_handle = handle;
            s_loadedPath = path;
            return handle;
        }
    }

    /// <summary>The paths to try, in order (see the class remarks).</summary>
    internal static IReadOnlyList<string> CandidatePaths(string? explicitPath, string assemblyFolder, string runtimeIdentifier)
    {
        if (!string.IsNullOrEmpty(explicitPath))
        {
            return [Directory.Exists(explicitPath) ? Path.Combine(explicitPath, FileName) : explicitPath];
        }
        var paths = new List<string>
        {
            Path.Combine(assemblyFolder, "runtimes", runtimeIdentifier, "native", FileName),
            Path.Combine(assemblyFolder, FileName),
        };
        for (var folder = new DirectoryInfo(assemblyFolder); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "Interop.sln")))
            {
                paths.Add(Path.Combine(folder.FullName, "build", "native", FileName));
                break;
            }
        }
        return paths;
    }

    /// <summary>
    /// Loads the first candidate that the platform loader accepts; otherwise throws
    /// <see cref="DllNotFoundException"/> naming every candidate and the reason it failed.
    /// </summary>
    internal static (nint Handle, string Path) LoadFirst(IReadOnlyList<string> candidates)
    {
        var failures = new List<string>(candidates.Count);
        foreach (string candidate in candidates)
        {
            string full = Path.GetFullPath(candidate);
            if (!File.Exists(full))
            {
                failures.Add($"{full} (not found)");
                continue;
            }
            try
            {
                return (NativeLibrary.Load(full), full);
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                failures.Add($"{full} ({LoaderReason(e.Message)})");
            }
        }
        throw new DllNotFoundException(
            $"Cannot load the Tandem native library {FileName}; tried: {string.Join("; ", failures)}. " +
            $"Build it with ./build.sh (it goes to build/native/), or set {PathVariable} to its path.");
    }

    /// <summary>
    /// Throws <see cref="TandemException"/> unless the library reports the ABI version these bindings were
    /// generated against: a mismatched build would read struct fields at the wrong offsets.
    /// </summary>
    internal static void CheckAbiVersion(uint reported, uint expected, string libraryPath)
    {
        if (reported != expected)
        {
            throw new TandemException(TandemStatus.Unsupported,
                $"ABI mismatch: library {libraryPath} reports ABI version {reported}, this Tandem.dll expects {expected}; " +
                "use the native library built from the same source as Tandem.dll.");
        }
    }

    private static void CheckAbiVersion(nint handle, string path)
    {
        if (!NativeLibrary.TryGetExport(handle, "tdm_abi_version", out nint export))
        {
            throw new TandemException(TandemStatus.Unsupported,
                $"ABI mismatch: library {path} does not export tdm_abi_version, so it is not a Tandem core library.");
        }
        uint reported = ((delegate* unmanaged[Cdecl]<uint>)export)();
        CheckAbiVersion(reported, NativeMethods.TDM_ABI_VERSION, path);
    }

    /// <summary>The loader's own reason (dlerror on Unix): the last line of .NET's message.</summary>
    private static string LoaderReason(string message)
    {
        string[] lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "the loader gave no reason" : lines[^1];
    }

    private static string AssemblyFolder()
    {
        // Location is "" for single-file apps; the application folder is the right base there.
        string location = typeof(NativeLibraryResolver).Assembly.Location;
        return string.IsNullOrEmpty(location) ? AppContext.BaseDirectory : Path.GetDirectoryName(location)!;
    }
}
