using System.Buffers.Binary;
using System.Text.Json;

namespace Tandem.Tests.Support;

/// <summary>
/// A minimal reader of the safetensors format for the goldens: an 8-byte little-endian header length, a JSON
/// header {name: {dtype, shape, data_offsets}}, then the raw data. Only F32 tensors are read (the goldens are F32).
/// Independent of the native reader on purpose: the goldens must not be read by the code they check.
/// </summary>
internal sealed class SafeTensorsFile
{
    private readonly byte[] _bytes;
    private readonly long _dataStart;
    private readonly Dictionary<string, (string DType, int[] Shape, long Begin, long End)> _tensors = [];

    private SafeTensorsFile(string path)
    {
        _bytes = File.ReadAllBytes(path);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(_bytes);
        if (headerLength > (ulong)_bytes.Length - 8)
        {
            throw new InvalidDataException($"{path}: header length {headerLength} exceeds the file");
        }
        _dataStart = 8 + (long)headerLength;
        using var header = JsonDocument.Parse(_bytes.AsMemory(8, (int)headerLength));
        foreach (var tensor in header.RootElement.EnumerateObject())
        {
            if (tensor.Name == "__metadata__")
            {
                continue;
            }
            var offsets = tensor.Value.GetProperty("data_offsets");
            _tensors[tensor.Name] = (
                tensor.Value.GetProperty("dtype").GetString()!,
                [.. tensor.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32())],
                offsets[0].GetInt64(),
                offsets[1].GetInt64());
        }
    }

    public static SafeTensorsFile Open(string path) => new(path);

    /// <summary>A float32 tensor, row-major, with its shape.</summary>
    public (float[] Data, int[] Shape) ReadF32(string name)
    {
        if (!_tensors.TryGetValue(name, out var tensor))
        {
            throw new KeyNotFoundException($"no tensor '{name}' (have: {string.Join(", ", _tensors.Keys)})");
        }
        if (tensor.DType != "F32")
        {
            throw new InvalidDataException($"tensor '{name}' is {tensor.DType}, not F32");
        }
        long count = tensor.Shape.Aggregate(1L, (a, d) => a * d);
        if (tensor.End - tensor.Begin != count * sizeof(float) || _dataStart + tensor.End > _bytes.Length)
        {
            throw new InvalidDataException($"tensor '{name}': offsets [{tensor.Begin}, {tensor.End}) disagree with shape or file");
        }
        var data = new float[count];
        var source = _bytes.AsSpan((int)(_dataStart + tensor.Begin), (int)(count * sizeof(float)));
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = BinaryPrimitives.ReadSingleLittleEndian(source[(i * sizeof(float))..]);
        }
        return (data, tensor.Shape);
    }
}
