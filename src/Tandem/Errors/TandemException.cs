namespace Tandem;

/// <summary>
/// A failure reported by the native core that is not an argument error or a cancellation
/// (see <see cref="NativeStatus"/> for the full mapping). <see cref="Status"/> says which.
/// </summary>
public class TandemException : Exception
{
    /// <summary>
    /// Key under which every exception raised for a native status carries that status in
    /// <see cref="Exception.Data"/>, including the <see cref="ArgumentException"/>s and
    /// <see cref="OperationCanceledException"/>s that cannot derive from this class.
    /// </summary>
    public const string StatusDataKey = "Tandem.Status";

    public TandemException(TandemStatus status, string message)
        : this(status, message, innerException: null)
    {
    }

    public TandemException(TandemStatus status, string message, Exception? innerException)
        : base(message, innerException)
    {
        Status = status;
        Data[StatusDataKey] = status;
    }

    /// <summary>The native status code behind this exception.</summary>
    public TandemStatus Status { get; }

    /// <summary>
    /// The native status an exception was raised for, or <see langword="null"/> when it did not come from
    /// the native core.
    /// </summary>
    public static TandemStatus? StatusOf(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception.Data[StatusDataKey] is TandemStatus status ? status : null;
    }
}

/// <summary>
/// The tokens do not fit in the session's context (<see cref="TandemStatus.ContextFull"/>). Recoverable: the
/// session is unchanged. The message names the limit that was hit: the model's
/// <c>max_position_embeddings</c> or the session's KV capacity.
/// </summary>
public sealed class ContextFullException : TandemException
{
    public ContextFullException(string message)
        : base(TandemStatus.ContextFull, message)
    {
    }
}
