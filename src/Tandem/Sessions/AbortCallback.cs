using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Tandem.Interop;

namespace Tandem;

/// <summary>
/// Wires a <see cref="CancellationToken"/> to the native abort callback of a long forward pass, which polls it
/// between layers. Allocates only for tokens that can be cancelled.
/// </summary>
internal unsafe ref struct AbortCallback
{
    private GCHandle _token;

    /// <summary>Sets <c>abort</c> and <c>abort_user_data</c> of <paramref name="options"/> for the token.</summary>
    public AbortCallback(CancellationToken cancellationToken, tdm_prefill_options* options)
    {
        if (cancellationToken.CanBeCanceled)
        {
            _token = GCHandle.Alloc(cancellationToken); // boxed: the native side holds it by pointer
            options->abort = &ShouldAbort;
            options->abort_user_data = (void*)GCHandle.ToIntPtr(_token);
        }
    }

    /// <summary>
    /// The native abort function, for options the native side keeps beyond one call (a pair copies them at
    /// <c>tdm_pair_start</c> and polls them in every step): its <c>user_data</c> must be a <see cref="GCHandle"/> to a
    /// boxed <see cref="CancellationToken"/>, which the owner of those options frees when no call can use it any more.
    /// </summary>
    public static delegate* unmanaged[Cdecl]<void*, int> Function => &ShouldAbort;

    public void Dispose()
    {
        if (_token.IsAllocated)
        {
            _token.Free();
        }
    }

    // Runs on the calling thread between layers; must not unwind.
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int ShouldAbort(void* userData)
    {
        try
        {
            return ((CancellationToken)GCHandle.FromIntPtr((nint)userData).Target!).IsCancellationRequested ? 1 : 0;
        }
        catch
        {
            return 1;
        }
    }
}
