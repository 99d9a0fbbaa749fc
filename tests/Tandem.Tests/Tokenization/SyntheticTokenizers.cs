using System.Text.Json.Nodes;

namespace Tandem.Tests.Tokenization;

/// <summary>Writes small Hugging Face tokenizer.json files for tests of single features.</summary>
internal static class SyntheticTokenizers
{
    /// <summary>
    /// A byte-level BPE over a tiny vocabulary: the 256 byte characters plus <paramref name="words"/>
    /// (in the byte alphabet, e.g. "Ġthe"), with the given merges.
    /// </summary>
    public static JsonObject ByteLevel(IEnumerable<string> words, IEnumerable<JsonNode> merges, bool ignoreMerges = false)
    {
        var vocab = new JsonObject();
        int id = 0;
        for (int b = 0; b < 256; b++)
        {
            vocab[Tandem.Tokenization.ByteLevelAlphabet.ToChar((byte)b).ToString()] = id++;
        }

        foreach (string word in words)
        {
            vocab[word] = id++;
        }

        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["ignore_merges"] = ignoreMerges,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(merges.Select(m => m.DeepClone()).ToArray()),
            },
        };
    }

    public static void Write(TempDirectory directory, JsonNode tokenizerJson, JsonNode? tokenizerConfig = null)
    {
        File.WriteAllText(directory.File("tokenizer.json"), tokenizerJson.ToJsonString());
        if (tokenizerConfig is not null)
        {
            File.WriteAllText(directory.File("tokenizer_config.json"), tokenizerConfig.ToJsonString());
        }
    }
}
