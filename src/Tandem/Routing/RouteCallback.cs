using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Tandem.Interop;

namespace Tandem;

/// <summary>
/// Runs a managed <see cref="IRoutingPolicy"/> as the native <c>tdm_route_fn</c>: the one
/// <see cref="UnmanagedCallersOnlyAttribute"/> trampoline, reached through a <see cref="GCHandle"/> in <c>route_user_data</c>.
/// </summary>
/// <remarks>
/// The native pair copies the callback and its user data at <c>tdm_pair_start</c> and calls them during every later
/// step, so the handle must outlive one native call: the generation that attached it frees it once the pair can no
/// longer call it (the generation ended, was superseded or the pair was disposed). No exception crosses into native
/// code: a throwing policy, or one that returns a value outside <see cref="RouteDecision"/>, makes the trampoline
/// store the exception and return -1, the native step fails with <c>TDM_ERR_CALLBACK</c> and leaves the pair as it
/// was, and <see cref="ThrowIfFailed"/> rethrows the original exception on the caller's side.
/// </remarks>
internal sealed unsafe class RouteCallback : IDisposable
{
    private readonly IRoutingPolicy _policy;
    private GCHandle _self;
    private ExceptionDispatchInfo? _failure;

    public RouteCallback(IRoutingPolicy policy)
    {
        _policy = policy;
        _self = GCHandle.Alloc(this);
    }

    /// <summary>Points the options' <c>route</c> and <c>route_user_data</c> at this policy.</summary>
    public void Attach(tdm_pair_options* options)
    {
        ObjectDisposedException.ThrowIf(!_self.IsAllocated, this);
        options->route = &Route;
        options->route_user_data = (void*)GCHandle.ToIntPtr(_self);
    }

    /// <summary>Rethrows, with its original stack, the exception the policy raised during the last native call.</summary>
    public void ThrowIfFailed()
    {
        var failure = _failure;
        _failure = null;
        failure?.Throw();
    }

    public void Dispose()
    {
        if (_self.IsAllocated)
        {
            _self.Free();
        }
    }

    // Runs on the thread of tdm_pair_step, once per routing decision; must not unwind.
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Route(tdm_route_info* info, void* userData)
    {
        RouteCallback? callback = null;
        try
        {
            callback = (RouteCallback)GCHandle.FromIntPtr((nint)userData).Target!;
            var context = RouteContext.FromNative(in *info);
            RouteDecision decision = callback._policy.Decide(in context);
            if (!Enum.IsDefined(decision))
            {
                throw new InvalidOperationException(
                    $"the routing policy {callback._policy.GetType().Name} returned {(int)decision}, which is not a {nameof(RouteDecision)}");
            }
            return (int)decision;
        }
        catch (Exception e)
        {
            if (callback is not null)
            {
                callback._failure = ExceptionDispatchInfo.Capture(e);
            }
            return -1;
        }
    }
}
