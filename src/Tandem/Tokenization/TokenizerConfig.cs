using System.Text.Json;

namespace Tandem.Tokenization;

/// <summary>
/// What transformers keeps beside tokenizer.json: tokenizer_config.json (BOS/EOS names, whether a
/// SentencePiece tokenizer adds BOS/EOS, added tokens by id) and generation_config.json (the EOS ids
/// generation stops on, which may be several).
/// </summary>
internal sealed class TokenizerConfig
{
    public const string FileName = "tokenizer_config.json";
    public const string GenerationFileName = "generation_config.json";

    public static TokenizerConfig Empty { get; } = new();

    /// <summary>The BOS token's text, when declared.</summary>
    public string? BosToken { get; private init; }

    /// <summary>The EOS token's text, when declared.</summary>
    public string? EosToken { get; private init; }

    public bool? AddBosToken { get; private init; }

    public bool? AddEosToken { get; private init; }

    /// <summary>generation_config.json's eos_token_id, one or several.</summary>
    public IReadOnlyList<int> GenerationEosTokenIds { get; private init; } = [];

    /// <summary>tokenizer_config.json's added_tokens_decoder: added tokens keyed by id (used when there is no tokenizer.json).</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; private init; } = [];

    public static TokenizerConfig Read(string modelDirectory)
    {
        string configPath = Path.Combine(modelDirectory, FileName);
        string generationPath = Path.Combine(modelDirectory, GenerationFileName);
        var config = File.Exists(configPath) ? ReadTokenizerConfig(configPath) : new TokenizerConfig();
        if (File.Exists(generationPath))
        {
            using var generation = Parse(generationPath);
            var root = generation.RootElement;
            config = new TokenizerConfig
            {
                BosToken = config.BosToken,
                EosToken = config.EosToken,
                AddBosToken = config.AddBosToken,
                AddEosToken = config.AddEosToken,
                AddedTokens = config.AddedTokens,
                GenerationEosTokenIds = root.TryGetProperty("eos_token_id", out var eos) ? ReadIds(eos, generationPath, "eos_token_id") : [],
            };
        }

        return config;
    }

    private static TokenizerConfig ReadTokenizerConfig(string path)
    {
        using var document = Parse(path);
        var root = document.RootElement;
        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens_decoder", out var decoder) && decoder.ValueKind == JsonValueKind.Object)
        {
            foreach (var entry in decoder.EnumerateObject())
            {
                if (!int.TryParse(entry.Name, out int id) || id < 0 || entry.Value.ValueKind != JsonValueKind.Object
                    || !entry.Value.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
                {
                    throw new InvalidDataException($"{path}: added_tokens_decoder[\"{entry.Name}\"] is not an id with a token object");
                }

                bool special = Flag(entry.Value, "special") ?? false;
                added.Add(new AddedToken(
                    id,
                    content.GetString()!,
                    special,
                    Flag(entry.Value, "single_word") ?? false,
                    Flag(entry.Value, "lstrip") ?? false,
                    Flag(entry.Value, "rstrip") ?? false,
                    Flag(entry.Value, "normalized") ?? !special));
            }
        }

        return new TokenizerConfig
        {
            BosToken = TokenText(root, "bos_token", path),
            EosToken = TokenText(root, "eos_token", path),
            AddBosToken = Flag(root, "add_bos_token"),
            AddEosToken = Flag(root, "add_eos_token"),
            AddedTokens = added,
        };
    }

    /// <summary>A token given as a string or as an AddedToken object {"content": ...}; null when absent.</summary>
    private static string? TokenText(JsonElement root, string name, string path)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind == JsonValueKind.String)
        {
            return value.GetString();
        }

        if (value.ValueKind == JsonValueKind.Object && value.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
        {
            return content.GetString();
        }

        throw new InvalidDataException($"{path}: \"{name}\" is neither a string nor a token object with \"content\"");
    }

    private static bool? Flag(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) ? value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => null,
        } : null;

    private static int ReadId(JsonElement element, string path, string name) =>
        element.ValueKind == JsonValueKind.Number && element.TryGetInt32(out int id) && id >= 0
            ? id
            : throw new InvalidDataException($"{path}: \"{name}\" holds something other than a token id");

    private static IReadOnlyList<int> ReadIds(JsonElement element, string path, string name) => element.ValueKind switch
    {
        JsonValueKind.Null => [],
        JsonValueKind.Array => element.EnumerateArray().Select(e => ReadId(e, path, name)).ToArray(),
        _ => [ReadId(element, path, name)],
    };

    private static JsonDocument Parse(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e);
        }
    }
}
