using Tandem.Tests.Support;

namespace Tandem.Tests.Pairs;

/// <summary>
/// The fixture pair: llama-f32 (small) and mistral-swa-f32 (large) share a tokenizer; random weights, so the outputs
/// differ and the uncertainties are high, which is what the equivalence checks need.
/// </summary>
internal sealed class PairFixture : IDisposable
{
    public PairFixture(SessionOptions? sessionOptions = null)
    {
        Small = Model.Load(Repository.Fixture("llama-f32"));
        Large = Model.Load(Repository.Fixture("mistral-swa-f32"));
        Pair = ModelPair.Create(Small, Large, sessionOptions);
    }

    public Model Small { get; }

    public Model Large { get; }

    public ModelPair Pair { get; }

    /// <summary>Prompts of several lengths from the golden file (the same tokenizer encoded them).</summary>
    public static IReadOnlyList<int[]> Prompts { get; } = [.. Golden.Load("llama-f32").Json.Prompts.Select(p => p.Ids)];

    /// <summary>Greedy options that run a fixed number of tokens (the random models may emit EOS at any time).</summary>
    public static PairOptions Greedy(PairMode mode, int tokens = 20, IRoutingPolicy? policy = null) =>
        new(Mode: mode, MaxNewTokens: tokens, StopAtEos: false, Policy: policy);

    public (IReadOnlyList<PairToken> Records, int[] Output, PairStats Stats) Run(int[] prompt, PairOptions options)
    {
        var generation = Pair.GenerateAsync(prompt, options);
        var records = generation.RunToEnd();
        return (records, [.. generation.Output], generation.Stats!);
    }

    public void Dispose()
    {
        Pair.Dispose();
        Small.Dispose();
        Large.Dispose();
    }
}
