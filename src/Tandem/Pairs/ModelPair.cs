using Tandem.Interop;

namespace Tandem;

/// <summary>
/// A small and a large <see cref="Model"/> that share a tokenizer, decoding together: speculative decoding, R-Stitch
/// or EAD (<see cref="PairMode"/>), with per-token uncertainty and a routing policy that may be written in C#. Each
/// model has its own session (KV cache); the native core keeps both in step with the committed sequence.
/// </summary>
/// <remarks>
/// A pair runs one generation at a time: when a <see cref="PairGeneration"/> starts (its enumeration begins, or
/// <see cref="PairGeneration.RunToEnd"/> is called), one started earlier on the same pair can no longer step (it
/// throws <see cref="InvalidOperationException"/>). Calls are serialized internally, so members may be called from any
/// thread. The pair keeps both models' weights alive; disposing a <see cref="Model"/> while its pair is open is
/// allowed. After <see cref="Dispose"/> every member throws <see cref="ObjectDisposedException"/>.
/// </remarks>
public sealed unsafe class ModelPair : IDisposable
{
    private readonly PairHandle _handle;
    private PairGeneration? _current;

    private ModelPair(PairHandle handle, Model small, Model large, SessionOptions sessionOptions)
    {
        _handle = handle;
        Small = small;
        Large = large;
        SessionOptions = sessionOptions;
    }

    /// <summary>The small model (drafts, or writes by default under routing).</summary>
    public Model Small { get; }

    /// <summary>The large model.</summary>
    public Model Large { get; }

    /// <summary>The options both sessions were created with.</summary>
    public SessionOptions SessionOptions { get; }

    /// <summary>Serializes the native calls of the pair and of its generations (a pair is single-threaded).</summary>
    internal object Gate { get; } = new();

    /// <summary>Pairs two models, each with its own session created with <paramref name="sessionOptions"/>.</summary>
    /// <exception cref="TandemException">With <see cref="TandemStatus.InvalidModel"/>, naming the first difference,
    /// when the models' vocabularies or tokenizers differ.</exception>
    /// <exception cref="ObjectDisposedException">A model has been disposed.</exception>
    public static ModelPair Create(Model small, Model large, SessionOptions? sessionOptions = null)
    {
        ArgumentNullException.ThrowIfNull(small);
        ArgumentNullException.ThrowIfNull(large);
        sessionOptions ??= new SessionOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(sessionOptions.KvCapacity, nameof(sessionOptions.KvCapacity));
        ArgumentOutOfRangeException.ThrowIfNegative(sessionOptions.Threads, nameof(sessionOptions.Threads));

        tdm_session_options native;
        NativeMethods.tdm_session_options_init(&native);
        native.kv_capacity = (uint)sessionOptions.KvCapacity;
        native.threads = sessionOptions.Threads;

        using var smallLease = new HandleLease(small.Handle, nameof(Model));
        using var largeLease = new HandleLease(large.Handle, nameof(Model));
        var handle = new PairHandle();
        try
        {
            nint raw = 0;
            NativeStatus.Check(NativeMethods.tdm_pair_create(smallLease.Pointer, largeLease.Pointer, &native, &raw));
            handle.Attach(raw, small.Handle, large.Handle);
            return new ModelPair(handle, small, large, sessionOptions);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Prepares a generation that continues <paramref name="prompt"/>; it runs when enumerated (streaming, with
    /// <c>await foreach</c>) or with <see cref="PairGeneration.RunToEnd"/>, once.
    /// </summary>
    /// <param name="prompt">At least one token id (copied).</param>
    /// <param name="options">Mode, sampling, stop conditions and policy; null for the defaults (R-Stitch, greedy).</param>
    /// <param name="cancellationToken">Stops the generation between forward passes.</param>
    /// <exception cref="ArgumentException">The prompt is empty or an option is invalid.</exception>
    public PairGeneration GenerateAsync(ReadOnlySpan<int> prompt, PairOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (prompt.IsEmpty)
        {
            throw new ArgumentException("the prompt has no tokens", nameof(prompt));
        }
        options ??= new PairOptions();
        options.Validate();
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        return new PairGeneration(this, prompt.ToArray(), options, cancellationToken);
    }

    /// <summary>Prepares a generation that continues <paramref name="prompt"/>; see the span overload.</summary>
    public PairGeneration GenerateAsync(IReadOnlyList<int> prompt, PairOptions? options = null, CancellationToken cancellationToken = default) =>
        GenerateAsync(Tokens.AsSpan(prompt), options, cancellationToken);

    /// <summary>The committed sequence of the latest generation, prompt included (empty before any).</summary>
    public int[] CommittedTokens()
    {
        lock (Gate)
        {
            using var lease = new HandleLease(_handle, nameof(ModelPair));
            ulong length;
            NativeStatus.Check(NativeMethods.tdm_pair_tokens(lease.Pointer, null, 0, &length));
            var tokens = new int[checked((int)length)];
            fixed (int* p = tokens)
            {
                NativeStatus.Check(NativeMethods.tdm_pair_tokens(lease.Pointer, p, (ulong)tokens.Length, &length));
            }
            return tokens;
        }
    }

    /// <summary>
    /// Tokens in <paramref name="model"/>'s KV cache. Between steps it never exceeds the committed length: a model
    /// that has not run since other tokens were committed catches up lazily, before it next runs.
    /// </summary>
    public int CacheLength(PairModelKind model)
    {
        if (!Enum.IsDefined(model))
        {
            throw new ArgumentOutOfRangeException(nameof(model), model, "not a model of the pair");
        }
        lock (Gate)
        {
            using var lease = new HandleLease(_handle, nameof(ModelPair));
            nint session = 0;
            NativeStatus.Check(NativeMethods.tdm_pair_session(lease.Pointer, (int)model, &session));
            ulong length;
            NativeStatus.Check(NativeMethods.tdm_session_length(session, &length));
            return checked((int)length);
        }
    }

    /// <summary>Frees both sessions (and the models' weights if the pair was their last user).</summary>
    public void Dispose()
    {
        lock (Gate)
        {
            _current?.Release();
            _current = null;
            _handle.Dispose();
        }
    }

    /// <summary>
    /// Under <see cref="Gate"/>: makes <paramref name="generation"/> the one that may step, before its
    /// <c>tdm_pair_start</c>, which clears both caches: the previous generation cannot continue even if that start
    /// fails, so its callbacks are released here.
    /// </summary>
    internal void MakeCurrent(PairGeneration generation)
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        if (_current != generation)
        {
            _current?.Release();
            _current = generation;
        }
    }

    /// <summary>Under <see cref="Gate"/>: the native pair for a call on behalf of <paramref name="generation"/>.</summary>
    /// <exception cref="ObjectDisposedException">The pair has been disposed.</exception>
    /// <exception cref="InvalidOperationException">A later generation started on this pair.</exception>
    internal HandleLease LeaseFor(PairGeneration generation)
    {
        var lease = new HandleLease(_handle, nameof(ModelPair));
        if (_current != generation)
        {
            lease.Dispose();
            throw new InvalidOperationException("this generation was superseded by a later Generate on the same ModelPair");
        }
        return lease;
    }
}
