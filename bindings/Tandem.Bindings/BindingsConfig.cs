using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tandem.Bindings;

/// <summary>
/// bindings/bindings.json. Paths in it are relative to the repository root, which is the parent of the folder
/// holding the file, so the same file works from any working directory.
/// </summary>
public sealed class BindingsConfig
{
    /// <summary>The C header to bind, e.g. native/include/tandem.h.</summary>
    public required string Header { get; init; }

    /// <summary>Namespace of the generated interop types.</summary>
    public required string Namespace { get; init; }

    /// <summary>The static partial class holding functions and constants.</summary>
    public required string ClassName { get; init; }

    /// <summary>The name given to [LibraryImport], resolved by the facade's NativeLibrary resolver.</summary>
    public required string LibraryName { get; init; }

    /// <summary>Where NativeMethods.g.cs is written.</summary>
    public required string Output { get; init; }

    public required LayoutTestsConfig LayoutTests { get; init; }

    /// <summary>Opaque structs whose pointers are passed as nint (the facade wraps them in SafeHandles).</summary>
    public required IReadOnlyList<string> Handles { get; init; }

    /// <summary>Object-like #defines that are not meant for C# and would not evaluate to a number.</summary>
    public IReadOnlyList<string> IgnoredMacros { get; init; } = Array.Empty<string>();

    /// <summary>Folders searched for &lt;...&gt; includes, after -nostdinc (the hermetic stdint.h).</summary>
    public IReadOnlyList<string> IncludeDirectories { get; init; } = Array.Empty<string>();

    /// <summary>Arguments given to clang verbatim, e.g. -x c -std=c11 --target=... -nostdinc.</summary>
    public IReadOnlyList<string> ClangArgs { get; init; } = Array.Empty<string>();

    /// <summary>The repository root that the paths above are relative to (absolute).</summary>
    [JsonIgnore]
    public string Root { get; private set; } = "";

    public string HeaderPath => Resolve(Header);
    public string OutputPath => Resolve(Output);
    public string LayoutTestsPath => Resolve(LayoutTests.Output);

    /// <summary>Reads and validates a bindings.json.</summary>
    public static BindingsConfig Load(string path)
    {
        string fullPath = Path.GetFullPath(path);
        BindingsConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<BindingsConfig>(File.ReadAllText(fullPath), JsonOptions);
        }
        catch (JsonException e)
        {
            throw new GeneratorException($"{fullPath}: {e.Message}");
        }
        if (config is null)
            throw new GeneratorException($"{fullPath}: the file is empty.");
        config.Root = Path.GetDirectoryName(Path.GetDirectoryName(fullPath))!;
        return config;
    }

    /// <summary>The arguments handed to libclang: the configured ones, then -isystem for each include folder.</summary>
    internal IReadOnlyList<string> ClangArguments()
    {
        var arguments = new List<string>(ClangArgs);
        foreach (string directory in IncludeDirectories)
        {
            arguments.Add("-isystem");
            arguments.Add(Resolve(directory));
        }
        return arguments;
    }

    /// <summary>A repository-relative path with forward slashes, as written into generated headers.</summary>
    internal string Display(string absolutePath) => Path.GetRelativePath(Root, absolutePath).Replace('\\', '/');

    private string Resolve(string relative) => Path.GetFullPath(Path.Combine(Root, relative));

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };
}

/// <summary>The generated NUnit layout test: where it goes and what it is called.</summary>
public sealed class LayoutTestsConfig
{
    public required string Namespace { get; init; }
    public required string ClassName { get; init; }
    public required string Output { get; init; }
}
