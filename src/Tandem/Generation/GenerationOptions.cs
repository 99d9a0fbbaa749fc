namespace Tandem;

/// <summary>How <see cref="Model.GenerateAsync(string, GenerationOptions?, CancellationToken)"/> samples and when it stops.</summary>
/// <remarks>
/// Generation stops at the first of: an end-of-sequence id (those of config.json / generation_config.json and of
/// the tokenizer) unless <see cref="IgnoreEos"/>; <see cref="MaxTokens"/> generated tokens; the session's context
/// limit (prompt + generated tokens = <see cref="Session.Capacity"/>). The token it stops on is the last one
/// streamed and carries the <see cref="FinishReason"/>; an end-of-sequence token is streamed too.
/// </remarks>
/// <param name="MaxTokens">The most tokens to generate, at least 1.</param>
/// <param name="Temperature">Softmax temperature; 0 = greedy (argmax, lowest id on ties).</param>
/// <param name="TopK">Keep the K most likely tokens; 0 = off.</param>
/// <param name="TopP">Keep the smallest set with mass ≥ TopP; in (0, 1], 1 = off.</param>
/// <param name="Seed">Random seed: the same seed, prompt and options give the same tokens.</param>
/// <param name="IgnoreEos">Keep going past end-of-sequence ids.</param>
/// <param name="Session">KV capacity and threads of the session the generation runs in; null for the defaults.</param>
/// <remarks>The sampling defaults are the native sampler's (<see cref="SamplerOptions"/>).</remarks>
public sealed record GenerationOptions(
    int MaxTokens = GenerationOptions.DefaultMaxTokens,
    float Temperature = 1f,
    int TopK = 0,
    float TopP = 1f,
    ulong Seed = 0,
    bool IgnoreEos = false,
    SessionOptions? Session = null)
{
    /// <summary>The default of <see cref="MaxTokens"/>.</summary>
    public const int DefaultMaxTokens = 64;

    /// <summary>The attention of the prompt's prefill (e.g. block-sparse for a long prompt); null = dense. Decode is dense.</summary>
    public PrefillOptions? Prefill { get; init; }

    /// <summary>The sampler these options ask for.</summary>
    public SamplerOptions Sampling => new(Temperature, TopK, TopP, Seed);

    internal void Validate()
    {
        if (MaxTokens < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxTokens), MaxTokens, "MaxTokens must be at least 1");
        }
        Sampling.Validate();
    }
}

/// <summary>Why a generation stopped; <see cref="None"/> on every token but the last.</summary>
public enum FinishReason
{
    None = 0,
    /// <summary>The token is an end-of-sequence id.</summary>
    EndOfSequence,
    /// <summary>MaxTokens tokens were generated.</summary>
    MaxTokens,
    /// <summary>The sequence filled the context limit (max_position_embeddings or the session's KV capacity).</summary>
    ContextLimit,
}

/// <summary>One generated token as it streams out.</summary>
/// <param name="Id">The token id.</param>
/// <param name="Text">The text this token completes, decoded incrementally: "" while a multi-byte UTF-8 character
/// is still partial, and the whole character once its last byte arrives (special tokens such as an end-of-sequence
/// give ""). The concatenation of all pieces is the correctly decoded continuation; the last token's piece also holds
/// any bytes of a character the stream ended inside, as U+FFFD.</param>
/// <param name="TokenText">The token decoded alone; may hold U+FFFD for part of a UTF-8 sequence.</param>
/// <param name="Entropy">Entropy (nats) of the distribution the token was drawn from, at temperature 1.</param>
/// <param name="Au">LogTokU aleatoric uncertainty of that distribution.</param>
/// <param name="Eu">LogTokU epistemic uncertainty of that distribution.</param>
/// <param name="MaxProb">The largest probability of that distribution.</param>
/// <param name="Finish">Why the generation stops after this token; <see cref="FinishReason.None"/> if it goes on.</param>
/// <param name="FinishDetail">The stop in words, e.g. which context limit was reached; null if it goes on.</param>
public sealed record GeneratedToken(
    int Id,
    string Text,
    string TokenText,
    double Entropy,
    double Au,
    double Eu,
    double MaxProb,
    FinishReason Finish,
    string? FinishDetail);
