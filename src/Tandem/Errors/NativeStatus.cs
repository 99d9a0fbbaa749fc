using System.Runtime.InteropServices;
using Tandem.Interop;

namespace Tandem;

/// <summary>
/// The one place that turns a <c>tdm_status</c> into an exception. Every native call of the facade goes
/// through <see cref="Check"/> right after it returns, on the same thread, so the thread-local
/// <c>tdm_last_error()</c> still holds the message of that call.
/// </summary>
/// <remarks>
/// Mapping:
/// <list type="bullet">
/// <item><c>TDM_ERR_INVALID_ARGUMENT</c> → <see cref="ArgumentException"/>;</item>
/// <item><c>TDM_ERR_TOKEN_OUT_OF_RANGE</c> → <see cref="ArgumentOutOfRangeException"/>;</item>
/// <item><c>TDM_ERR_CANCELLED</c> → <see cref="OperationCanceledException"/> (with the caller's token);</item>
/// <item><c>TDM_ERR_CONTEXT_FULL</c> → <see cref="ContextFullException"/>;</item>
/// <item>everything else → <see cref="TandemException"/> with <see cref="TandemException.Status"/>.</item>
/// </list>
/// Each of them carries the native message, and its status under <see cref="TandemException.StatusDataKey"/>
/// in <see cref="Exception.Data"/>. Missing files stay <see cref="TandemException"/>s with
/// <see cref="TandemStatus.NotFound"/> rather than <see cref="FileNotFoundException"/>, so one catch clause
/// sees every load failure with its status.
/// </remarks>
internal static unsafe class NativeStatus
{
    /// <summary>Throws the mapped exception unless <paramref name="status"/> is <c>TDM_OK</c>.</summary>
    public static void Check(tdm_status status, CancellationToken cancellationToken = default)
    {
        if (status != tdm_status.TDM_OK)
        {
            throw ToException(status, LastError(), cancellationToken);
        }
    }

    /// <summary>The exception for a failed status and its message (public for the mapping tests).</summary>
    public static Exception ToException(tdm_status status, string message, CancellationToken cancellationToken = default)
    {
        var managed = (TandemStatus)(int)status;
        if (message.Length == 0)
        {
            message = $"the native call failed with {managed} and no message";
        }

        Exception exception = status switch
        {
            tdm_status.TDM_ERR_INVALID_ARGUMENT => new ArgumentException(message),
            tdm_status.TDM_ERR_TOKEN_OUT_OF_RANGE => new ArgumentOutOfRangeException(paramName: null, message),
            tdm_status.TDM_ERR_CANCELLED => new OperationCanceledException(message, cancellationToken),
            tdm_status.TDM_ERR_CONTEXT_FULL => new ContextFullException(message),
            _ => new TandemException(managed, message),
        };
        exception.Data[TandemException.StatusDataKey] = managed;
        return exception;
    }

    /// <summary>The calling thread's last native error message ("" if none).</summary>
    public static string LastError() => Utf8.ToManaged(NativeMethods.tdm_last_error());
}
