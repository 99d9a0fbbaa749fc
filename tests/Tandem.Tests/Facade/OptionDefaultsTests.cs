using NUnit.Framework;
using Tandem.Interop;

namespace Tandem.Tests.Facade;

/// <summary>The option records' defaults are the native defaults (tdm_*_options_init), field by field.</summary>
[TestFixture]
public sealed unsafe class OptionDefaultsTests
{
    [Test]
    public void ModelOptions()
    {
        tdm_model_options native;
        NativeMethods.tdm_model_options_init(&native);
        var managed = new ModelOptions();
        Assert.That((int)managed.Device, Is.EqualTo(native.device));
        Assert.That(managed.DeviceIndex, Is.EqualTo(native.device_index));
        Assert.That(managed.Threads, Is.EqualTo(native.threads));
    }

    [Test]
    public void SessionOptions()
    {
        tdm_session_options native;
        NativeMethods.tdm_session_options_init(&native);
        var managed = new SessionOptions();
        Assert.That((uint)managed.KvCapacity, Is.EqualTo(native.kv_capacity));
        Assert.That(managed.Threads, Is.EqualTo(native.threads));
    }

    [Test]
    public void PrefillOptions()
    {
        tdm_prefill_options native;
        NativeMethods.tdm_prefill_options_init(&native);
        var managed = new PrefillOptions();
        Assert.That(managed.AllLogits ? 1 : 0, Is.EqualTo(native.all_logits));
        Assert.That((int)managed.Attention, Is.EqualTo(native.attention));
        Assert.That((uint)managed.BlockSize, Is.EqualTo(native.block_size));
        Assert.That((uint)managed.XAttentionStride, Is.EqualTo(native.xattn_stride));
        Assert.That(managed.XAttentionThreshold, Is.EqualTo(native.xattn_threshold));
        Assert.That(managed.XAttentionThresholds is null, Is.EqualTo(native.xattn_thresholds == null));
        Assert.That(managed.FlexGamma, Is.EqualTo(native.flex_gamma));
        Assert.That(managed.FlexTau, Is.EqualTo(native.flex_tau));
        Assert.That((uint)managed.FlexMinBudget, Is.EqualTo(native.flex_min_budget));
        Assert.That((uint)managed.FlexMaxBudget, Is.EqualTo(native.flex_max_budget));
        Assert.That((uint)managed.Compat, Is.EqualTo(native.sparse_compat));
        Assert.That(managed.XAttentionFp8 ? 1 : 0, Is.EqualTo(native.xattn_fp8));
    }

    [Test]
    public void SamplerOptions()
    {
        tdm_sampler_options native;
        NativeMethods.tdm_sampler_options_init(&native);
        var managed = new SamplerOptions();
        Assert.That(managed.Temperature, Is.EqualTo(native.temperature));
        Assert.That(managed.TopK, Is.EqualTo(native.top_k));
        Assert.That(managed.TopP, Is.EqualTo(native.top_p));
        Assert.That(managed.Seed, Is.EqualTo(native.seed));
        Assert.That((uint)managed.StatsTopK, Is.EqualTo(native.stats_top_k));
        Assert.That(managed.StatsTopK, Is.EqualTo(Uncertainty.DefaultTopK));
    }

    [Test]
    public void GenerationOptions_sample_with_the_native_sampler_defaults()
    {
        Assert.That(new GenerationOptions().Sampling, Is.EqualTo(new SamplerOptions()));
        Assert.That(new GenerationOptions(Temperature: 0.5f, TopK: 3, TopP: 0.9f, Seed: 8).Sampling,
            Is.EqualTo(new SamplerOptions(0.5f, 3, 0.9f, 8)));
    }

    [Test]
    public void Enums_match_their_native_counterparts()
    {
        Assert.That((int)Device.Cpu, Is.EqualTo((int)tdm_device.TDM_DEVICE_CPU));
        Assert.That((int)Device.Cuda, Is.EqualTo((int)tdm_device.TDM_DEVICE_CUDA));
        Assert.That((int)DType.F32, Is.EqualTo((int)tdm_dtype.TDM_DTYPE_F32));
        Assert.That((int)DType.F16, Is.EqualTo((int)tdm_dtype.TDM_DTYPE_F16));
        Assert.That((int)DType.BF16, Is.EqualTo((int)tdm_dtype.TDM_DTYPE_BF16));
        Assert.That((int)Attention.Dense, Is.EqualTo((int)tdm_attention.TDM_ATTENTION_DENSE));
        Assert.That(Uncertainty.MaxTopK, Is.EqualTo(NativeMethods.TDM_MAX_TOP_K));
    }
}
