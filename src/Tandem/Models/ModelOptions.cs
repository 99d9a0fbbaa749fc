namespace Tandem;

/// <summary>The device a model runs on (<c>tdm_device</c>).</summary>
public enum Device
{
    Cpu = 0,
    Cuda = 1,
}

/// <summary>The dtype of a model's stored weights (<c>tdm_dtype</c>).</summary>
public enum DType
{
    F32 = 0,
    F16 = 1,
    BF16 = 2,
}

/// <summary>How to load a model (<c>tdm_model_options</c>); the defaults are the native defaults.</summary>
/// <param name="Device">Where the model runs. Asking for <see cref="Device.Cuda"/> on a build or machine
/// without it fails with <see cref="TandemStatus.BackendUnavailable"/>.</param>
/// <param name="DeviceIndex">GPU ordinal for <see cref="Device.Cuda"/>.</param>
/// <param name="Threads">CPU threads for sessions that do not say; 0 = all cores.</param>
public sealed record ModelOptions(Device Device = Device.Cpu, int DeviceIndex = 0, int Threads = 0);

/// <summary>Load progress in bytes; <see cref="BytesTotal"/> is 0 when unknown.</summary>
public readonly record struct LoadProgress(long BytesDone, long BytesTotal)
{
    /// <summary>Done as a fraction in [0, 1], or <see langword="null"/> when the total is unknown.</summary>
    public double? Fraction => BytesTotal > 0 ? Math.Clamp((double)BytesDone / BytesTotal, 0.0, 1.0) : null;
}
