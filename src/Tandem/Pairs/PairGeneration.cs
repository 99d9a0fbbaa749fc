using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Tandem.Interop;

namespace Tandem;

/// <summary>
/// One generation of a <see cref="ModelPair"/>: enumerate it to stream every proposal as a <see cref="PairToken"/>
/// (rejected and discarded ones included, in order), or call <see cref="RunToEnd"/>. It runs once.
/// </summary>
/// <remarks>
/// <para>Each native step (one token, or one draft-and-verify round) runs on the thread pool when streaming, so a
/// caller's synchronization context stays free; the cancellation tokens (the one given to
/// <see cref="ModelPair.GenerateAsync(ReadOnlySpan{int}, PairOptions?, CancellationToken)"/> and the enumerator's) are
/// checked between steps and polled by the native core between forward passes, and surface as
/// <see cref="OperationCanceledException"/>.</para>
/// <para>A routing policy that throws stops the generation with that same exception (rethrown with its original
/// stack after the native step returned; nothing unwinds through native code); the pair stays usable.</para>
/// <para><see cref="Stats"/> and <see cref="IsFinished"/> are set once the generation ends. A later
/// <c>Generate</c> on the same pair supersedes this generation: it can no longer step.</para>
/// </remarks>
public sealed unsafe class PairGeneration : IAsyncEnumerable<PairToken>
{
    private readonly ModelPair _pair;
    private readonly int[] _prompt;
    private readonly CancellationToken _cancellationToken;
    private readonly List<int> _output = [];
    private int _claimed;

    // Native resources from the start until Release: the native pair holds pointers to them between steps.
    private RouteCallback? _route;
    private GCHandle _abort;
    private CancellationTokenSource? _linked;
    private tdm_token_record[] _records = [];

    internal PairGeneration(ModelPair pair, int[] prompt, PairOptions options, CancellationToken cancellationToken)
    {
        _pair = pair;
        _prompt = prompt;
        Options = options;
        _cancellationToken = cancellationToken;
    }

    /// <summary>The options of this generation.</summary>
    public PairOptions Options { get; }

    /// <summary>The prompt token ids.</summary>
    public IReadOnlyList<int> Prompt => _prompt;

    /// <summary>The committed token ids generated so far (after the prompt), in order.</summary>
    public IReadOnlyList<int> Output => _output;

    /// <summary>Whether the generation stopped normally: end-of-sequence, <see cref="PairOptions.MaxNewTokens"/> or a
    /// full context.</summary>
    public bool IsFinished { get; private set; }

    /// <summary>Run statistics, once the generation has ended (also after a failure or cancellation, unless the pair
    /// was disposed or started another generation first); null before.</summary>
    public PairStats? Stats { get; private set; }

    /// <summary>Runs the whole generation on the calling thread and returns every record.</summary>
    /// <exception cref="InvalidOperationException">The generation already ran or is running, or was superseded.</exception>
    /// <exception cref="OperationCanceledException">A cancellation token was cancelled.</exception>
    public IReadOnlyList<PairToken> RunToEnd(CancellationToken cancellationToken = default)
    {
        Claim();
        CancellationToken token = Link(cancellationToken);
        var records = new List<PairToken>();
        try
        {
            Start(token);
            while (!IsFinished)
            {
                records.AddRange(Step(token));
            }
        }
        finally
        {
            End();
        }
        return records;
    }

    /// <summary>Streams the records as the generation runs.</summary>
    /// <exception cref="InvalidOperationException">The generation already ran or is running.</exception>
    public IAsyncEnumerator<PairToken> GetAsyncEnumerator(CancellationToken cancellationToken = default)
    {
        Claim();
        return StreamAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
    }

    private async IAsyncEnumerable<PairToken> StreamAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        CancellationToken token = Link(cancellationToken);
        try
        {
            await Task.Run(() => Start(token), token).ConfigureAwait(false);
            while (!IsFinished)
            {
                PairToken[] step = await Task.Run(() => Step(token), token).ConfigureAwait(false);
                foreach (var record in step)
                {
                    yield return record;
                }
            }
        }
        finally
        {
            End();
        }
    }

    private void Claim()
    {
        if (Interlocked.Exchange(ref _claimed, 1) != 0)
        {
            throw new InvalidOperationException("a PairGeneration runs once; call ModelPair.Generate again for another run");
        }
    }

    private CancellationToken Link(CancellationToken other)
    {
        if (!other.CanBeCanceled || other == _cancellationToken)
        {
            return _cancellationToken;
        }
        if (!_cancellationToken.CanBeCanceled)
        {
            return other;
        }
        _linked = CancellationTokenSource.CreateLinkedTokenSource(_cancellationToken, other);
        return _linked.Token;
    }

    private void Start(CancellationToken token)
    {
        token.ThrowIfCancellationRequested();
        tdm_pair_options native = Options.ToNative();
        tdm_route_policy policy; // copied by tdm_pair_start, so the stack is long enough
        if (Options.Policy is INativeRoutingPolicy builtIn && builtIn.TryDescribe(Options.Mode, out policy))
        {
            native.policy = &policy;
        }
        else if (Options.Policy is not null)
        {
            // The callback decides; the struct still sets the window of the entropy mean the callback is given.
            NativeMethods.tdm_route_policy_init(&policy, native.mode);
            policy.window = (uint)Options.Policy.EntropyWindow;
            native.policy = &policy;
            _route = new RouteCallback(Options.Policy);
            _route.Attach(&native);
        }
        if (token.CanBeCanceled)
        {
            _abort = GCHandle.Alloc(token); // boxed: the native pair polls it by pointer in every step
            native.abort = AbortCallback.Function;
            native.abort_user_data = (void*)GCHandle.ToIntPtr(_abort);
        }

        lock (_pair.Gate)
        {
            _pair.MakeCurrent(this);
            using var lease = _pair.LeaseFor(this);
            tdm_status status;
            fixed (int* prompt = _prompt)
            {
                status = NativeMethods.tdm_pair_start(lease.Pointer, prompt, (ulong)_prompt.Length, &native);
            }
            NativeStatus.Check(status, token);
            ulong capacity;
            NativeStatus.Check(NativeMethods.tdm_pair_max_records(lease.Pointer, &capacity));
            _records = new tdm_token_record[checked((int)capacity)];
        }
    }

    private PairToken[] Step(CancellationToken token)
    {
        token.ThrowIfCancellationRequested();
        ulong count;
        byte finished;
        lock (_pair.Gate)
        {
            using var lease = _pair.LeaseFor(this);
            tdm_status status;
            fixed (tdm_token_record* records = _records)
            {
                status = NativeMethods.tdm_pair_step(lease.Pointer, records, (ulong)_records.Length, &count, &finished);
            }
            if (status == tdm_status.TDM_ERR_CALLBACK)
            {
                _route?.ThrowIfFailed(); // the policy's own exception; otherwise the status below says what failed
            }
            NativeStatus.Check(status, token);
        }

        var tokens = new PairToken[checked((int)count)];
        for (int i = 0; i < tokens.Length; i++)
        {
            ref readonly tdm_token_record r = ref _records[i];
            tokens[i] = new PairToken(r.token, (PairModelKind)r.model, (TokenOutcome)r.outcome, checked((long)r.position),
                r.entropy, r.entropy_normalized, r.max_prob, r.au, r.eu);
            if (tokens[i].Committed)
            {
                _output.Add(r.token);
            }
        }
        IsFinished = finished != 0;
        if (tokens.Length == 0 && !IsFinished)
        {
            throw new TandemException(TandemStatus.Internal, "a pair step returned no record and did not finish");
        }
        return tokens;
    }

    /// <summary>Reads the statistics while the native pair still describes this generation, then releases.</summary>
    private void End()
    {
        lock (_pair.Gate)
        {
            try
            {
                using var lease = _pair.LeaseFor(this);
                tdm_pair_stats stats = default;
                stats.struct_size = (uint)sizeof(tdm_pair_stats);
                if (NativeMethods.tdm_pair_get_stats(lease.Pointer, &stats) == tdm_status.TDM_OK)
                {
                    Stats = PairStats.FromNative(in stats);
                }
            }
            catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException)
            {
                // Disposed or superseded (or never started): there are no statistics of this generation to read.
            }
            Release();
        }
        // Only here: a superseded generation may still check its token until its own run ends.
        _linked?.Dispose();
        _linked = null;
    }

    /// <summary>
    /// Frees what the native pair points at (route callback, abort token). Called, under the pair's gate, when the
    /// generation ends, when a later one supersedes it and when the pair is disposed: after each, no native call can
    /// reach these pointers any more.
    /// </summary>
    internal void Release()
    {
        _route?.Dispose();
        _route = null;
        if (_abort.IsAllocated)
        {
            _abort.Free();
        }
    }
}
