using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Tandem.Cli.Output;

/// <summary>The JSON output of the commands: one compact object per run, written with <see cref="Utf8JsonWriter"/>.</summary>
internal static class Json
{
    // Relaxed escaping keeps non-ASCII text readable ("é", not "\u00E9"); quotes and control characters are
    // still escaped, and the output is never embedded in HTML.
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Runs <paramref name="body"/> on a fresh writer and returns the JSON text.</summary>
    public static string Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, Options))
        {
            body(writer);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>
    /// Writes a statistic of the native core. It is a float there, so it is written as one (shortest round-trip
    /// text of the float, not of its widened double); null when undefined (NaN or missing).
    /// </summary>
    public static void WriteStatistic(this Utf8JsonWriter writer, string name, double? value)
    {
        if (value is { } v && double.IsFinite(v))
        {
            writer.WriteNumber(name, (float)v);
        }
        else
        {
            writer.WriteNull(name);
        }
    }
}
