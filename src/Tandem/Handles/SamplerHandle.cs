using System.Runtime.InteropServices;
using Tandem.Interop;

namespace Tandem;

/// <summary>Owns a <c>tdm_sampler*</c>.</summary>
internal sealed class SamplerHandle : SafeHandle
{
    public SamplerHandle()
        : base(invalidHandleValue: 0, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == 0;

    internal void Attach(nint sampler) => SetHandle(sampler);

    protected override bool ReleaseHandle()
    {
        NativeMethods.tdm_sampler_free(handle);
        return true;
    }
}
