using Tandem.Interop;

namespace Tandem;

/// <summary>
/// One sequence on a <see cref="Model"/>: its KV cache and its last logits. Single-threaded: call it from one
/// thread at a time. It keeps its model's weights alive, so it may outlive the <see cref="Model"/> object.
/// </summary>
/// <remarks>
/// Token spans are pinned and passed to the native core without a copy. After <see cref="Dispose"/> every member
/// throws <see cref="ObjectDisposedException"/>.
/// </remarks>
public sealed unsafe class Session : IDisposable
{
    private readonly SessionHandle _handle;
    private readonly ModelInfo _model;

    internal Session(Model model, SessionOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(options.KvCapacity, nameof(options.KvCapacity));
        ArgumentOutOfRangeException.ThrowIfNegative(options.Threads, nameof(options.Threads));
        _model = model.Info;
        Options = options;

        tdm_session_options native;
        NativeMethods.tdm_session_options_init(&native);
        native.kv_capacity = (uint)options.KvCapacity;
        native.threads = options.Threads;

        _handle = new SessionHandle();
        try
        {
            using var modelLease = new HandleLease(model.Handle, nameof(Model));
            nint raw = 0;
            NativeStatus.Check(NativeMethods.tdm_session_create(modelLease.Pointer, &native, &raw));
            _handle.Attach(raw, model.Handle);
            ulong capacity;
            NativeStatus.Check(NativeMethods.tdm_session_capacity(raw, &capacity));
            Capacity = checked((int)capacity);
        }
        catch
        {
            _handle.Dispose();
            throw;
        }
    }

    /// <summary>The options the session was created with.</summary>
    public SessionOptions Options { get; }

    /// <summary>
    /// The context limit: the smaller of the KV capacity and the model's max_position_embeddings. Fixed for the
    /// life of the session.
    /// </summary>
    public int Capacity { get; }

    /// <summary>Which limit <see cref="Capacity"/> is, in words, for messages (e.g. "the model's max_position_embeddings").</summary>
    public string ContextLimitSource => Capacity < _model.ContextLength
        ? $"the session's KV capacity (the model's max_position_embeddings is {_model.ContextLength})"
        : "the model's max_position_embeddings";

    /// <summary>Columns of every logit row.</summary>
    public int VocabSize => _model.VocabSize;

    /// <summary>Tokens currently in the KV cache.</summary>
    public int Length
    {
        get
        {
            using var lease = Lease();
            return LengthOf(lease.Pointer);
        }
    }

    /// <summary>
    /// Logit rows held: 0 before the first forward pass and after <see cref="Truncate"/>, 1 after a
    /// <see cref="Decode"/> or a plain <c>Prefill</c>, n after a prefill of n tokens with
    /// <see cref="PrefillOptions.AllLogits"/>.
    /// </summary>
    public int LogitRows
    {
        get
        {
            using var lease = Lease();
            ulong rows, vocab;
            NativeStatus.Check(NativeMethods.tdm_session_logits_shape(lease.Pointer, &rows, &vocab));
            return checked((int)rows);
        }
    }

    internal SessionHandle Handle => _handle;

    /// <summary>Appends <paramref name="tokens"/> and runs them through the model as one batch.</summary>
    /// <param name="tokens">At least one token id in [0, <see cref="VocabSize"/>).</param>
    /// <param name="options">Which logits to keep and the attention method.</param>
    /// <param name="cancellationToken">Polled between layers; on cancellation nothing is appended.</param>
    /// <exception cref="ContextFullException">The tokens do not fit; nothing is appended.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A token id is out of range; nothing is appended.</exception>
    public void Prefill(ReadOnlySpan<int> tokens, PrefillOptions? options = null, CancellationToken cancellationToken = default)
    {
        RequireTokens(tokens);
        cancellationToken.ThrowIfCancellationRequested();
        using var lease = Lease();

        tdm_prefill_options native;
        NativeMethods.tdm_prefill_options_init(&native);
        (options ?? new PrefillOptions()).WriteTo(&native, _model, out float[]? thresholds);
        using var abort = new AbortCallback(cancellationToken, &native);
        fixed (int* p = tokens)
        fixed (float* t = thresholds)
        {
            native.xattn_thresholds = t;
            NativeStatus.Check(NativeMethods.tdm_session_prefill(lease.Pointer, p, (ulong)tokens.Length, &native), cancellationToken);
        }
    }

    /// <summary>Appends <paramref name="tokens"/> (e.g. from <see cref="TandemTokenizer.Encode"/>); see the span overload.</summary>
    public void Prefill(IReadOnlyList<int> tokens, PrefillOptions? options = null, CancellationToken cancellationToken = default) =>
        Prefill(Tokens.AsSpan(tokens), options, cancellationToken);

    /// <summary>Appends one token on the fast single-token path; afterwards one logit row is held.</summary>
    /// <exception cref="ContextFullException">The session is at its context limit.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The token id is out of range.</exception>
    public void Decode(int token)
    {
        using var lease = Lease();
        NativeStatus.Check(NativeMethods.tdm_session_decode(lease.Pointer, token));
    }

    /// <summary>Rolls the KV cache back to its first <paramref name="length"/> tokens and drops the held logits.</summary>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        using var lease = Lease();
        NativeStatus.Check(NativeMethods.tdm_session_truncate(lease.Pointer, (ulong)length));
    }

    /// <summary>Copies logit row <paramref name="row"/> (0 = the oldest held) into <paramref name="destination"/>.</summary>
    /// <param name="row">In [0, <see cref="LogitRows"/>).</param>
    /// <param name="destination">At least <see cref="VocabSize"/> floats; the first <see cref="VocabSize"/> are written.</param>
    public void GetLogits(int row, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        using var lease = Lease();
        fixed (float* p = destination)
        {
            NativeStatus.Check(NativeMethods.tdm_session_get_logits(lease.Pointer, (ulong)row, p, (ulong)destination.Length));
        }
    }

    /// <summary>A copy of logit row <paramref name="row"/>.</summary>
    public float[] GetLogits(int row)
    {
        var logits = new float[VocabSize];
        GetLogits(row, logits);
        return logits;
    }

    /// <summary>Entropy, LogTokU and top-K statistics of held logit row <paramref name="row"/> at temperature 1.</summary>
    /// <param name="row">In [0, <see cref="LogitRows"/>).</param>
    /// <param name="topK">The LogTokU K and the length of the top lists, in [1, <see cref="Uncertainty.MaxTopK"/>].</param>
    public TokenStats Stats(int row, int topK = Uncertainty.DefaultTopK)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        Uncertainty.RequireTopK(topK);
        using var lease = Lease();
        tdm_token_stats stats = default;
        stats.struct_size = (uint)sizeof(tdm_token_stats);
        NativeStatus.Check(NativeMethods.tdm_session_stats(lease.Pointer, (ulong)row, (uint)topK, &stats));
        return TokenStats.FromNative(in stats);
    }

    /// <summary>
    /// Appends <paramref name="tokens"/> and reports, for each, the distribution that predicted it. The first token
    /// is predicted by the logits held before the call; in a fresh session nothing predicted it and its values are
    /// <see langword="null"/>.
    /// </summary>
    /// <param name="tokens">At least one token id.</param>
    /// <param name="topK">The LogTokU K, in [1, <see cref="Uncertainty.MaxTopK"/>].</param>
    /// <param name="cancellationToken">Polled between layers; on cancellation nothing is appended.</param>
    /// <exception cref="ContextFullException">The tokens do not fit; nothing is appended.</exception>
    public ScoredToken[] Score(ReadOnlySpan<int> tokens, int topK = Uncertainty.DefaultTopK, CancellationToken cancellationToken = default) =>
        Score(tokens, new PrefillOptions(), topK, cancellationToken);

    /// <summary>
    /// Scores <paramref name="tokens"/> with the attention of <paramref name="options"/> (e.g. a block-sparse prefill;
    /// <see cref="PrefillOptions.AllLogits"/> is implied); see the overload without options.
    /// </summary>
    public ScoredToken[] Score(ReadOnlySpan<int> tokens, PrefillOptions options, int topK = Uncertainty.DefaultTopK,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        RequireTokens(tokens);
        Uncertainty.RequireTopK(topK);
        cancellationToken.ThrowIfCancellationRequested();
        using var lease = Lease();

        tdm_prefill_options native;
        NativeMethods.tdm_prefill_options_init(&native);
        options.WriteTo(&native, _model, out float[]? thresholds);
        using var abort = new AbortCallback(cancellationToken, &native);
        var entries = new tdm_score_entry[tokens.Length];
        fixed (int* p = tokens)
        fixed (tdm_score_entry* e = entries)
        fixed (float* t = thresholds)
        {
            native.xattn_thresholds = t;
            NativeStatus.Check(
                NativeMethods.tdm_session_score(lease.Pointer, p, (ulong)tokens.Length, (uint)topK, e, &native), cancellationToken);
        }

        var scored = new ScoredToken[tokens.Length];
        for (int i = 0; i < scored.Length; i++)
        {
            ref readonly tdm_score_entry entry = ref entries[i];
            scored[i] = new ScoredToken(tokens[i], Defined(entry.logprob), Defined(entry.entropy), Defined(entry.au), Defined(entry.eu));
        }
        return scored;
    }

    /// <summary>Scores <paramref name="tokens"/> (e.g. from <see cref="TandemTokenizer.Encode"/>); see the span overload.</summary>
    public ScoredToken[] Score(IReadOnlyList<int> tokens, int topK = Uncertainty.DefaultTopK, CancellationToken cancellationToken = default) =>
        Score(Tokens.AsSpan(tokens), topK, cancellationToken);

    /// <summary>Scores <paramref name="tokens"/> with the attention of <paramref name="options"/>; see the span overload.</summary>
    public ScoredToken[] Score(IReadOnlyList<int> tokens, PrefillOptions options, int topK = Uncertainty.DefaultTopK,
        CancellationToken cancellationToken = default) =>
        Score(Tokens.AsSpan(tokens), options, topK, cancellationToken);

    /// <summary>
    /// The attention density of the last prefill or score (decode steps do not change it): per layer and query head,
    /// the fraction of causal (query block, key block) pairs computed, 1 for dense attention.
    /// </summary>
    /// <exception cref="TandemException">No prefill has run yet (<see cref="TandemStatus.InvalidState"/>).</exception>
    public AttentionDensity AttentionDensity
    {
        get
        {
            using var lease = Lease();
            var values = new float[_model.Layers * _model.Heads];
            float mean;
            fixed (float* v = values)
            {
                NativeStatus.Check(NativeMethods.tdm_session_attention_density(lease.Pointer, v, (ulong)values.Length, &mean));
            }
            return new AttentionDensity(values, _model.Heads, mean);
        }
    }

    /// <summary>Frees the KV cache (and the model's weights if this was their last user).</summary>
    public void Dispose() => _handle.Dispose();

    internal HandleLease Lease() => new(_handle, nameof(Session));

    private static int LengthOf(nint session)
    {
        ulong length;
        NativeStatus.Check(NativeMethods.tdm_session_length(session, &length));
        return checked((int)length);
    }

    private static void RequireTokens(ReadOnlySpan<int> tokens)
    {
        if (tokens.IsEmpty)
        {
            throw new ArgumentException("no tokens: a forward pass needs at least one", nameof(tokens));
        }
    }

    private static double? Defined(float value) => float.IsNaN(value) ? null : value;
}
