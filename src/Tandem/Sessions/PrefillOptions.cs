using Tandem.Interop;

namespace Tandem;

/// <summary>The attention method of a prefill (<c>tdm_attention</c>; ALGORITHMS.md 3 and 4). Decode is always dense.</summary>
public enum Attention
{
    /// <summary>Every causal key for every query.</summary>
    Dense = 0,

    /// <summary>XAttention: antidiagonal block scores, blocks kept per row up to a cumulative threshold.</summary>
    XAttention = 1,

    /// <summary>FlexPrefill: per head a query-aware or a vertical-slash block pattern covering a fraction gamma.</summary>
    FlexPrefill = 2,
}

/// <summary>Switches that reproduce quirks of the reference implementations (<c>tdm_sparse_compat</c>).</summary>
[Flags]
public enum SparseCompat
{
    /// <summary>The clean behaviour.</summary>
    None = 0,

    /// <summary>FlexPrefill budgets use "// 128 + 1" whatever the block size.</summary>
    FlexBudget128 = 1,

    /// <summary>FlexPrefill's Jensen-Shannon distance is NaN at a zero probability, so such a head is vertical-slash.</summary>
    FlexJsdNaN = 2,
}

/// <summary>
/// How to run one prefill (<c>tdm_prefill_options</c>); every default is the native default. The block-sparse knobs
/// are read only by their method; the native core checks them and reports a bad one as an
/// <see cref="ArgumentException"/> that names it. Prompts shorter than a few blocks run dense.
/// </summary>
/// <param name="AllLogits">Keep the logits of every new position, not just the last.</param>
/// <param name="Attention">The attention method.</param>
public sealed record PrefillOptions(bool AllLogits = false, Attention Attention = Attention.Dense)
{
    /// <summary>Tokens per attention block: 64 or 128.</summary>
    public int BlockSize { get; init; } = 128;

    /// <summary>XAttention antidiagonal stride S; divides <see cref="BlockSize"/>.</summary>
    public int XAttentionStride { get; init; } = 8;

    /// <summary>XAttention cumulative threshold, &gt;= 0 (1 or more keeps every causal block).</summary>
    public float XAttentionThreshold { get; init; } = 0.9f;

    /// <summary>
    /// Optional per-layer, per-head XAttention thresholds, <c>Layers * Heads</c> values row-major by layer
    /// (e.g. a profiled minimum-threshold table); overrides <see cref="XAttentionThreshold"/>.
    /// </summary>
    public IReadOnlyList<float>? XAttentionThresholds { get; init; }

    /// <summary>
    /// XAttention scores blocks from fp8 E4M3 copies of Q and K (each head scaled by a power of two so that its
    /// largest magnitude fits 448, then rounded to nearest even) instead of Q and K themselves: on the GPU the
    /// estimation streams half the bytes at twice the tensor-core rate; the CPU rounds identically. Only the block
    /// selection reads the copies; the attention itself is exact. Off by default.
    /// </summary>
    public bool XAttentionFp8 { get; init; }

    /// <summary>FlexPrefill coverage gamma in (0, 1].</summary>
    public float FlexGamma { get; init; } = 0.95f;

    /// <summary>FlexPrefill Jensen-Shannon distance below which a head is query-aware, &gt;= 0.</summary>
    public float FlexTau { get; init; } = 0.1f;

    /// <summary>FlexPrefill minimum budget in tokens.</summary>
    public int FlexMinBudget { get; init; } = 1024;

    /// <summary>FlexPrefill maximum budget in tokens; 0 = no cap.</summary>
    public int FlexMaxBudget { get; init; }

    /// <summary>Reference quirks to reproduce.</summary>
    public SparseCompat Compat { get; init; }

    /// <summary>Whether the prefill is block-sparse.</summary>
    public bool IsSparse => Attention != Attention.Dense;

    /// <summary>
    /// Checks the knobs the method reads, with the native core's rules, so that a bad value is reported before any
    /// work (the native core checks them again).
    /// </summary>
    /// <exception cref="ArgumentException">A knob is out of range; the message names it.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Attention))
        {
            throw new ArgumentException($"unknown attention method {(int)Attention}", nameof(Attention));
        }
        if (!IsSparse)
        {
            return;
        }
        if (BlockSize is not (64 or 128))
        {
            throw new ArgumentException($"BlockSize must be 64 or 128, not {BlockSize}", nameof(BlockSize));
        }
        if ((Compat & ~(SparseCompat.FlexBudget128 | SparseCompat.FlexJsdNaN)) != 0)
        {
            throw new ArgumentException($"unknown Compat flags {(int)Compat}", nameof(Compat));
        }
        if (Attention == Attention.XAttention)
        {
            if (XAttentionStride <= 0 || BlockSize % XAttentionStride != 0)
            {
                throw new ArgumentException(
                    $"XAttentionStride must divide the block size {BlockSize}, not {XAttentionStride}", nameof(XAttentionStride));
            }
            foreach (float t in XAttentionThresholds ?? [XAttentionThreshold])
            {
                if (!float.IsFinite(t) || t < 0)
                {
                    throw new ArgumentException($"XAttention thresholds must be finite and >= 0, not {t}", nameof(XAttentionThreshold));
                }
            }
            return;
        }
        if (!(FlexGamma > 0 && FlexGamma <= 1))
        {
            throw new ArgumentException($"FlexGamma must be in (0, 1], not {FlexGamma}", nameof(FlexGamma));
        }
        if (!float.IsFinite(FlexTau) || FlexTau < 0)
        {
            throw new ArgumentException($"FlexTau must be finite and >= 0, not {FlexTau}", nameof(FlexTau));
        }
        if (FlexMinBudget < 0 || FlexMaxBudget < 0 || (FlexMaxBudget != 0 && FlexMaxBudget < FlexMinBudget))
        {
            throw new ArgumentException(
                $"FlexMinBudget ({FlexMinBudget}) and FlexMaxBudget ({FlexMaxBudget}) must be >= 0, and the maximum 0 (no cap) or >= the minimum",
                nameof(FlexMaxBudget));
        }
    }

    /// <summary>
    /// Writes these options into <paramref name="native"/> (already initialised). The threshold table, if any, is
    /// copied to <paramref name="table"/>, which the caller pins for the call: its length is checked against the
    /// model here because the native core only sees a pointer.
    /// </summary>
    internal unsafe void WriteTo(tdm_prefill_options* native, ModelInfo model, out float[]? table)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(BlockSize, nameof(BlockSize));
        ArgumentOutOfRangeException.ThrowIfNegative(XAttentionStride, nameof(XAttentionStride));
        ArgumentOutOfRangeException.ThrowIfNegative(FlexMinBudget, nameof(FlexMinBudget));
        ArgumentOutOfRangeException.ThrowIfNegative(FlexMaxBudget, nameof(FlexMaxBudget));
        native->all_logits = AllLogits ? (byte)1 : (byte)0;
        native->attention = (int)Attention;
        native->block_size = (uint)BlockSize;
        native->xattn_stride = (uint)XAttentionStride;
        native->xattn_threshold = XAttentionThreshold;
        native->flex_gamma = FlexGamma;
        native->flex_tau = FlexTau;
        native->flex_min_budget = (uint)FlexMinBudget;
        native->flex_max_budget = (uint)FlexMaxBudget;
        native->sparse_compat = (uint)Compat;
        native->xattn_fp8 = XAttentionFp8 ? (byte)1 : (byte)0;
        table = null;
        if (Attention == Attention.XAttention && XAttentionThresholds is { } given)
        {
            int expected = model.Layers * model.Heads;
            if (given.Count != expected)
            {
                throw new ArgumentException(
                    $"XAttentionThresholds has {given.Count} values; the model needs Layers x Heads = {model.Layers} x {model.Heads} = {expected}",
                    nameof(XAttentionThresholds));
            }
            table = given.ToArray();
        }
    }
}

/// <summary>
/// The attention density of a session's last prefill: per layer and query head, the fraction of causal
/// (query block, key block) pairs computed (1 for dense attention).
/// </summary>
/// <param name="Values">Layers x heads values, row-major by layer.</param>
/// <param name="Heads">Query heads per layer.</param>
/// <param name="Mean">The mean over layers and heads.</param>
public sealed record AttentionDensity(IReadOnlyList<float> Values, int Heads, double Mean)
{
    /// <summary>Layers covered.</summary>
    public int Layers => Heads == 0 ? 0 : Values.Count / Heads;

    /// <summary>The density of query head <paramref name="head"/> in layer <paramref name="layer"/>.</summary>
    public float this[int layer, int head]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(layer);
            ArgumentOutOfRangeException.ThrowIfNegative(head);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(layer, Layers);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(head, Heads);
            return Values[layer * Heads + head];
        }
    }

    /// <summary>The mean density of one layer.</summary>
    public double LayerMean(int layer)
    {
        double sum = 0;
        for (int h = 0; h < Heads; h++)
        {
            sum += this[layer, h];
        }
        return sum / Heads;
    }
}
