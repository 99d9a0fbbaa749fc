using NUnit.Framework;
using Tandem.Tests.Support;

namespace Tandem.Tests.Facade;

/// <summary>
/// Bad input from C#: each case gets a specific exception with a clear message, and leaves the objects usable
/// (nothing appended, no crash).
/// </summary>
[TestFixture]
public sealed class BadInputTests
{
    private Model _model = null!;
    private string _scratch = null!;

    [OneTimeSetUp]
    public void LoadModel() => _model = Model.Load(Repository.Fixture("llama-f32"));

    [OneTimeTearDown]
    public void DisposeModel() => _model.Dispose();

    [SetUp]
    public void MakeScratchFolder() => _scratch = Directory.CreateTempSubdirectory("tandem-tests-").FullName;

    [TearDown]
    public void RemoveScratchFolder() => Directory.Delete(_scratch, recursive: true);

    [Test]
    public void A_missing_path_is_NotFound_and_names_the_path()
    {
        string missing = Path.Combine(_scratch, "no-such-model");
        var thrown = Assert.Throws<TandemException>(() => Model.Load(missing));
        Assert.That(thrown!.Status, Is.EqualTo(TandemStatus.NotFound));
        Assert.That(thrown.Message, Does.Contain(missing));
    }

    [Test]
    public void A_folder_without_config_json_is_NotFound_and_says_so()
    {
        File.Copy(Path.Combine(_model.Path, "model.safetensors"), Path.Combine(_scratch, "model.safetensors"));
        var thrown = Assert.Throws<TandemException>(() => Model.Load(_scratch));
        Assert.That(thrown!.Status, Is.EqualTo(TandemStatus.NotFound));
        Assert.That(thrown.Message, Does.Contain("config.json"));
    }

    [Test]
    public void A_file_instead_of_a_folder_is_NotFound()
    {
        string file = Path.Combine(_model.Path, "config.json");
        var thrown = Assert.Throws<TandemException>(() => Model.Load(file));
        Assert.That(thrown!.Status, Is.EqualTo(TandemStatus.NotFound));
    }

    [Test]
    public void An_empty_or_invalid_path_is_an_argument_error()
    {
        Assert.Throws<ArgumentException>(() => Model.Load(""));
        var thrown = Assert.Throws<ArgumentException>(() => Model.Load(Path.Combine(_scratch, "bad\uD800name")));
        Assert.That(thrown!.Message, Does.Contain("surrogate"));
    }

    [Test]
    public void An_empty_prompt_is_an_argument_error()
    {
        using var session = _model.CreateSession();
        Assert.Throws<ArgumentException>(() => session.Prefill([]));
        Assert.Throws<ArgumentException>(() => session.Score([]));
        Assert.Throws<ArgumentException>(() => _model.GenerateAsync(""));
        Assert.Throws<ArgumentException>(() => _model.GenerateAsync(Array.Empty<int>()));
        Assert.Throws<ArgumentException>(() => _model.Score(""));
        Assert.That(session.Length, Is.Zero);
    }

    [Test]
    public void A_prompt_that_is_not_valid_UTF16_is_an_argument_error()
    {
        foreach (string prompt in new[] { "lone high \uD83D surrogate", "lone low \uDE00", "ends high \uD83D" })
        {
            var generate = Assert.Throws<ArgumentException>(() => _model.GenerateAsync(prompt), prompt);
            Assert.That(generate!.Message, Does.Contain("surrogate"));
            Assert.Throws<ArgumentException>(() => _model.Score(prompt), prompt);
        }
    }

    [Test]
    public void A_token_id_out_of_range_is_refused_and_nothing_is_appended()
    {
        int vocab = _model.Info.VocabSize;
        using var session = _model.CreateSession();
        session.Prefill([1, 2, 3]);
        foreach (int bad in new[] { vocab, -1, int.MaxValue, int.MinValue })
        {
            var prefill = Assert.Throws<ArgumentOutOfRangeException>(() => session.Prefill([4, bad, 5]), $"prefill {bad}");
            Assert.That(prefill!.Message, Does.Contain(bad.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            Assert.That(TandemException.StatusOf(prefill), Is.EqualTo(TandemStatus.TokenOutOfRange));
            Assert.Throws<ArgumentOutOfRangeException>(() => session.Decode(bad), $"decode {bad}");
            Assert.Throws<ArgumentOutOfRangeException>(() => session.Score([bad]), $"score {bad}");
            Assert.That(session.Length, Is.EqualTo(3), "nothing appended");
        }
        session.Decode(vocab - 1); // still usable
        Assert.That(session.Length, Is.EqualTo(4));
    }

    [Test]
    public void A_prompt_longer_than_the_kv_capacity_is_ContextFull_naming_the_kv_capacity()
    {
        using var session = _model.CreateSession(new SessionOptions(KvCapacity: 16));
        int[] tokens = [.. Enumerable.Range(1, 17)];

        var thrown = Assert.Throws<ContextFullException>(() => session.Prefill(tokens));
        Assert.That(thrown!.Status, Is.EqualTo(TandemStatus.ContextFull));
        Assert.That(thrown.Message, Does.Contain("16").And.Contain("KV capacity"));
        Assert.That(session.Length, Is.Zero, "nothing appended");

        session.Prefill(tokens.AsSpan(0, 16)); // exactly full is fine
        var decode = Assert.Throws<ContextFullException>(() => session.Decode(1));
        Assert.That(decode!.Message, Does.Contain("KV capacity"));
        Assert.That(session.Length, Is.EqualTo(16));
    }

    [Test]
    public void A_prompt_longer_than_max_position_embeddings_is_ContextFull_naming_it()
    {
        using var session = _model.CreateSession();
        int[] tokens = [.. Enumerable.Range(0, _model.Info.ContextLength + 1).Select(i => i % _model.Info.VocabSize)];

        var thrown = Assert.Throws<ContextFullException>(() => session.Prefill(tokens));
        Assert.That(thrown!.Message, Does.Contain("max_position_embeddings").And.Contain(_model.Info.ContextLength.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Throws<ContextFullException>(() => session.Score(tokens));
        Assert.That(session.Length, Is.Zero);
    }

    [Test]
    public void A_prompt_that_fills_the_context_leaves_no_room_to_generate()
    {
        var options = new GenerationOptions(Session: new SessionOptions(KvCapacity: 8));
        var thrown = Assert.ThrowsAsync<ContextFullException>(async () =>
        {
            await foreach (var _ in _model.GenerateAsync(Enumerable.Range(1, 8).ToArray(), options))
            {
            }
        });
        Assert.That(thrown!.Message, Does.Contain("no room to generate").And.Contain("KV capacity"));
    }

    [Test]
    public void Logits_before_any_forward_pass_are_InvalidState()
    {
        using var session = _model.CreateSession();
        var thrown = Assert.Throws<TandemException>(() => session.GetLogits(0));
        Assert.That(thrown!.Status, Is.EqualTo(TandemStatus.InvalidState));
        Assert.That(Assert.Throws<TandemException>(() => session.Stats(0))!.Status, Is.EqualTo(TandemStatus.InvalidState));
        using var sampler = new Sampler();
        Assert.That(Assert.Throws<TandemException>(() => sampler.Sample(session))!.Status, Is.EqualTo(TandemStatus.InvalidState));
    }

    [Test]
    public void Rows_lengths_and_buffers_out_of_range_are_argument_errors()
    {
        using var session = _model.CreateSession();
        session.Prefill([1, 2, 3]);
        Assert.Throws<ArgumentException>(() => session.GetLogits(1, new float[_model.Info.VocabSize]), "row past the held rows");
        Assert.Throws<ArgumentOutOfRangeException>(() => session.GetLogits(-1));
        Assert.Throws<ArgumentException>(() => session.GetLogits(0, new float[_model.Info.VocabSize - 1]), "buffer too small");
        Assert.Throws<ArgumentException>(() => session.Stats(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => session.Stats(0, topK: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => session.Stats(0, topK: Uncertainty.MaxTopK + 1));
        Assert.Throws<ArgumentException>(() => session.Truncate(4), "past the length");
        Assert.Throws<ArgumentOutOfRangeException>(() => session.Truncate(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => _model.CreateSession(new SessionOptions(KvCapacity: -1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => _model.CreateSession(new SessionOptions(Threads: -1)));
        Assert.That(session.Length, Is.EqualTo(3));
    }

    private static IEnumerable<TestCaseData> BadSamplerOptions()
    {
        yield return new TestCaseData(new SamplerOptions(Temperature: float.NaN)).SetName("{m}(NaN temperature)");
        yield return new TestCaseData(new SamplerOptions(Temperature: -0.5f)).SetName("{m}(negative temperature)");
        yield return new TestCaseData(new SamplerOptions(Temperature: float.PositiveInfinity)).SetName("{m}(infinite temperature)");
        yield return new TestCaseData(new SamplerOptions(TopP: float.NaN)).SetName("{m}(NaN top-p)");
        yield return new TestCaseData(new SamplerOptions(TopP: 0f)).SetName("{m}(top-p 0)");
        yield return new TestCaseData(new SamplerOptions(TopP: 1.5f)).SetName("{m}(top-p above 1)");
        yield return new TestCaseData(new SamplerOptions(TopK: -1)).SetName("{m}(negative top-k)");
    }

    [TestCaseSource(nameof(BadSamplerOptions))]
    public void NaN_or_negative_sampling_parameters_are_argument_errors(SamplerOptions options)
    {
        var thrown = Assert.Throws<ArgumentException>(() => new Sampler(options));
        Assert.That(TandemException.StatusOf(thrown!), Is.EqualTo(TandemStatus.InvalidArgument));
        Assert.That(thrown!.Message, Is.Not.Empty);
        Assert.Throws<ArgumentException>(options.Validate);
        Assert.Throws<ArgumentException>(() => _model.GenerateAsync("hello", new GenerationOptions(Temperature: options.Temperature, TopK: options.TopK, TopP: options.TopP)), "checked when called");
    }

    [Test]
    public void Statistics_K_out_of_range_is_an_argument_error()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(new SamplerOptions(StatsTopK: 0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(new SamplerOptions(StatsTopK: Uncertainty.MaxTopK + 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Uncertainty.FromLogits([1f, 2f], topK: 0));
        Assert.Throws<ArgumentException>(() => Uncertainty.FromLogits([1f, 2f], topK: 3), "K larger than the vocabulary");
        Assert.Throws<ArgumentException>(() => Uncertainty.FromLogits([]));
        Assert.Throws<ArgumentException>(() => Uncertainty.FromLogits([1f, float.NaN, 2f]), "a NaN logit");
        Assert.Throws<ArgumentException>(() => Uncertainty.LogTokU([]));
        Assert.Throws<ArgumentException>(() => Uncertainty.LogTokU([1f, float.NaN]));
    }

    [Test]
    public void MaxTokens_below_one_is_an_argument_error()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => _model.GenerateAsync("hello", new GenerationOptions(MaxTokens: 0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => _model.GenerateAsync("hello", new GenerationOptions(MaxTokens: -3)));
    }
}
