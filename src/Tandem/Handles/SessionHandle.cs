using System.Runtime.InteropServices;
using Tandem.Interop;

namespace Tandem;

/// <summary>
/// Owns a <c>tdm_session*</c> and holds a reference on its model's handle, so that disposing a
/// <see cref="Model"/> while sessions are open never frees the weights under them: the model is freed with
/// its last session.
/// </summary>
internal sealed class SessionHandle : SafeHandle
{
    private ModelHandle? _model;

    public SessionHandle()
        : base(invalidHandleValue: 0, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == 0;

    /// <summary>Takes a reference on <paramref name="model"/>, released when this handle is.</summary>
    internal void Attach(nint session, ModelHandle model)
    {
        bool added = false;
        model.DangerousAddRef(ref added);
        _model = model;
        SetHandle(session);
    }

    protected override bool ReleaseHandle()
    {
        NativeMethods.tdm_session_free(handle);
        _model?.DangerousRelease();
        _model = null;
        return true;
    }
}
