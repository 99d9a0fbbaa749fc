using System.Runtime.InteropServices;
using Tandem.Interop;

namespace Tandem;

/// <summary>Owns a <c>tdm_model*</c>; frees it when the last user (the model or one of its sessions) lets go.</summary>
internal sealed class ModelHandle : SafeHandle
{
    public ModelHandle()
        : base(invalidHandleValue: 0, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == 0;

    internal void Attach(nint model) => SetHandle(model);

    protected override bool ReleaseHandle()
    {
        NativeMethods.tdm_model_free(handle);
        return true;
    }
}
