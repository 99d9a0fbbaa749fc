using Tandem.Interop;

namespace Tandem;

/// <summary>How a <see cref="Sampler"/> draws tokens (<c>tdm_sampler_options</c>); the defaults are the native defaults.</summary>
/// <param name="Temperature">Softmax temperature; 0 = greedy (argmax, lowest id on ties). Not NaN, not negative.</param>
/// <param name="TopK">Keep the K most likely tokens; 0 = off.</param>
/// <param name="TopP">Keep the smallest set with mass ≥ TopP; in (0, 1], 1 = off.</param>
/// <param name="Seed">Random seed: the same seed gives the same tokens.</param>
/// <param name="StatsTopK">K of the statistics reported with each token.</param>
public sealed record SamplerOptions(float Temperature = 1f, int TopK = 0, float TopP = 1f, ulong Seed = 0, int StatsTopK = 2)
{
    /// <summary>
    /// Checks the options with the native core's own rules (it creates and frees a sampler), so that a caller can
    /// reject bad settings before a slow model load.
    /// </summary>
    /// <exception cref="ArgumentException">NaN or negative temperature, TopP outside (0, 1], negative TopK, ...</exception>
    public void Validate()
    {
        using var sampler = new Sampler(this);
    }

    internal unsafe tdm_sampler_options ToNative()
    {
        Uncertainty.RequireTopK(StatsTopK, nameof(StatsTopK));
        tdm_sampler_options native;
        NativeMethods.tdm_sampler_options_init(&native);
        native.temperature = Temperature;
        native.top_k = TopK;
        native.top_p = TopP;
        native.seed = Seed;
        native.stats_top_k = (uint)StatsTopK;
        return native;
    }
}
