using System.Globalization;
using Tandem.Cli.Arguments;
using Tandem.Cli.Output;

namespace Tandem.Cli.Commands;

/// <summary><c>tandem info --model DIR [--json]</c>: a model's architecture and shape, and this build's backends.</summary>
internal static class InfoCommand
{
    public static readonly CliCommand Command = new(
        new CommandSpec("info", "Print a model's architecture and shape, and which backends this build of the core has.",
            [ModelArguments.Model, ModelArguments.Json]),
        Execute);

    private static int Execute(ParsedArguments args, CommandContext context)
    {
        string path = args.Required(ModelArguments.Model.Name);
        bool json = args.Flag(ModelArguments.Json.Name);

        var build = TandemRuntime.BuildInfo;
        using var model = ModelArguments.Load(path, new ModelOptions(), context);
        var info = model.Info;
        if (json)
        {
            context.Out.WriteLine(Json.Write(w =>
            {
                w.WriteStartObject();
                w.WriteString("architecture", info.Architecture);
                w.WriteNumber("layers", info.Layers);
                w.WriteNumber("hidden_size", info.HiddenSize);
                w.WriteNumber("heads", info.Heads);
                w.WriteNumber("kv_heads", info.KvHeads);
                w.WriteNumber("head_dim", info.HeadDim);
                w.WriteNumber("vocab_size", info.VocabSize);
                w.WriteNumber("context_length", info.ContextLength);
                w.WriteString("dtype", DTypeName(info.DType));
                w.WriteStartObject("backends");
                w.WriteBoolean("cpu", build.HasCpu);
                w.WriteBoolean("cuda", build.HasCuda);
                w.WriteEndObject();
                w.WriteEndObject();
            }));
            return 0;
        }

        var rows = new (string Name, string Value)[]
        {
            ("model", model.Path),
            ("architecture", info.Architecture),
            ("layers", Number(info.Layers)),
            ("hidden size", Number(info.HiddenSize)),
            ("intermediate size", Number(info.IntermediateSize)),
            ("heads", Number(info.Heads)),
            ("kv heads", Number(info.KvHeads)),
            ("head dim", Number(info.HeadDim)),
            ("vocabulary", Number(info.VocabSize)),
            ("context length", Number(info.ContextLength)),
            ("sliding window", info.SlidingWindow == 0 ? "none" : Number(info.SlidingWindow)),
            ("dtype", DTypeName(info.DType)),
            ("parameters", Number(info.ParameterCount)),
            ("tied embeddings", info.TieWordEmbeddings ? "yes" : "no"),
            ("bos token", info.BosTokenId is { } bos ? Number(bos) : "none"),
            ("eos tokens", info.EosTokenIds.Count == 0 ? "none" : string.Join(", ", info.EosTokenIds.Select(id => Number(id)))),
            ("backends", Backends(build)),
            ("library", $"{build.LibraryPath} ({build.Version}, ABI {build.AbiVersion})"),
        };
        int width = rows.Max(r => r.Name.Length) + 2;
        foreach (var (name, value) in rows)
        {
            context.Out.WriteLine(name.PadRight(width) + value);
        }
        return 0;
    }

    /// <summary>The dtype as the JSON and the text print it.</summary>
    public static string DTypeName(DType dtype) => dtype switch
    {
        DType.F32 => "f32",
        DType.F16 => "f16",
        DType.BF16 => "bf16",
        _ => dtype.ToString().ToLowerInvariant(),
    };

    /// <summary>E.g. "cpu (avx2 fma), cuda (not built)".</summary>
    public static string Backends(BuildInfo build)
    {
        string cpu = build.CpuFeatures.Length == 0 ? "cpu" : $"cpu ({build.CpuFeatures})";
        string cuda = !build.HasCuda ? "cuda (not built)" : build.CudaDeviceFound ? "cuda" : "cuda (built, no supported GPU found)";
        return $"{cpu}, {cuda}";
    }

    private static string Number(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
