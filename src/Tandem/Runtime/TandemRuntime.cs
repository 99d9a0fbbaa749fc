using Tandem.Interop;

namespace Tandem;

/// <summary>Process-wide settings and facts about the loaded native core.</summary>
public static unsafe class TandemRuntime
{
    private static readonly Lock Gate = new();
    private static BuildInfo? s_buildInfo;

    /// <summary>
    /// An explicit path of libtandem (the file, or the folder holding it). It overrides the environment variable
    /// <c>TANDEM_NATIVE_PATH</c> and the default search; it must be set before the first native call.
    /// </summary>
    /// <exception cref="InvalidOperationException">The library is already loaded.</exception>
    public static string? NativeLibraryPath
    {
        get => NativeLibraryResolver.ExplicitPath;
        set => NativeLibraryResolver.ExplicitPath = value;
    }

    /// <summary>Where the native library was loaded from (loads it if needed).</summary>
    public static string LibraryPath
    {
        get
        {
            EnsureLoaded();
            return NativeLibraryResolver.LoadedPath!;
        }
    }

    /// <summary>Versions and backends of the loaded native core (loads it if needed).</summary>
    public static BuildInfo BuildInfo
    {
        get
        {
            EnsureLoaded(); // outside Gate: loading takes the resolver's lock
            lock (Gate)
            {
                return s_buildInfo ??= ReadBuildInfo();
            }
        }
    }

    /// <summary>
    /// Loads the native library now, so that a missing or mismatched library is reported here rather than at the
    /// first model load.
    /// </summary>
    /// <exception cref="DllNotFoundException">No candidate path could be loaded (the message lists them).</exception>
    /// <exception cref="TandemException">The library was built for another ABI version.</exception>
    public static void EnsureLoaded() => _ = NativeMethods.tdm_abi_version();

    private static BuildInfo ReadBuildInfo()
    {
        tdm_build_info info = default;
        info.struct_size = (uint)sizeof(tdm_build_info);
        NativeStatus.Check(NativeMethods.tdm_get_build_info(&info));
        return new BuildInfo(
            Version: Utf8.ToManaged(info.version),
            Compiler: Utf8.ToManaged(info.compiler),
            CpuFeatures: Utf8.ToManaged(info.cpu_features),
            AbiVersion: info.abi_version,
            HasCpu: info.has_cpu != 0,
            HasCuda: info.has_cuda != 0,
            CudaDeviceFound: info.cuda_device_found != 0,
            LibraryPath: NativeLibraryResolver.LoadedPath ?? string.Empty);
    }
}

/// <summary>What the loaded native core was built with (<c>tdm_build_info</c>).</summary>
/// <param name="Version">Library version, e.g. "0.1.0".</param>
/// <param name="Compiler">The compiler that built it, e.g. "GNU 12.2.0".</param>
/// <param name="CpuFeatures">The CPU kernels chosen at run time, e.g. "avx2 fma".</param>
/// <param name="AbiVersion">The ABI version the library reports (equal to the one these bindings expect).</param>
/// <param name="HasCpu">Always true: the CPU backend is always built.</param>
/// <param name="HasCuda">Whether the CUDA backend was compiled in.</param>
/// <param name="CudaDeviceFound">Whether a supported GPU is present now.</param>
/// <param name="LibraryPath">The file the library was loaded from.</param>
public sealed record BuildInfo(
    string Version,
    string Compiler,
    string CpuFeatures,
    uint AbiVersion,
    bool HasCpu,
    bool HasCuda,
    bool CudaDeviceFound,
    string LibraryPath);
