using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Tandem;

/// <summary>
/// The forking-token mask of a batch (<see cref="ForkingTokens.Select"/>) and the distribution of its response-token
/// entropies.
/// </summary>
public sealed class ForkingSelection
{
    /// <summary>The percentiles <see cref="Percentiles"/> reports; 80 is the top-20% cut.</summary>
    public static readonly IReadOnlyList<double> ReportedPercents = [0, 10, 25, 50, 75, 80, 90, 95, 99, 100];

    private readonly double[] _sorted;

    internal ForkingSelection(double rho, ScoredSequence[] sequences, bool[][] masks, double[] sortedEntropies, double? threshold)
    {
        Rho = rho;
        Sequences = sequences;
        Masks = masks;
        _sorted = sortedEntropies;
        Threshold = threshold;
        SelectedCount = masks.Sum(mask => mask.Count(selected => selected));
        Percentiles = _sorted.Length == 0
            ? []
            : ReportedPercents.Select(p => new EntropyPercentile(p, ForkingTokens.Percentile(_sorted, p))).ToArray();
    }

    /// <summary>The fraction ρ that was selected.</summary>
    public double Rho { get; }

    /// <summary>The sequences, in the order given.</summary>
    public IReadOnlyList<ScoredSequence> Sequences { get; }

    /// <summary>Per sequence, per token: whether it is a forking token (one of the selected top-ρ).</summary>
    public IReadOnlyList<IReadOnlyList<bool>> Masks { get; }

    /// <summary>Valid response tokens in the batch (N).</summary>
    public int ValidCount => _sorted.Length;

    /// <summary>Tokens selected: max(1, ⌈ρ·N⌉), or 0 when N = 0.</summary>
    public int SelectedCount { get; }

    /// <summary>The lowest entropy among the selected tokens (τ_ρ of the paper); null when nothing was selected.</summary>
    public double? Threshold { get; }

    /// <summary>The entropy percentiles of <see cref="ReportedPercents"/> over all valid response tokens; empty when
    /// there are none.</summary>
    public IReadOnlyList<EntropyPercentile> Percentiles { get; }

    /// <summary>The <paramref name="percent"/>-th entropy percentile over the valid response tokens (linear
    /// interpolation, see <see cref="ForkingTokens.Percentile"/>).</summary>
    /// <exception cref="InvalidOperationException">The batch has no valid response token.</exception>
    public double Percentile(double percent)
    {
        if (_sorted.Length == 0)
        {
            throw new InvalidOperationException("the batch has no valid response token");
        }
        return ForkingTokens.Percentile(_sorted, percent);
    }

    /// <summary>
    /// Writes one JSON object per sequence and line, for an RL trainer:
    /// <c>{"ids":[..],"entropies":[..],"response_mask":[0|1,..],"mask":[0|1,..]}</c>, all aligned with the ids.
    /// Entropies are nats at temperature 1, null where nothing predicted the token; <c>mask</c> marks the forking
    /// tokens, a subset of <c>response_mask</c>; the masks are 0/1 so they load straight into an integer tensor.
    /// </summary>
    public void WriteJsonl(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var buffer = new ArrayBufferWriter<byte>();
        for (int s = 0; s < Sequences.Count; s++)
        {
            buffer.ResetWrittenCount();
            using (var json = new Utf8JsonWriter(buffer))
            {
                var sequence = Sequences[s];
                json.WriteStartObject();
                json.WriteStartArray("ids");
                foreach (int id in sequence.Ids)
                {
                    json.WriteNumberValue(id);
                }
                json.WriteEndArray();
                json.WriteStartArray("entropies");
                foreach (double? entropy in sequence.Entropies)
                {
                    if (entropy is double h && double.IsFinite(h))
                    {
                        json.WriteNumberValue((float)h); // the core computes them in fp32: float keeps the lines short
                    }
                    else
                    {
                        json.WriteNullValue();
                    }
                }
                json.WriteEndArray();
                WriteMask(json, "response_mask", sequence.ResponseMask);
                WriteMask(json, "mask", Masks[s]);
                json.WriteEndObject();
            }
            writer.Write(Encoding.UTF8.GetString(buffer.WrittenSpan));
            writer.Write('\n');
        }
    }

    private static void WriteMask(Utf8JsonWriter json, string name, IReadOnlyList<bool> mask)
    {
        json.WriteStartArray(name);
        foreach (bool value in mask)
        {
            json.WriteNumberValue(value ? 1 : 0);
        }
        json.WriteEndArray();
    }
}

/// <summary>One percentile of a distribution of token entropies.</summary>
/// <param name="Percent">The percentile, in [0, 100].</param>
/// <param name="Entropy">Its value, in nats.</param>
public readonly record struct EntropyPercentile(double Percent, double Entropy);
