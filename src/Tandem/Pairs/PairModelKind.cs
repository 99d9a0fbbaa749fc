namespace Tandem;

/// <summary>Which model of a <see cref="ModelPair"/> (<c>tdm_pair_model</c>).</summary>
public enum PairModelKind
{
    /// <summary>The small, cheap model (drafts in speculative decoding; writes by default in R-Stitch and EAD).</summary>
    Small = 0,
    /// <summary>The large, accurate model.</summary>
    Large = 1,
}
