using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tandem.Tests.Support;

/// <summary>What transformers computed for a fixture (golden.json and golden.safetensors, tools/make_fixtures.py).</summary>
internal sealed class Golden
{
    private static readonly JsonSerializerOptions Options = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private readonly SafeTensorsFile _tensors;

    private Golden(string folder, GoldenJson json)
    {
        Folder = folder;
        Json = json;
        _tensors = SafeTensorsFile.Open(Path.Combine(folder, "golden.safetensors"));
    }

    public string Folder { get; }

    public GoldenJson Json { get; }

    /// <summary>Whether the stored weights are bfloat16 (looser tolerances).</summary>
    public bool IsBf16 => Json.Dtype == "bfloat16";

    public static Golden Load(string fixture)
    {
        string folder = Repository.Fixture(fixture);
        var json = JsonSerializer.Deserialize<GoldenJson>(File.ReadAllText(Path.Combine(folder, "golden.json")), Options)
            ?? throw new InvalidDataException($"{folder}/golden.json is empty");
        return new Golden(folder, json);
    }

    /// <summary>The logits of prompt <paramref name="index"/>: one row of the vocabulary per prompt token.</summary>
    public LogitMatrix PromptLogits(int index)
    {
        var (data, shape) = _tensors.ReadF32(Json.Prompts[index].Logits);
        return new LogitMatrix(data, shape[0], shape[1]);
    }

    /// <summary>The logits of the last positions of the long prompt (long-llama-bf16 only).</summary>
    public LogitMatrix LongTailLogits()
    {
        var (data, shape) = _tensors.ReadF32(Json.Long!.LogitsTail);
        return new LogitMatrix(data, shape[0], shape[1]);
    }
}

internal sealed record GoldenJson(
    string Model,
    string Architecture,
    string Dtype,
    IReadOnlyList<GoldenPrompt> Prompts,
    GoldenGreedy Greedy,
    IReadOnlyList<int> EosTokenIds,
    int? BosTokenId,
    GoldenLong? Long);

internal sealed record GoldenPrompt(string Text, int[] Ids, string Logits);

internal sealed record GoldenGreedy(int[] PromptIds, int[] Tokens, double[] Margins);

internal sealed record GoldenLong(string Text, int[] Ids, string LogitsTail, int[] TailPositions);

/// <summary>Row-major logits [rows, vocab].</summary>
internal sealed class LogitMatrix(float[] data, int rows, int vocab)
{
    public int Rows { get; } = rows;

    public int Vocab { get; } = vocab;

    public ReadOnlySpan<float> Row(int row) => data.AsSpan(row * Vocab, Vocab);

    public float MaxAbs() => data.Max(MathF.Abs);
}
