using System.Runtime.InteropServices;
using Tandem.Interop;

namespace Tandem;

/// <summary>
/// Owns a <c>tdm_pair*</c> and holds a reference on both models' handles, so that disposing either
/// <see cref="Model"/> while the pair is open never frees weights the pair decodes with.
/// </summary>
internal sealed class PairHandle : SafeHandle
{
    private ModelHandle? _small;
    private ModelHandle? _large;

    public PairHandle()
        : base(invalidHandleValue: 0, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == 0;

    /// <summary>
    /// Owns <paramref name="pair"/> from now on and takes a reference on each model handle, released when this handle
    /// is. If a model was disposed meanwhile this throws, and disposing this handle still frees the pair.
    /// </summary>
    internal void Attach(nint pair, ModelHandle small, ModelHandle large)
    {
        SetHandle(pair);
        bool added = false;
        small.DangerousAddRef(ref added);
        _small = added ? small : null;
        added = false;
        large.DangerousAddRef(ref added);
        _large = added ? large : null;
    }

    protected override bool ReleaseHandle()
    {
        NativeMethods.tdm_pair_free(handle);
        _small?.DangerousRelease();
        _large?.DangerousRelease();
        _small = null;
        _large = null;
        return true;
    }
}
