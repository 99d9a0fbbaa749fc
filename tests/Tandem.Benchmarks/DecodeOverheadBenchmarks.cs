using BenchmarkDotNet.Attributes;
using Tandem.Interop;

namespace Tandem.Benchmarks;

/// <summary>
/// The managed overhead of the facade per decode step: each facade call against the raw P/Invoke it wraps, on
/// the same model and in the same state. The difference of a pair is what the facade costs (handle leases,
/// status checks, the records it returns); the native work is identical.
/// </summary>
/// <remarks>
/// Each decode is followed by a truncate back to the prompt, so every iteration decodes at the same position.
/// </remarks>
[MemoryDiagnoser]
public unsafe class DecodeOverheadBenchmarks
{
    private const int Token = 42;

    private Model _model = null!;
    private Session _session = null!;
    private Sampler _sampler = null!;
    private nint _rawSession;
    private nint _rawSampler;
    private int _promptLength;

    [GlobalSetup]
    public void Setup()
    {
        _model = Model.Load(ModelFolder());
        int[] prompt = [.. Enumerable.Range(0, 16).Select(i => (i * 7) % _model.Info.VocabSize)];
        _promptLength = prompt.Length;

        _session = _model.CreateSession();
        _session.Prefill(prompt);
        _sampler = new Sampler(new SamplerOptions(Seed: 1));

        // The raw twins, created and driven through NativeMethods only.
        tdm_session_options sessionOptions;
        NativeMethods.tdm_session_options_init(&sessionOptions);
        nint session;
        Check(NativeMethods.tdm_session_create(_model.Handle.DangerousGetHandle(), &sessionOptions, &session));
        _rawSession = session;
        fixed (int* p = prompt)
        {
            Check(NativeMethods.tdm_session_prefill(_rawSession, p, (ulong)prompt.Length, null));
        }
        tdm_sampler_options samplerOptions;
        NativeMethods.tdm_sampler_options_init(&samplerOptions);
        samplerOptions.seed = 1;
        nint sampler;
        Check(NativeMethods.tdm_sampler_create(&samplerOptions, &sampler));
        _rawSampler = sampler;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMethods.tdm_sampler_free(_rawSampler);
        NativeMethods.tdm_session_free(_rawSession);
        _sampler.Dispose();
        _session.Dispose();
        _model.Dispose();
    }

    [Benchmark(Baseline = true, Description = "raw: decode + truncate")]
    public void RawDecode()
    {
        Check(NativeMethods.tdm_session_decode(_rawSession, Token));
        Check(NativeMethods.tdm_session_truncate(_rawSession, (ulong)_promptLength));
    }

    [Benchmark(Description = "facade: Decode + Truncate")]
    public void FacadeDecode()
    {
        _session.Decode(Token);
        _session.Truncate(_promptLength);
    }

    [Benchmark(Description = "raw: decode + sample with stats + truncate")]
    public int RawDecodeAndSample()
    {
        Check(NativeMethods.tdm_session_decode(_rawSession, Token));
        tdm_token_stats stats = default;
        stats.struct_size = (uint)sizeof(tdm_token_stats);
        int token;
        Check(NativeMethods.tdm_sampler_sample_session(_rawSampler, _rawSession, &token, &stats));
        Check(NativeMethods.tdm_session_truncate(_rawSession, (ulong)_promptLength));
        return token;
    }

    [Benchmark(Description = "facade: Decode + Sample(out TokenStats) + Truncate")]
    public int FacadeDecodeAndSample()
    {
        _session.Decode(Token);
        int token = _sampler.Sample(_session, out _);
        _session.Truncate(_promptLength);
        return token;
    }

    [Benchmark(Description = "raw: session length (no native work)")]
    public ulong RawLength()
    {
        ulong length;
        Check(NativeMethods.tdm_session_length(_rawSession, &length));
        return length;
    }

    [Benchmark(Description = "facade: Length (no native work)")]
    public int FacadeLength() => _session.Length;

    private static void Check(tdm_status status)
    {
        if (status != tdm_status.TDM_OK)
        {
            throw new InvalidOperationException($"native call failed: {status}");
        }
    }

    private static string ModelFolder()
    {
        if (Environment.GetEnvironmentVariable("TANDEM_BENCH_MODEL") is { Length: > 0 } folder)
        {
            return folder;
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Interop.sln")))
            {
                return Path.Combine(dir.FullName, "tests", "fixtures", "llama-f32");
            }
        }
        throw new DirectoryNotFoundException($"no Interop.sln above {AppContext.BaseDirectory}; set TANDEM_BENCH_MODEL");
    }
}
