using Tandem.Interop;

namespace Tandem;

/// <summary>
/// Draws tokens from logits with temperature, top-K and top-P, from its own seeded random state
/// (<c>tdm_sampler</c>). Single-threaded. Each draw also reports the temperature-1 statistics of the logits.
/// </summary>
public sealed unsafe class Sampler : IDisposable
{
    private readonly SamplerHandle _handle = new();

    /// <exception cref="ArgumentException">The options are invalid (see <see cref="SamplerOptions"/>).</exception>
    public Sampler(SamplerOptions? options = null)
    {
        Options = options ?? new SamplerOptions();
        try
        {
            tdm_sampler_options native = Options.ToNative();
            nint raw = 0;
            NativeStatus.Check(NativeMethods.tdm_sampler_create(&native, &raw));
            _handle.Attach(raw);
        }
        catch
        {
            _handle.Dispose();
            throw;
        }
    }

    public SamplerOptions Options { get; }

    /// <summary>Draws a token from <paramref name="logits"/> and advances the random state.</summary>
    public int Sample(ReadOnlySpan<float> logits) => Sample(logits, stats: null);

    /// <summary>Draws a token from <paramref name="logits"/>; <paramref name="stats"/> describes the same logits.</summary>
    public int Sample(ReadOnlySpan<float> logits, out TokenStats stats)
    {
        tdm_token_stats native = default;
        native.struct_size = (uint)sizeof(tdm_token_stats);
        int token = Sample(logits, &native);
        stats = TokenStats.FromNative(in native);
        return token;
    }

    /// <summary>Draws a token from the session's last held logit row without copying the logits out.</summary>
    public int Sample(Session session) => Sample(session, stats: null);

    /// <summary>Draws a token from the session's last held logit row; <paramref name="stats"/> describes that row.</summary>
    public int Sample(Session session, out TokenStats stats)
    {
        tdm_token_stats native = default;
        native.struct_size = (uint)sizeof(tdm_token_stats);
        int token = Sample(session, &native);
        stats = TokenStats.FromNative(in native);
        return token;
    }

    /// <summary>Frees the native sampler.</summary>
    public void Dispose() => _handle.Dispose();

    internal int Sample(ReadOnlySpan<float> logits, tdm_token_stats* stats)
    {
        if (logits.IsEmpty)
        {
            throw new ArgumentException("logits is empty", nameof(logits));
        }
        using var lease = new HandleLease(_handle, nameof(Sampler));
        int token;
        fixed (float* p = logits)
        {
            NativeStatus.Check(NativeMethods.tdm_sampler_sample(lease.Pointer, p, (ulong)logits.Length, &token, stats));
        }
        return token;
    }

    /// <summary>The generator's path: no managed copy of the statistics unless asked.</summary>
    internal int Sample(Session session, tdm_token_stats* stats)
    {
        ArgumentNullException.ThrowIfNull(session);
        using var lease = new HandleLease(_handle, nameof(Sampler));
        using var sessionLease = session.Lease();
        int token;
        NativeStatus.Check(NativeMethods.tdm_sampler_sample_session(lease.Pointer, sessionLease.Pointer, &token, stats));
        return token;
    }
}
