using System.Text.Json;
using NUnit.Framework;

namespace Tandem.Tests.Support;

/// <summary>
/// Reading tests/vectors/*.json, the language-neutral vectors shared with the GoogleTest suites. The conventions
/// are those at the top of tools/make_vectors.py: float32 inputs as JSON numbers or "-inf", signed zeros kept,
/// uint64 seeds as integers, large logit vectors as an "lcg" generator.
/// </summary>
internal static class VectorFile
{
    public static JsonElement Load(string fileName)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Repository.Vector(fileName)));
        return document.RootElement.Clone();
    }

    /// <summary>One test case per element of <c>cases</c>, named by its "name".</summary>
    public static IEnumerable<TestCaseData> Cases(string fileName) =>
        Load(fileName).GetProperty("cases").EnumerateArray()
            .Select(c => new TestCaseData(c).SetName($"{{m}}({c.GetProperty("name").GetString()})"));

    /// <summary>A float32 input: a number (exactly a float32) or the string "-inf".</summary>
    public static float Float32(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Number => (float)value.GetDouble(),
        JsonValueKind.String when value.GetString() == "-inf" => float.NegativeInfinity,
        _ => throw new InvalidDataException($"not a float32 input: {value}"),
    };

    public static float[] Float32Array(JsonElement array) => [.. array.EnumerateArray().Select(Float32)];

    /// <summary>The logits of a case: literal ("logits") or generated ("generator").</summary>
    public static float[] Logits(JsonElement testCase)
    {
        if (testCase.TryGetProperty("logits", out var literal))
        {
            return Float32Array(literal);
        }
        var generator = testCase.GetProperty("generator");
        Assert.That(generator.GetProperty("kind").GetString(), Is.EqualTo("lcg"), "the only generator kind");
        return Lcg(generator.GetProperty("seed").GetUInt64(), generator.GetProperty("vocab").GetInt32(),
            generator.GetProperty("scale").GetDouble());
    }

    /// <summary>
    /// The "lcg" generator: per logit, four LCG steps give four uniforms u in [0, 1); the logit is
    /// float32((u1 + u2 + u3 + u4 − 2) · scale), summed left to right in double (an Irwin–Hall bell).
    /// </summary>
    public static float[] Lcg(ulong seed, int vocab, double scale)
    {
        ulong state = seed;
        var logits = new float[vocab];
        for (int i = 0; i < vocab; i++)
        {
            double sum = 0;
            for (int j = 0; j < 4; j++)
            {
                state = unchecked((state * 6364136223846793005UL) + 1442695040888963407UL);
                double u = (state >> 11) * (1.0 / (1UL << 53));
                sum = j == 0 ? u : sum + u;
            }
            logits[i] = (float)((sum - 2.0) * scale);
        }
        return logits;
    }

    /// <summary>|got − want| ≤ abs + rel·|want|, the files' tolerance rule.</summary>
    public static void AssertClose(double got, double want, double rel, double abs, string what) =>
        Assert.That(Math.Abs(got - want), Is.LessThanOrEqualTo(abs + (rel * Math.Abs(want))), $"{what}: got {got:R}, want {want:R}");
}
