using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Tandem.Interop;

namespace Tandem;

/// <summary>
/// A loaded Hugging Face model folder (config.json, safetensors, tokenizer.json). Immutable and thread-safe:
/// any number of <see cref="Session"/>s may run on it from any threads. Disposing it while sessions are open is
/// allowed; the weights are freed with the last of them.
/// </summary>
public sealed unsafe class Model : IDisposable
{
    private readonly ModelHandle _handle;
    private readonly Lazy<TandemTokenizer> _tokenizer;

    private Model(ModelHandle handle, string path, ModelOptions options)
    {
        _handle = handle;
        Path = path;
        Options = options;
        Info = ReadInfo(handle);
        // Lazily: sessions driven by token ids need no tokenizer, and a folder may lack tokenizer.json.
        _tokenizer = new Lazy<TandemTokenizer>(() => TandemTokenizer.Load(path), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The absolute path of the model folder.</summary>
    public string Path { get; }

    /// <summary>The options the model was loaded with.</summary>
    public ModelOptions Options { get; }

    /// <summary>Shape and metadata read from the model at load.</summary>
    public ModelInfo Info { get; }

    /// <summary>
    /// The tokenizer of the same folder (tokenizer.json, or tokenizer.model for SentencePiece), loaded on first use.
    /// </summary>
    public TandemTokenizer Tokenizer => _tokenizer.Value;

    internal ModelHandle Handle => _handle;

    /// <summary>Loads a Hugging Face model folder.</summary>
    /// <param name="path">The model folder.</param>
    /// <param name="options">Device and threads; <see langword="null"/> for the defaults.</param>
    /// <param name="progress">Receives bytes loaded, synchronously on the loading thread.</param>
    /// <param name="cancellationToken">Stops the load between progress reports.</param>
    /// <exception cref="TandemException">With <see cref="TandemException.Status"/> <see cref="TandemStatus.NotFound"/>
    /// for a missing folder or config.json, <see cref="TandemStatus.InvalidModel"/> for malformed files,
    /// <see cref="TandemStatus.Unsupported"/>, <see cref="TandemStatus.BackendUnavailable"/>, ...</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled during the load.</exception>
    public static Model Load(string path, ModelOptions? options = null, IProgress<LoadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new ModelOptions();
        cancellationToken.ThrowIfCancellationRequested();
        string fullPath = System.IO.Path.GetFullPath(path);
        byte[] utf8Path = Utf8.ToNullTerminated(fullPath, nameof(path));

        tdm_model_options native;
        NativeMethods.tdm_model_options_init(&native);
        native.device = (int)options.Device;
        native.device_index = options.DeviceIndex;
        native.threads = options.Threads;

        var callbackState = new LoadCallbackState(progress, cancellationToken);
        GCHandle stateHandle = default;
        if (progress is not null || cancellationToken.CanBeCanceled)
        {
            stateHandle = GCHandle.Alloc(callbackState);
            native.progress = &OnProgress;
            native.progress_user_data = (void*)GCHandle.ToIntPtr(stateHandle);
        }

        var handle = new ModelHandle();
        try
        {
            nint raw = 0;
            tdm_status status;
            fixed (byte* p = utf8Path)
            {
                status = NativeMethods.tdm_model_load(p, &native, &raw);
            }
            if (status == tdm_status.TDM_ERR_CANCELLED)
            {
                // The callback stopped the load: because the progress sink threw, or because of the token.
                callbackState.Failure?.Throw();
            }
            NativeStatus.Check(status, cancellationToken);
            handle.Attach(raw);
            return new Model(handle, fullPath, options);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
        finally
        {
            if (stateHandle.IsAllocated)
            {
                stateHandle.Free();
            }
        }
    }

    /// <summary>Creates a session (one sequence with its own KV cache) on this model.</summary>
    public Session CreateSession(SessionOptions? options = null) => new(this, options ?? new SessionOptions());

    /// <summary>
    /// Streams a continuation of <paramref name="prompt"/>, tokenized as the model's tokenizer.json says (its
    /// post-processor decides BOS). See <see cref="GenerationOptions"/> for when it stops.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt is empty or is not valid UTF-16; an option is invalid.</exception>
    /// <exception cref="ContextFullException">The prompt leaves no room in the context for a generated token.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public IAsyncEnumerable<GeneratedToken> GenerateAsync(string prompt, GenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Length == 0)
        {
            throw new ArgumentException("the prompt is empty", nameof(prompt));
        }
        Utf8.RequireWellFormed(prompt, nameof(prompt));
        options ??= new GenerationOptions();
        options.Validate();
        ThrowIfDisposed();
        int[] ids = [.. Tokenizer.Encode(prompt)];
        return Generator.RunAsync(this, ids, options, cancellationToken);
    }

    /// <summary>Streams a continuation of explicit prompt token ids (no tokenization of the prompt).</summary>
    public IAsyncEnumerable<GeneratedToken> GenerateAsync(IReadOnlyList<int> promptTokens, GenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(promptTokens);
        if (promptTokens.Count == 0)
        {
            throw new ArgumentException("the prompt has no tokens", nameof(promptTokens));
        }
        options ??= new GenerationOptions();
        options.Validate();
        ThrowIfDisposed();
        return Generator.RunAsync(this, [.. promptTokens], options, cancellationToken);
    }

    /// <summary>
    /// Scores <paramref name="text"/> in a fresh session: for each of its tokens (tokenized as the model's
    /// tokenizer.json says, special tokens only where its post-processor adds them), log p(token | tokens before
    /// it) and the entropy, AU and EU of that prediction. Nothing predicts the first token: its values are null.
    /// </summary>
    /// <exception cref="ArgumentException">The text is empty, is not valid UTF-16 or has no tokens.</exception>
    /// <exception cref="ContextFullException">The text has more tokens than the session's context limit.</exception>
    public ScoredToken[] Score(string text, SessionOptions? sessionOptions = null, int topK = Uncertainty.DefaultTopK,
        CancellationToken cancellationToken = default) =>
        Score(text, new PrefillOptions(), out _, sessionOptions, topK, cancellationToken);

    /// <summary>
    /// Scores <paramref name="text"/> with the attention of <paramref name="prefill"/> (e.g. block-sparse) and reports
    /// the attention density of that prefill; see the overload without options.
    /// </summary>
    public ScoredToken[] Score(string text, PrefillOptions prefill, out AttentionDensity density,
        SessionOptions? sessionOptions = null, int topK = Uncertainty.DefaultTopK, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prefill);
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0)
        {
            throw new ArgumentException("the text is empty", nameof(text));
        }
        Utf8.RequireWellFormed(text, nameof(text));
        ThrowIfDisposed();
        int[] ids = [.. Tokenizer.Encode(text)];
        if (ids.Length == 0)
        {
            throw new ArgumentException("the text has no tokens", nameof(text));
        }
        using var session = CreateSession(sessionOptions);
        var scored = session.Score(ids, prefill, topK, cancellationToken);
        density = session.AttentionDensity;
        return scored;
    }

    /// <summary>Releases this reference to the weights; open sessions keep them until they are disposed.</summary>
    public void Dispose() => _handle.Dispose();

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_handle.IsClosed, this);

    private static ModelInfo ReadInfo(ModelHandle handle)
    {
        tdm_model_info info = default;
        info.struct_size = (uint)sizeof(tdm_model_info);
        using (var lease = new HandleLease(handle, nameof(Model)))
        {
            NativeStatus.Check(NativeMethods.tdm_model_get_info(lease.Pointer, &info));
        }
        // eos_token_ids and architecture live as long as the model; copy them while it certainly does.
        var eos = new int[info.eos_token_count];
        new ReadOnlySpan<int>(info.eos_token_ids, eos.Length).CopyTo(eos);
        return new ModelInfo(
            Architecture: Utf8.ToManaged(info.architecture),
            Layers: checked((int)info.layers),
            HiddenSize: checked((int)info.hidden_size),
            IntermediateSize: checked((int)info.intermediate_size),
            Heads: checked((int)info.heads),
            KvHeads: checked((int)info.kv_heads),
            HeadDim: checked((int)info.head_dim),
            VocabSize: checked((int)info.vocab_size),
            ContextLength: checked((int)info.context_length),
            SlidingWindow: checked((int)info.sliding_window),
            DType: (DType)info.dtype,
            Device: (Device)info.device,
            TieWordEmbeddings: info.tie_word_embeddings != 0,
            RmsNormEps: info.rms_norm_eps,
            RopeTheta: info.rope_theta,
            ParameterCount: checked((long)info.parameter_count),
            BosTokenId: info.bos_token_id >= 0 ? info.bos_token_id : null,
            EosTokenIds: Array.AsReadOnly(eos));
    }

    /// <summary>What the progress trampoline needs; reached through a GCHandle in the native user_data.</summary>
    private sealed class LoadCallbackState(IProgress<LoadProgress>? progress, CancellationToken cancellationToken)
    {
        public IProgress<LoadProgress>? Progress { get; } = progress;

        public CancellationToken CancellationToken { get; } = cancellationToken;

        public ExceptionDispatchInfo? Failure { get; set; }
    }

    // Runs on the loading thread. No exception may unwind into native code: a throwing progress sink stops the
    // load and its exception is rethrown by Load.
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnProgress(ulong done, ulong total, void* userData)
    {
        try
        {
            var state = (LoadCallbackState)GCHandle.FromIntPtr((nint)userData).Target!;
            if (state.CancellationToken.IsCancellationRequested)
            {
                return 1;
            }
            try
            {
                state.Progress?.Report(new LoadProgress((long)done, (long)total));
                return 0;
            }
            catch (Exception e)
            {
                state.Failure = ExceptionDispatchInfo.Capture(e);
                return 1;
            }
        }
        catch
        {
            return 1;
        }
    }
}
