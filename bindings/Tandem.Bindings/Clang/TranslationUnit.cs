using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Tandem.Bindings.Clang;

/// <summary>A file the parser reads from memory instead of disk (the macro evaluation unit).</summary>
internal sealed record UnsavedFile(string Path, string Contents);

/// <summary>
/// A parsed C file: owns the libclang index and translation unit, and answers the questions the reader asks
/// about cursors, types, locations and tokens. Every cursor it hands out is valid until it is disposed.
/// </summary>
internal sealed unsafe class TranslationUnit : IDisposable
{
    private void* _index;
    private void* _unit;

    private TranslationUnit(void* index, void* unit)
    {
        _index = index;
        _unit = unit;
    }

    /// <summary>
    /// Parses <paramref name="path"/> with <paramref name="arguments"/> and fails, listing every diagnostic,
    /// if clang reports a warning or worse: the header is a public ABI and the generator refuses to guess.
    /// </summary>
    public static TranslationUnit Parse(string path, IReadOnlyList<string> arguments, UnsavedFile? unsaved = null)
    {
        void* index = LibClang.clang_createIndex(excludeDeclarationsFromPch: 0, displayDiagnostics: 0);
        if (index == null)
            throw new GeneratorException("libclang could not create an index (clang_createIndex returned NULL).");

        var pinned = new List<nint>();
        try
        {
            byte* Utf8(string text)
            {
                nint p = Marshal.StringToCoTaskMemUTF8(text);
                pinned.Add(p);
                return (byte*)p;
            }

            byte** argv = stackalloc byte*[Math.Max(arguments.Count, 1)];
            for (int i = 0; i < arguments.Count; i++)
                argv[i] = Utf8(arguments[i]);

            CXUnsavedFile file = default;
            uint unsavedCount = 0;
            if (unsaved is not null)
            {
                file.Filename = Utf8(unsaved.Path);
                file.Contents = Utf8(unsaved.Contents);
                file.Length = (nuint)Encoding.UTF8.GetByteCount(unsaved.Contents);
                unsavedCount = 1;
            }

            void* unit = null;
            CXErrorCode code = LibClang.clang_parseTranslationUnit2(
                index, Utf8(path), argv, arguments.Count, &file, unsavedCount,
                // Function bodies are parsed too (a header should have none): skipping them would
                // also hide that a static inline function is a definition with no exported symbol.
                CXTranslationUnitFlags.DetailedPreprocessingRecord, &unit);
            if (code != CXErrorCode.Success || unit == null)
            {
                LibClang.clang_disposeIndex(index);
                throw new GeneratorException($"libclang could not parse {path}: {code} (arguments: {string.Join(' ', arguments)}).");
            }

            var result = new TranslationUnit(index, unit);
            try
            {
                result.ThrowOnDiagnostics(path);
            }
            catch
            {
                result.Dispose();
                throw;
            }
            return result;
        }
        finally
        {
            foreach (nint p in pinned)
                Marshal.FreeCoTaskMem(p);
        }
    }

    /// <summary>The libclang version string, e.g. "clang version 22.1.8".</summary>
    public static string ClangVersion() => LibClang.Consume(LibClang.clang_getClangVersion());

    public CXCursor Root => LibClang.clang_getTranslationUnitCursor(_unit);

    private void ThrowOnDiagnostics(string path)
    {
        var messages = new List<string>();
        uint count = LibClang.clang_getNumDiagnostics(_unit);
        uint options = LibClang.clang_defaultDiagnosticDisplayOptions();
        for (uint i = 0; i < count; i++)
        {
            void* diagnostic = LibClang.clang_getDiagnostic(_unit, i);
            try
            {
                if (LibClang.clang_getDiagnosticSeverity(diagnostic) >= CXDiagnosticSeverity.Warning)
                    messages.Add(LibClang.Consume(LibClang.clang_formatDiagnostic(diagnostic, options)));
            }
            finally
            {
                LibClang.clang_disposeDiagnostic(diagnostic);
            }
        }
        if (messages.Count > 0)
            throw new GeneratorException($"clang reported {messages.Count} problem(s) in {path}:\n  " + string.Join("\n  ", messages));
    }

    /// <summary>The direct children of <paramref name="parent"/>, in source order.</summary>
    public static List<CXCursor> Children(CXCursor parent)
    {
        var children = new List<CXCursor>();
        GCHandle handle = GCHandle.Alloc(children);
        try
        {
            LibClang.clang_visitChildren(parent, &CollectChild, (void*)GCHandle.ToIntPtr(handle));
        }
        finally
        {
            handle.Free();
        }
        return children;
    }

    [UnmanagedCallersOnly(CallConvs = new[] { typeof(CallConvCdecl) })]
    private static CXChildVisitResult CollectChild(CXCursor cursor, CXCursor parent, void* clientData)
    {
        // No exception may unwind into libclang; List.Add of a struct cannot throw short of running out of memory.
        var children = (List<CXCursor>)GCHandle.FromIntPtr((nint)clientData).Target!;
        children.Add(cursor);
        return CXChildVisitResult.Continue;
    }

    public static string Spelling(CXCursor cursor) => LibClang.Consume(LibClang.clang_getCursorSpelling(cursor));

    public static string Spelling(CXType type) => LibClang.Consume(LibClang.clang_getTypeSpelling(type));

    public static bool IsFromMainFile(CXCursor cursor) =>
        LibClang.clang_Location_isFromMainFile(LibClang.clang_getCursorLocation(cursor)) != 0;

    /// <summary>Byte offsets in the file where the cursor's text begins and ends (after macro expansion).</summary>
    public static (int Begin, int End) Extent(CXCursor cursor)
    {
        CXSourceRange range = LibClang.clang_getCursorExtent(cursor);
        return (Offset(LibClang.clang_getRangeStart(range)), Offset(LibClang.clang_getRangeEnd(range)));
    }

    /// <summary>1-based line of the cursor's location, for messages.</summary>
    public static uint Line(CXCursor cursor)
    {
        uint line;
        LibClang.clang_getExpansionLocation(LibClang.clang_getCursorLocation(cursor), null, &line, null, null);
        return line;
    }

    private static int Offset(CXSourceLocation location)
    {
        uint offset;
        LibClang.clang_getExpansionLocation(location, null, null, null, &offset);
        return checked((int)offset);
    }

    /// <summary>The tokens of the cursor's extent, e.g. of a macro definition: its name, then its body.</summary>
    public List<(CXTokenKind Kind, string Text)> Tokens(CXCursor cursor)
    {
        CXToken* tokens = null;
        uint count = 0;
        LibClang.clang_tokenize(_unit, LibClang.clang_getCursorExtent(cursor), &tokens, &count);
        try
        {
            var result = new List<(CXTokenKind, string)>((int)count);
            for (uint i = 0; i < count; i++)
                result.Add((LibClang.clang_getTokenKind(tokens[i]), LibClang.Consume(LibClang.clang_getTokenSpelling(_unit, tokens[i]))));
            return result;
        }
        finally
        {
            if (tokens != null)
                LibClang.clang_disposeTokens(_unit, tokens, count);
        }
    }

    public void Dispose()
    {
        if (_unit != null)
        {
            LibClang.clang_disposeTranslationUnit(_unit);
            _unit = null;
        }
        if (_index != null)
        {
            LibClang.clang_disposeIndex(_index);
            _index = null;
        }
    }
}
