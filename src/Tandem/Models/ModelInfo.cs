using System.Globalization;
using System.Text;

namespace Tandem;

/// <summary>The shape and metadata of a loaded model (<c>tdm_model_info</c>).</summary>
/// <param name="Architecture">The Hugging Face architecture, e.g. "LlamaForCausalLM".</param>
/// <param name="Layers">Transformer blocks.</param>
/// <param name="HiddenSize">Width of the residual stream.</param>
/// <param name="IntermediateSize">Width of the MLP.</param>
/// <param name="Heads">Query heads.</param>
/// <param name="KvHeads">Key/value heads (fewer than <paramref name="Heads"/> under grouped-query attention).</param>
/// <param name="HeadDim">Width of one head.</param>
/// <param name="VocabSize">Rows of the embedding, columns of the logits.</param>
/// <param name="ContextLength">max_position_embeddings.</param>
/// <param name="SlidingWindow">Attention window in tokens, or 0 for none.</param>
/// <param name="DType">The dtype of the stored weights.</param>
/// <param name="Device">Where the model runs.</param>
/// <param name="TieWordEmbeddings">Whether the output projection reuses the embedding.</param>
/// <param name="RmsNormEps">Epsilon of the RMSNorms.</param>
/// <param name="RopeTheta">Base of the rotary embedding.</param>
/// <param name="ParameterCount">Number of parameters.</param>
/// <param name="BosTokenId">The beginning-of-sequence id of config.json, or <see langword="null"/>.</param>
/// <param name="EosTokenIds">End-of-sequence ids of config.json and generation_config.json.</param>
public sealed record ModelInfo(
    string Architecture,
    int Layers,
    int HiddenSize,
    int IntermediateSize,
    int Heads,
    int KvHeads,
    int HeadDim,
    int VocabSize,
    int ContextLength,
    int SlidingWindow,
    DType DType,
    Device Device,
    bool TieWordEmbeddings,
    float RmsNormEps,
    float RopeTheta,
    long ParameterCount,
    int? BosTokenId,
    IReadOnlyList<int> EosTokenIds)
{
    // The compiler's PrintMembers would show EosTokenIds as a type name; list the ids instead.
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append(CultureInfo.InvariantCulture,
            $"Architecture = {Architecture}, Layers = {Layers}, HiddenSize = {HiddenSize}, IntermediateSize = {IntermediateSize}, ");
        builder.Append(CultureInfo.InvariantCulture,
            $"Heads = {Heads}, KvHeads = {KvHeads}, HeadDim = {HeadDim}, VocabSize = {VocabSize}, ContextLength = {ContextLength}, ");
        builder.Append(CultureInfo.InvariantCulture,
            $"SlidingWindow = {SlidingWindow}, DType = {DType}, Device = {Device}, TieWordEmbeddings = {TieWordEmbeddings}, ");
        builder.Append(CultureInfo.InvariantCulture,
            $"RmsNormEps = {RmsNormEps}, RopeTheta = {RopeTheta}, ParameterCount = {ParameterCount}, ");
        builder.Append(CultureInfo.InvariantCulture,
            $"BosTokenId = {BosTokenId?.ToString(CultureInfo.InvariantCulture) ?? "none"}, EosTokenIds = [{string.Join(", ", EosTokenIds)}]");
        return true;
    }
}
