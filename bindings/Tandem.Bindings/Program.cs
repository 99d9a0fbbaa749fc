using Tandem.Bindings;

// dotnet run --project bindings/Tandem.Bindings -c Release -- [--check] [--config <bindings.json>]
//   no arguments: regenerate the files in place (a file whose content is unchanged is not touched)
//   --check:      write nothing; exit 1 if any committed file differs from what the header gives now

bool check = false;
string? configPath = null;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--check":
            check = true;
            break;
        case "--config" when i + 1 < args.Length:
            configPath = args[++i];
            break;
        default:
            Console.Error.WriteLine($"unknown argument '{args[i]}'. Usage: Tandem.Bindings [--check] [--config <bindings.json>]");
            return 2;
    }
}

try
{
    configPath ??= FindConfig();
    BindingsConfig config = BindingsConfig.Load(configPath);
    GeneratedBindings generated = Generator.Generate(config);

    int stale = 0;
    foreach (var (path, text) in new[] { (config.OutputPath, generated.NativeMethods), (config.LayoutTestsPath, generated.StructLayoutTests) })
    {
        string shown = config.Display(path);
        // Compare as '\n' text: a checkout with core.autocrlf has '\r\n' and is not stale for that.
        string? committed = File.Exists(path) ? File.ReadAllText(path).Replace("\r\n", "\n") : null;
        if (committed == text)
        {
            Console.WriteLine($"up to date: {shown}");
            continue;
        }
        if (check)
        {
            stale++;
            Console.Error.WriteLine(committed is null
                ? $"missing: {shown}"
                : $"out of date: {shown}\n{TextDiff.FirstDifference(committed, text, "committed", "generated")}");
            continue;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        Console.WriteLine($"wrote: {shown}");
    }
    if (stale > 0)
    {
        Console.Error.WriteLine($"{stale} generated file(s) are stale; run: {Tandem.Bindings.Emit.CSharpSyntax.RegenerateCommand}");
        return 1;
    }
    return 0;
}
catch (GeneratorException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

// The nearest bindings.json above the executable (bindings/Tandem.Bindings/bin/<config>/<tfm>/ -> bindings/),
// so the command behaves the same from any working directory.
static string FindConfig()
{
    for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
    {
        string candidate = Path.Combine(directory.FullName, "bindings.json");
        if (File.Exists(candidate))
            return candidate;
    }
    throw new GeneratorException($"no bindings.json above {AppContext.BaseDirectory}; pass --config <path>.");
}
