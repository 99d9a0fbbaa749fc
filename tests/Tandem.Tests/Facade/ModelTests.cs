using System.Text.Json;
using NUnit.Framework;
using Tandem.Tests.Support;

namespace Tandem.Tests.Facade;

/// <summary>Model loading: what ModelInfo reports, progress and cancellation of the load, the tokenizer.</summary>
[TestFixture]
public sealed class ModelTests
{
    public static IEnumerable<string> Fixtures() => Repository.Fixtures;

    [TestCaseSource(nameof(Fixtures))]
    public void Info_agrees_with_config_json(string fixture)
    {
        string folder = Repository.Fixture(fixture);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        var c = config.RootElement;
        var golden = Golden.Load(fixture);
        using var model = Model.Load(folder);
        var info = model.Info;

        int heads = c.GetProperty("num_attention_heads").GetInt32();
        int hidden = c.GetProperty("hidden_size").GetInt32();
        Assert.Multiple(() =>
        {
            Assert.That(info.Architecture, Is.EqualTo(c.GetProperty("architectures")[0].GetString()));
            Assert.That(info.Layers, Is.EqualTo(c.GetProperty("num_hidden_layers").GetInt32()));
            Assert.That(info.HiddenSize, Is.EqualTo(hidden));
            Assert.That(info.IntermediateSize, Is.EqualTo(c.GetProperty("intermediate_size").GetInt32()));
            Assert.That(info.Heads, Is.EqualTo(heads));
            Assert.That(info.KvHeads, Is.EqualTo(c.TryGetProperty("num_key_value_heads", out var kv) ? kv.GetInt32() : heads));
            Assert.That(info.HeadDim, Is.EqualTo(c.TryGetProperty("head_dim", out var hd) && hd.ValueKind == JsonValueKind.Number
                ? hd.GetInt32() : hidden / heads));
            Assert.That(info.VocabSize, Is.EqualTo(c.GetProperty("vocab_size").GetInt32()));
            Assert.That(info.ContextLength, Is.EqualTo(c.GetProperty("max_position_embeddings").GetInt32()));
            Assert.That(info.TieWordEmbeddings, Is.EqualTo(c.TryGetProperty("tie_word_embeddings", out var tie) && tie.GetBoolean()));
            Assert.That(info.DType, Is.EqualTo(golden.IsBf16 ? DType.BF16 : DType.F32));
            Assert.That(info.Device, Is.EqualTo(Device.Cpu));
            Assert.That(info.ParameterCount, Is.GreaterThan(0));
            Assert.That(info.BosTokenId, Is.EqualTo(golden.Json.BosTokenId));
            Assert.That(info.EosTokenIds, Is.SupersetOf(golden.Json.EosTokenIds));
            Assert.That(model.Path, Is.EqualTo(Path.GetFullPath(folder)));
        });
    }

    [Test]
    public void Info_prints_its_values_including_the_eos_ids()
    {
        using var model = Model.Load(Repository.Fixture("llama-f32"));
        string text = model.Info.ToString();
        Assert.That(text, Does.StartWith("ModelInfo { Architecture = LlamaForCausalLM, Layers = "));
        Assert.That(text, Does.Contain($"EosTokenIds = [{string.Join(", ", model.Info.EosTokenIds)}] }}"));
    }

    [Test]
    public void Mistral_reports_its_sliding_window()
    {
        using var model = Model.Load(Repository.Fixture("mistral-swa-f32"));
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(model.Path, "config.json")));
        Assert.That(model.Info.SlidingWindow, Is.EqualTo(config.RootElement.GetProperty("sliding_window").GetInt32()).And.GreaterThan(0));
    }

    [Test]
    public void Progress_reports_bytes_up_to_the_total_on_the_loading_thread()
    {
        var reports = new List<(LoadProgress Progress, int Thread)>();
        var progress = new SynchronousProgress<LoadProgress>(p => reports.Add((p, Environment.CurrentManagedThreadId)));

        using var model = Model.Load(Repository.Fixture("llama-f32"), progress: progress);

        Assert.That(reports, Is.Not.Empty);
        Assert.That(reports.Select(r => r.Thread), Has.All.EqualTo(Environment.CurrentManagedThreadId));
        Assert.That(reports.Select(r => r.Progress.BytesDone), Is.Ordered.Ascending);
        var last = reports[^1].Progress;
        Assert.That(last.BytesTotal, Is.GreaterThan(0));
        Assert.That(last.BytesDone, Is.EqualTo(last.BytesTotal));
        Assert.That(last.Fraction, Is.EqualTo(1.0));
    }

    [Test]
    public void A_progress_sink_that_throws_stops_the_load_and_its_exception_comes_out()
    {
        var progress = new SynchronousProgress<LoadProgress>(_ => throw new InvalidTimeZoneException("sink failed"));

        var thrown = Assert.Throws<InvalidTimeZoneException>(() => Model.Load(Repository.Fixture("llama-f32"), progress: progress));
        Assert.That(thrown!.Message, Is.EqualTo("sink failed"));
    }

    [Test]
    public void Cancelling_during_the_load_throws_OperationCanceledException()
    {
        using var cancel = new CancellationTokenSource();
        var progress = new SynchronousProgress<LoadProgress>(_ => cancel.Cancel());

        var thrown = Assert.Throws<OperationCanceledException>(
            () => Model.Load(Repository.Fixture("llama-f32"), progress: progress, cancellationToken: cancel.Token));
        Assert.That(thrown!.CancellationToken, Is.EqualTo(cancel.Token));
        Assert.That(TandemException.StatusOf(thrown), Is.EqualTo(TandemStatus.Cancelled));
    }

    [Test]
    public void An_already_cancelled_token_loads_nothing()
    {
        Assert.Throws<OperationCanceledException>(
            () => Model.Load(Repository.Fixture("llama-f32"), cancellationToken: new CancellationToken(canceled: true)));
    }

    [Test]
    public void The_tokenizer_comes_from_the_same_folder()
    {
        var golden = Golden.Load("llama3-sharded-bf16");
        using var model = Model.Load(golden.Folder);
        foreach (var prompt in golden.Json.Prompts)
        {
            Assert.That(model.Tokenizer.Encode(prompt.Text), Is.EqualTo(prompt.Ids), prompt.Text);
        }
        Assert.That(model.Tokenizer, Is.SameAs(model.Tokenizer), "loaded once");
    }

    [Test]
    public void Build_info_reports_the_cpu_backend_and_the_expected_abi()
    {
        var build = TandemRuntime.BuildInfo;
        Assert.Multiple(() =>
        {
            Assert.That(build.HasCpu, Is.True);
            Assert.That(build.AbiVersion, Is.EqualTo(Tandem.Interop.NativeMethods.TDM_ABI_VERSION));
            Assert.That(build.Version, Does.Match(@"^\d+\.\d+\.\d+"));
            Assert.That(build.LibraryPath, Is.EqualTo(TandemRuntime.LibraryPath).And.Not.Empty);
            Assert.That(File.Exists(build.LibraryPath), Is.True);
            Assert.That(build.CudaDeviceFound, Is.False.Or.EqualTo(build.HasCuda), "a GPU can only be found by a CUDA build");
        });
    }

    [Test]
    public void Asking_for_cuda_on_a_build_without_it_fails_with_BackendUnavailable()
    {
        if (TandemRuntime.BuildInfo.HasCuda)
        {
            Assert.Ignore("this build has the CUDA backend; the refusal is what a CPU-only build does");
        }
        var thrown = Assert.Throws<TandemException>(() => Model.Load(Repository.Fixture("llama-f32"), new ModelOptions(Device.Cuda)));
        Assert.That(thrown!.Status, Is.EqualTo(TandemStatus.BackendUnavailable));
        Assert.That(thrown.Message, Does.Contain("CUDA"));
    }
}
