using System.Runtime.InteropServices;

namespace Tandem;

/// <summary>
/// A reference held on a handle for the duration of one native call, so that a concurrent Dispose cannot free
/// the native object under the call; it turns use after Dispose into <see cref="ObjectDisposedException"/>.
/// </summary>
internal readonly ref struct HandleLease
{
    private readonly SafeHandle _handle;

    public HandleLease(SafeHandle handle, string ownerName)
    {
        bool added = false;
        if (!handle.IsClosed)
        {
            try
            {
                handle.DangerousAddRef(ref added);
            }
            catch (ObjectDisposedException)
            {
                // Closed between the check and the AddRef: report it like the check would have.
            }
        }
        if (!added)
        {
            throw new ObjectDisposedException(ownerName, $"this {ownerName} has been disposed");
        }
        _handle = handle;
        Pointer = handle.DangerousGetHandle();
    }

    /// <summary>The native pointer, valid until this lease is disposed.</summary>
    public nint Pointer { get; }

    public void Dispose() => _handle.DangerousRelease();
}
