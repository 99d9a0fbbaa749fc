namespace Tandem;

/// <summary>
/// The status codes of the native core (<c>tdm_status</c> in tandem.h), one to one and with the same values,
/// so a status read from an exception can be compared with the C documentation.
/// </summary>
public enum TandemStatus
{
    Ok = 0,
    /// <summary>A NULL pointer, a value out of range, a NaN, bad UTF-8.</summary>
    InvalidArgument = 1,
    /// <summary>A path or a file inside a model folder does not exist.</summary>
    NotFound = 2,
    /// <summary>A file exists but cannot be read or mapped.</summary>
    Io = 3,
    /// <summary>config.json or the safetensors are malformed or inconsistent.</summary>
    InvalidModel = 4,
    /// <summary>A valid but unsupported architecture, dtype or feature.</summary>
    Unsupported = 5,
    /// <summary>The tokens do not fit in the context (recoverable).</summary>
    ContextFull = 6,
    /// <summary>A token id below 0 or at least the vocabulary size.</summary>
    TokenOutOfRange = 7,
    OutOfMemory = 8,
    /// <summary>The device asked for is not compiled in or not present.</summary>
    BackendUnavailable = 9,
    /// <summary>The device reported an error.</summary>
    Device = 10,
    /// <summary>An abort callback asked to stop (recoverable).</summary>
    Cancelled = 11,
    /// <summary>E.g. asking for logits before any forward pass.</summary>
    InvalidState = 12,
    /// <summary>A bug in the core: please report it with the message.</summary>
    Internal = 13,
    /// <summary>A caller's callback (e.g. a routing policy) reported failure.</summary>
    Callback = 14,
}
