using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Tandem.Tokenization;

/// <summary>How a tokenizer.json decodes ids back to text.</summary>
internal enum DecoderKind
{
    /// <summary>No decoder declared.</summary>
    None,

    /// <summary><c>ByteLevel</c>: vocabulary strings are GPT-2 byte-alphabet text.</summary>
    ByteLevel,

    /// <summary>SentencePiece style: '▁' is a space, &lt;0xNN&gt; tokens are bytes, one leading space is dropped.</summary>
    SentencePiece,
}

/// <summary>The parts of a Hugging Face tokenizer.json that Tandem uses, parsed and checked.</summary>
internal sealed class TokenizerJsonDefinition
{
    public required string Path { get; init; }

    public required BpeModelDefinition Model { get; init; }

    public required IReadOnlyList<AddedToken> AddedTokens { get; init; }

    public TextNormalizer? Normalizer { get; init; }

    /// <summary>The declared pre-tokenizer; null when the file declares none.</summary>
    public PreTokenizerStep? PreTokenizer { get; init; }

    /// <summary>Whether the pre-tokenizer includes <c>ByteLevel</c> (the model works on the byte alphabet).</summary>
    public required bool IsByteLevel { get; init; }

    /// <summary>Whether the file describes a SentencePiece model converted to BPE (Metaspace / '▁' handling, byte fallback).</summary>
    public required bool IsSentencePieceStyle { get; init; }

    public required SpecialTokenTemplate Template { get; init; }

    public required DecoderKind Decoder { get; init; }
}

/// <summary>
/// Reads a Hugging Face tokenizer.json with System.Text.Json. Every unsupported feature is reported as an
/// <see cref="InvalidDataException"/> that names the file, the JSON section and the feature.
/// </summary>
internal static class TokenizerJsonReader
{
    private const RegexOptions PatternOptions = RegexOptions.Compiled | RegexOptions.CultureInvariant;

    /// <summary>SentencePiece's visible space, '▁' (U+2581).</summary>
    private const string Metaspace = "\u2581";

    public static TokenizerJsonDefinition Read(string path)
    {
        JsonDocument document;
        try
        {
            using var stream = File.OpenRead(path);
            document = JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e);
        }

        using (document)
        {
            var reader = new Reader(path);
            return reader.ReadRoot(document.RootElement);
        }
    }

    private sealed class Reader(string path)
    {
        private bool _sawByteLevel;
        private bool _sawMetaspace;

        public TokenizerJsonDefinition ReadRoot(JsonElement root)
        {
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Invalid("the root is not a JSON object");
            }

            var model = ReadModel(Property(root, "model") ?? throw Invalid("has no \"model\" section"));
            var normalizer = ReadNormalizer(Property(root, "normalizer"), "normalizer");
            var preTokenizer = ReadPreTokenizer(Property(root, "pre_tokenizer"), "pre_tokenizer");
            var addedTokens = ReadAddedTokens(Property(root, "added_tokens"));
            var template = ReadPostProcessor(Property(root, "post_processor"), "post_processor");
            var decoder = ReadDecoder(Property(root, "decoder"), "decoder");

            return new TokenizerJsonDefinition
            {
                Path = path,
                Model = model,
                AddedTokens = addedTokens,
                Normalizer = normalizer,
                PreTokenizer = preTokenizer,
                IsByteLevel = _sawByteLevel,
                IsSentencePieceStyle = !_sawByteLevel && (_sawMetaspace || model.ByteFallback || decoder == DecoderKind.SentencePiece),
                Template = template,
                Decoder = decoder,
            };
        }

        private BpeModelDefinition ReadModel(JsonElement model)
        {
            string type = OptionalString(model, "type") ?? "BPE"; // files from early tokenizers omit it
            if (type != "BPE")
            {
                throw Invalid($"model type \"{type}\" is not supported (Tandem reads BPE models: byte-level, or SentencePiece BPE through tokenizer.model)");
            }

            if (Property(model, "dropout") is { ValueKind: JsonValueKind.Number } dropout && dropout.GetDouble() != 0)
            {
                throw Invalid("model.dropout is set: BPE dropout makes encoding random and is not supported");
            }

            var vocabElement = Property(model, "vocab");
            if (vocabElement is not { ValueKind: JsonValueKind.Object } vocabObject)
            {
                throw Invalid("model.vocab is missing or not an object");
            }

            var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var entry in vocabObject.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
                {
                    throw Invalid($"model.vocab[\"{entry.Name}\"] is not a non-negative integer id");
                }

                vocabulary[entry.Name] = id;
            }

            return new BpeModelDefinition(
                vocabulary,
                ReadMerges(Property(model, "merges")),
                OptionalString(model, "unk_token"),
                OptionalBool(model, "fuse_unk") ?? false,
                OptionalBool(model, "byte_fallback") ?? false,
                OptionalBool(model, "ignore_merges") ?? false,
                OptionalString(model, "continuing_subword_prefix"),
                OptionalString(model, "end_of_word_suffix"));
        }

        /// <summary>Merges come as "left right" strings (older files) or ["left", "right"] pairs (newer files).</summary>
        private List<(string, string)> ReadMerges(JsonElement? merges)
        {
            var result = new List<(string, string)>();
            if (merges is null)
            {
                return result;
            }

            if (merges.Value.ValueKind != JsonValueKind.Array)
            {
                throw Invalid("model.merges is not an array");
            }

            int index = 0;
            foreach (var merge in merges.Value.EnumerateArray())
            {
                (string Left, string Right) pair;
                if (merge.ValueKind == JsonValueKind.String)
                {
                    string text = merge.GetString()!;
                    int space = text.IndexOf(' ');
                    if (space <= 0 || space == text.Length - 1 || text.IndexOf(' ', space + 1) >= 0)
                    {
                        throw Invalid($"model.merges[{index}] \"{text}\" is not two tokens separated by one space");
                    }

                    pair = (text[..space], text[(space + 1)..]);
                }
                else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
                         && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
                {
                    pair = (merge[0].GetString()!, merge[1].GetString()!);

                    // Microsoft.ML.Tokenizers takes merges as "left right" strings.
                    if (pair.Left.Contains(' ') || pair.Right.Contains(' ') || pair.Left.Length == 0 || pair.Right.Length == 0)
                    {
                        throw Invalid($"model.merges[{index}] has a token that is empty or contains a space, which the BPE library cannot express");
                    }
                }
                else
                {
                    throw Invalid($"model.merges[{index}] is neither a \"left right\" string nor a [left, right] pair");
                }

                result.Add(pair);
                index++;
            }

            return result;
        }

        private List<AddedToken> ReadAddedTokens(JsonElement? tokens)
        {
            var result = new List<AddedToken>();
            if (tokens is null)
            {
                return result;
            }

            if (tokens.Value.ValueKind != JsonValueKind.Array)
            {
                throw Invalid("added_tokens is not an array");
            }

            int index = 0;
            foreach (var token in tokens.Value.EnumerateArray())
            {
                string where = $"added_tokens[{index++}]";
                if (Property(token, "id") is not { ValueKind: JsonValueKind.Number } idElement || !idElement.TryGetInt32(out int id) || id < 0)
                {
                    throw Invalid($"{where}.id is missing or not a non-negative integer");
                }

                string content = OptionalString(token, "content") ?? throw Invalid($"{where}.content is missing");
                bool special = OptionalBool(token, "special") ?? false;
                result.Add(new AddedToken(
                    id,
                    content,
                    special,
                    OptionalBool(token, "single_word") ?? false,
                    OptionalBool(token, "lstrip") ?? false,
                    OptionalBool(token, "rstrip") ?? false,
                    OptionalBool(token, "normalized") ?? !special));
            }

            return result;
        }

        private TextNormalizer? ReadNormalizer(JsonElement? element, string where)
        {
            if (element is null)
            {
                return null;
            }

            string type = TypeOf(element.Value, where);
            switch (type)
            {
                case "NFC":
                case "NFD":
                case "NFKC":
                case "NFKD":
                {
                    var form = type switch
                    {
                        "NFC" => NormalizationForm.FormC,
                        "NFD" => NormalizationForm.FormD,
                        "NFKC" => NormalizationForm.FormKC,
                        _ => NormalizationForm.FormKD,
                    };
                    if (!UnicodeNormalization.Supports(form))
                    {
                        throw Invalid($"{where} {type} needs the runtime's Unicode data, which this process runs without (InvariantGlobalization); only NFC and NFD are built in");
                    }

                    return new UnicodeNormalizer(form);
                }

                case "Sequence":
                {
                    var steps = new List<TextNormalizer>();
                    int i = 0;
                    foreach (var step in ArrayProperty(element.Value, "normalizers", where))
                    {
                        steps.Add(ReadNormalizer(step, $"{where}.normalizers[{i++}]")!);
                    }

                    return new SequenceNormalizer(steps);
                }

                case "Replace":
                {
                    string content = OptionalString(element.Value, "content") ?? throw Invalid($"{where}.content is missing");
                    var (literal, regex) = ReadPattern(element.Value, where);
                    _sawMetaspace |= content == Metaspace; // ' ' -> '▁': a SentencePiece model converted to BPE
                    return regex is not null ? new ReplaceNormalizer(regex, content) : new ReplaceNormalizer(literal!, content);
                }

                case "Prepend":
                {
                    string prefix = OptionalString(element.Value, "prepend") ?? throw Invalid($"{where}.prepend is missing");
                    _sawMetaspace |= prefix == Metaspace;
                    return new PrependNormalizer(prefix);
                }

                default:
                    throw Invalid($"{where} type \"{type}\" is not supported (supported: NFC, NFD, NFKC, NFKD, Replace, Prepend, Sequence)");
            }
        }

        private PreTokenizerStep? ReadPreTokenizer(JsonElement? element, string where)
        {
            if (element is null)
            {
                return null;
            }

            string type = TypeOf(element.Value, where);
            switch (type)
            {
                case "ByteLevel":
                    _sawByteLevel = true;
                    return new ByteLevelPreTokenizerStep(
                        addPrefixSpace: OptionalBool(element.Value, "add_prefix_space") ?? true,
                        useRegex: OptionalBool(element.Value, "use_regex") ?? true);

                case "Split":
                {
                    var (literal, regex) = ReadPattern(element.Value, where);
                    string behaviorName = OptionalString(element.Value, "behavior") ?? throw Invalid($"{where}.behavior is missing");
                    if (!Enum.TryParse(behaviorName, ignoreCase: false, out SplitBehavior behavior) || !Enum.IsDefined(behavior))
                    {
                        throw Invalid($"{where}.behavior \"{behaviorName}\" is not a known split behavior");
                    }

                    bool invert = OptionalBool(element.Value, "invert") ?? false;
                    return regex is not null
                        ? new SplitPreTokenizerStep(regex, behavior, invert)
                        : new SplitPreTokenizerStep(literal!, behavior, invert);
                }

                case "Digits":
                    // Rust's char::is_numeric is the N categories; one piece per digit, or per run of digits.
                    return new SplitPreTokenizerStep(
                        new Regex(@"\p{N}", PatternOptions),
                        OptionalBool(element.Value, "individual_digits") ?? false ? SplitBehavior.Isolated : SplitBehavior.Contiguous,
                        invert: false);

                case "Sequence":
                {
                    var steps = new List<PreTokenizerStep>();
                    int i = 0;
                    foreach (var step in ArrayProperty(element.Value, "pretokenizers", where))
                    {
                        if (ReadPreTokenizer(step, $"{where}.pretokenizers[{i++}]") is { } parsed)
                        {
                            steps.Add(parsed);
                        }
                    }

                    return new SequencePreTokenizerStep(steps);
                }

                case "Metaspace":
                    // SentencePiece's whitespace handling: such a file is served by tokenizer.model.
                    _sawMetaspace = true;
                    return null;

                default:
                    throw Invalid($"{where} type \"{type}\" is not supported (supported: ByteLevel, Split, Digits, Sequence)");
            }
        }

        private SpecialTokenTemplate ReadPostProcessor(JsonElement? element, string where)
        {
            if (element is null)
            {
                return SpecialTokenTemplate.None;
            }

            string type = TypeOf(element.Value, where);
            switch (type)
            {
                case "ByteLevel":
                    return SpecialTokenTemplate.None; // only trims offsets

                case "TemplateProcessing":
                    return ReadTemplate(element.Value, where);

                case "RobertaProcessing":
                case "BertProcessing":
                    return new SpecialTokenTemplate([ReadTokenIdPair(element.Value, "cls", where)], [ReadTokenIdPair(element.Value, "sep", where)]);

                case "Sequence":
                {
                    var template = SpecialTokenTemplate.None;
                    int i = 0;
                    foreach (var step in ArrayProperty(element.Value, "processors", where))
                    {
                        template = ReadPostProcessor(step, $"{where}.processors[{i++}]").Wrapping(template);
                    }

                    return template;
                }

                default:
                    throw Invalid($"{where} type \"{type}\" is not supported (supported: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence)");
            }
        }

        /// <summary>The special tokens of the single-sequence template, split around its "$A".</summary>
        private SpecialTokenTemplate ReadTemplate(JsonElement element, string where)
        {
            var specialTokens = Property(element, "special_tokens");
            var prefix = new List<int>();
            var suffix = new List<int>();
            bool sawSequence = false;
            int i = 0;
            foreach (var item in ArrayProperty(element, "single", where))
            {
                string itemWhere = $"{where}.single[{i++}]";
                if (Property(item, "Sequence") is not null)
                {
                    sawSequence = true;
                    continue;
                }

                if (Property(item, "SpecialToken") is not { } special)
                {
                    throw Invalid($"{itemWhere} is neither a Sequence nor a SpecialToken");
                }

                string name = OptionalString(special, "id") ?? throw Invalid($"{itemWhere}.SpecialToken.id is missing");
                if (specialTokens is null || Property(specialTokens.Value, name) is not { } declared)
                {
                    throw Invalid($"{itemWhere} names special token \"{name}\", which {where}.special_tokens does not declare");
                }

                foreach (var id in ArrayProperty(declared, "ids", $"{where}.special_tokens[\"{name}\"]"))
                {
                    if (id.ValueKind != JsonValueKind.Number || !id.TryGetInt32(out int value) || value < 0)
                    {
                        throw Invalid($"{where}.special_tokens[\"{name}\"].ids holds something other than a token id");
                    }

                    (sawSequence ? suffix : prefix).Add(value);
                }
            }

            if (!sawSequence)
            {
                throw Invalid($"{where}.single has no Sequence item, so the text would be dropped");
            }

            return new SpecialTokenTemplate(prefix, suffix);
        }

        private int ReadTokenIdPair(JsonElement element, string name, string where)
        {
            if (Property(element, name) is { ValueKind: JsonValueKind.Array } pair && pair.GetArrayLength() == 2
                && pair[1].ValueKind == JsonValueKind.Number && pair[1].TryGetInt32(out int id) && id >= 0)
            {
                return id;
            }

            throw Invalid($"{where}.{name} is not a [token, id] pair");
        }

        private DecoderKind ReadDecoder(JsonElement? element, string where)
        {
            if (element is null)
            {
                return DecoderKind.None;
            }

            string type = TypeOf(element.Value, where);
            switch (type)
            {
                case "ByteLevel":
                    return DecoderKind.ByteLevel;

                case "Metaspace":
                case "ByteFallback":
                case "Fuse":
                case "Strip":
                case "Replace":
                    return DecoderKind.SentencePiece;

                case "Sequence":
                {
                    var kinds = new HashSet<DecoderKind>();
                    int i = 0;
                    foreach (var step in ArrayProperty(element.Value, "decoders", where))
                    {
                        kinds.Add(ReadDecoder(step, $"{where}.decoders[{i++}]"));
                    }

                    kinds.Remove(DecoderKind.None);
                    return kinds.Count switch
                    {
                        0 => DecoderKind.None,
                        1 => kinds.First(),
                        _ => throw Invalid($"{where} mixes ByteLevel and SentencePiece decoders"),
                    };
                }

                default:
                    throw Invalid($"{where} type \"{type}\" is not supported (supported: ByteLevel, and SentencePiece's Metaspace/Replace/ByteFallback/Fuse/Strip)");
            }
        }

        /// <summary>A <c>pattern</c> property: {"String": literal} or {"Regex": pattern}.</summary>
        private (string? Literal, Regex? Regex) ReadPattern(JsonElement element, string where)
        {
            if (Property(element, "pattern") is not { ValueKind: JsonValueKind.Object } pattern)
            {
                throw Invalid($"{where}.pattern is missing");
            }

            if (OptionalString(pattern, "String") is { } literal)
            {
                return (literal, null);
            }

            if (OptionalString(pattern, "Regex") is { } regex)
            {
                try
                {
                    return (null, new Regex(regex, PatternOptions));
                }
                catch (ArgumentException e)
                {
                    throw Invalid($"{where}.pattern.Regex cannot be compiled by .NET ({e.Message}): {regex}");
                }
            }

            throw Invalid($"{where}.pattern is neither {{\"String\": ...}} nor {{\"Regex\": ...}}");
        }

        private string TypeOf(JsonElement element, string where) =>
            element.ValueKind == JsonValueKind.Object && OptionalString(element, "type") is { } type
                ? type
                : throw Invalid($"{where} has no \"type\"");

        private IEnumerable<JsonElement> ArrayProperty(JsonElement element, string name, string where) =>
            Property(element, name) is { ValueKind: JsonValueKind.Array } array
                ? array.EnumerateArray()
                : throw Invalid($"{where}.{name} is missing or not an array");

        private static JsonElement? Property(JsonElement element, string name) =>
            element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
                ? value
                : null;

        private string? OptionalString(JsonElement element, string name) => Property(element, name) switch
        {
            null => null,
            { ValueKind: JsonValueKind.String } s => s.GetString(),
            _ => throw Invalid($"\"{name}\" is not a string"),
        };

        private bool? OptionalBool(JsonElement element, string name) => Property(element, name) switch
        {
            null => null,
            { ValueKind: JsonValueKind.True } => true,
            { ValueKind: JsonValueKind.False } => false,
            _ => throw Invalid($"\"{name}\" is not a boolean"),
        };

        private InvalidDataException Invalid(string message) => new($"{path}: {message}");
    }
}
