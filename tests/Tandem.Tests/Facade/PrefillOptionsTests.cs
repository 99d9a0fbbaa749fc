using NUnit.Framework;
using Tandem.Interop;
using Tandem.Tests.Support;

namespace Tandem.Tests.Facade;

/// <summary>
/// <see cref="PrefillOptions"/>: how it maps onto <c>tdm_prefill_options</c>, its validation (the native rules), the
/// per-head threshold table, and block-sparse prefill and scoring through <see cref="Session"/> with
/// <see cref="Session.AttentionDensity"/>, on the 1,650-token fixture.
/// </summary>
[TestFixture]
public sealed unsafe class PrefillOptionsTests
{
    private static readonly ModelInfo TwoByFour = new("LlamaForCausalLM", Layers: 2, HiddenSize: 8, IntermediateSize: 8, Heads: 4,
        KvHeads: 2, HeadDim: 2, VocabSize: 16, ContextLength: 64, SlidingWindow: 0, DType.F32, Device.Cpu, false, 1e-5f, 1e4f, 0, null, []);

    [Test]
    public void Every_knob_reaches_the_native_struct()
    {
        var options = new PrefillOptions(AllLogits: true, Attention: Attention.FlexPrefill)
        {
            BlockSize = 64, XAttentionStride = 16, XAttentionThreshold = 0.7f, FlexGamma = 0.8f, FlexTau = 0.2f,
            FlexMinBudget = 512, FlexMaxBudget = 4096, Compat = SparseCompat.FlexBudget128 | SparseCompat.FlexJsdNaN,
            XAttentionFp8 = true,
        };
        tdm_prefill_options native;
        NativeMethods.tdm_prefill_options_init(&native);
        options.WriteTo(&native, TwoByFour, out float[]? table);
        Assert.That(native.all_logits, Is.EqualTo(1));
        Assert.That(native.attention, Is.EqualTo((int)tdm_attention.TDM_ATTENTION_FLEXPREFILL));
        Assert.That(native.block_size, Is.EqualTo(64u));
        Assert.That(native.xattn_stride, Is.EqualTo(16u));
        Assert.That(native.xattn_threshold, Is.EqualTo(0.7f));
        Assert.That(native.flex_gamma, Is.EqualTo(0.8f));
        Assert.That(native.flex_tau, Is.EqualTo(0.2f));
        Assert.That(native.flex_min_budget, Is.EqualTo(512u));
        Assert.That(native.flex_max_budget, Is.EqualTo(4096u));
        Assert.That(native.sparse_compat, Is.EqualTo(3u));
        Assert.That(native.xattn_fp8, Is.EqualTo(1));
        (options with { XAttentionFp8 = false }).WriteTo(&native, TwoByFour, out _);
        Assert.That(native.xattn_fp8, Is.Zero);
        Assert.That(table, Is.Null, "no table: FlexPrefill ignores XAttention thresholds");
        Assert.That((int)Attention.XAttention, Is.EqualTo((int)tdm_attention.TDM_ATTENTION_XATTENTION));
        Assert.That((int)SparseCompat.FlexJsdNaN, Is.EqualTo((int)tdm_sparse_compat.TDM_SPARSE_COMPAT_FLEX_JSD_NAN));
    }

    [Test]
    public void The_threshold_table_must_have_layers_times_heads_values()
    {
        var options = new PrefillOptions(Attention: Attention.XAttention) { XAttentionThresholds = new float[8] };
        tdm_prefill_options native;
        NativeMethods.tdm_prefill_options_init(&native);
        options.WriteTo(&native, TwoByFour, out float[]? table);
        Assert.That(table, Has.Length.EqualTo(8));
        var wrong = options with { XAttentionThresholds = new float[7] };
        string? message = null;
        try
        {
            wrong.WriteTo(&native, TwoByFour, out _);
        }
        catch (ArgumentException e)
        {
            message = e.Message;
        }
        Assert.That(message, Does.Contain("Layers x Heads = 2 x 4 = 8"));
    }

    private static IEnumerable<TestCaseData> BadOptions()
    {
        var x = new PrefillOptions(Attention: Attention.XAttention);
        var f = new PrefillOptions(Attention: Attention.FlexPrefill);
        yield return new TestCaseData(x with { BlockSize = 96 }, "BlockSize").SetName("block size 96");
        yield return new TestCaseData(x with { XAttentionStride = 3 }, "XAttentionStride").SetName("stride 3");
        yield return new TestCaseData(x with { XAttentionThreshold = float.NaN }, "thresholds").SetName("NaN threshold");
        yield return new TestCaseData(x with { XAttentionThresholds = [0.9f, -1f] }, "thresholds").SetName("negative table entry");
        yield return new TestCaseData(f with { FlexGamma = 0f }, "FlexGamma").SetName("gamma 0");
        yield return new TestCaseData(f with { FlexGamma = 1.01f }, "FlexGamma").SetName("gamma above 1");
        yield return new TestCaseData(f with { FlexTau = -0.1f }, "FlexTau").SetName("negative tau");
        yield return new TestCaseData(f with { FlexMinBudget = 1024, FlexMaxBudget = 512 }, "FlexMaxBudget").SetName("max below min");
        yield return new TestCaseData(f with { Compat = (SparseCompat)8 }, "Compat").SetName("unknown compat flag");
        yield return new TestCaseData(new PrefillOptions(Attention: (Attention)9), "attention method").SetName("unknown method");
    }

    [TestCaseSource(nameof(BadOptions))]
    public void Bad_knobs_are_rejected_by_name_here_and_natively(PrefillOptions options, string name)
    {
        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.That(error!.Message, Does.Contain(name));
        if (options.XAttentionThresholds is not null)
        {
            return; // a table of the wrong length is caught before the native call; the ranges are checked above
        }
        using var model = Model.Load(Repository.Fixture("llama-f32"));
        using var session = model.CreateSession();
        Assert.Throws<ArgumentException>(() => session.Prefill([1, 2, 3], options), "the native core agrees");
        Assert.That(session.Length, Is.Zero);
    }

    [Test]
    public void Knobs_of_the_other_method_and_of_dense_are_not_checked()
    {
        Assert.DoesNotThrow(new PrefillOptions { BlockSize = 3, FlexGamma = 7 }.Validate);
        Assert.DoesNotThrow(new PrefillOptions(Attention: Attention.XAttention) { FlexGamma = 7 }.Validate);
        Assert.DoesNotThrow(new PrefillOptions(Attention: Attention.FlexPrefill) { XAttentionStride = 5 }.Validate);
    }

    [Test]
    public void Sparse_prefill_reports_its_density_and_thresholds_of_one_match_dense()
    {
        var golden = Golden.Load("long-llama-bf16");
        int[] ids = golden.Json.Long!.Ids;
        using var model = Model.Load(golden.Folder);
        using var session = model.CreateSession();
        Assert.Throws<TandemException>(() => _ = session.AttentionDensity, "no prefill yet");

        session.Prefill(ids, new PrefillOptions(AllLogits: true));
        var dense = Enumerable.Range(0, ids.Length).Select(session.GetLogits).ToArray();
        Assert.That(session.AttentionDensity.Mean, Is.EqualTo(1.0));

        var everyBlock = new PrefillOptions(AllLogits: true, Attention: Attention.XAttention) { BlockSize = 64, XAttentionThreshold = 1f };
        session.Truncate(0);
        session.Prefill(ids, everyBlock);
        for (int row = 0; row < ids.Length; row += 97)
        {
            Assert.That(session.GetLogits(row), Is.EqualTo(dense[row]).Within(1e-3f), $"row {row}");
        }

        int layers = model.Info.Layers, heads = model.Info.Heads;
        var table = Enumerable.Range(0, layers * heads).Select(i => i < heads ? 1f : 0f).ToArray();
        session.Truncate(0);
        session.Prefill(ids, everyBlock with { XAttentionThresholds = table });
        var density = session.AttentionDensity;
        Assert.That(density.Layers, Is.EqualTo(layers));
        Assert.That(density.Heads, Is.EqualTo(heads));
        Assert.That(density.LayerMean(0), Is.EqualTo(1.0), "layer 0 keeps every block");
        Assert.That(density[1, 0], Is.LessThan(0.2f), "threshold 0: sink and diagonal only");
        Assert.That(density.Mean, Is.EqualTo(density.Values.Average(v => (double)v)).Within(1e-6));

        session.Decode(ids[0]);
        Assert.That(session.AttentionDensity.Values, Is.EqualTo(density.Values), "decode is dense and does not count");
    }

    [Test]
    public void Score_takes_prefill_options()
    {
        var golden = Golden.Load("long-llama-bf16");
        string text = golden.Json.Long!.Text;
        using var model = Model.Load(golden.Folder);
        var dense = model.Score(text);
        var sparse = model.Score(text, new PrefillOptions(Attention: Attention.FlexPrefill) { BlockSize = 64, FlexMinBudget = 128 },
            out var density);
        Assert.That(density.Mean, Is.GreaterThan(0).And.LessThan(1));
        Assert.That(sparse.Select(s => s.Id), Is.EqualTo(dense.Select(s => s.Id)));
        Assert.That(sparse[1].LogProb, Is.EqualTo(dense[1].LogProb).Within(1e-3), "the first blocks are computed densely");
    }
}
