namespace Tandem;

/// <summary>How to create a session (<c>tdm_session_options</c>); the defaults are the native defaults.</summary>
/// <param name="KvCapacity">Tokens the KV cache holds; 0 = the model's context length (max_position_embeddings).
/// The session's context limit is the smaller of the two.</param>
/// <param name="Threads">CPU threads; 0 = the model's default.</param>
public sealed record SessionOptions(int KvCapacity = 0, int Threads = 0);

/// <summary>
/// The statistics of the distribution that predicted one token of a scored sequence. Every value is
/// <see langword="null"/> where undefined: for the first token of a fresh session nothing predicted it.
/// </summary>
/// <param name="Id">The token id.</param>
/// <param name="LogProb">log p(token | tokens before it), natural log.</param>
/// <param name="Entropy">Entropy of that predictive distribution, in nats.</param>
/// <param name="Au">LogTokU aleatoric uncertainty of it.</param>
/// <param name="Eu">LogTokU epistemic uncertainty of it.</param>
public sealed record ScoredToken(int Id, double? LogProb, double? Entropy, double? Au, double? Eu);
