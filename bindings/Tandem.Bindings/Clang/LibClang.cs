using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tandem.Bindings.Clang;

// The slice of the libclang C API (clang-c/Index.h, libclang 22) the generator uses. The library comes
// from the libclang.runtime.linux-x64 NuGet package, which puts libclang.so under runtimes/linux-x64/native/
// where the host finds it through the .deps.json. Struct layouts and enum values below mirror Index.h.

// The handle structs are filled in by libclang and only passed back to it, never assigned in C#.
#pragma warning disable CS0649

internal readonly unsafe struct CXString
{
    public readonly void* Data;
    public readonly uint PrivateFlags;
}

internal readonly unsafe struct CXCursor
{
    public readonly CXCursorKind Kind;
    public readonly int XData;
    public readonly void* Data0;
    public readonly void* Data1;
    public readonly void* Data2;
}

internal readonly unsafe struct CXType
{
    public readonly CXTypeKind Kind;
    public readonly void* Data0;
    public readonly void* Data1;
}

internal readonly unsafe struct CXSourceLocation
{
    public readonly void* PtrData0;
    public readonly void* PtrData1;
    public readonly uint IntData;
}

internal readonly unsafe struct CXSourceRange
{
    public readonly void* PtrData0;
    public readonly void* PtrData1;
    public readonly uint BeginIntData;
    public readonly uint EndIntData;
}

internal readonly unsafe struct CXToken
{
    public readonly uint IntData0;
    public readonly uint IntData1;
    public readonly uint IntData2;
    public readonly uint IntData3;
    public readonly void* PtrData;
}

#pragma warning restore CS0649

internal unsafe struct CXUnsavedFile
{
    public byte* Filename;
    public byte* Contents;
    public nuint Length;
}

internal enum CXCursorKind
{
    StructDecl = 2,
    UnionDecl = 3,
    EnumDecl = 5,
    FieldDecl = 6,
    EnumConstantDecl = 7,
    FunctionDecl = 8,
    VarDecl = 9,
    ParmDecl = 10,
    TypedefDecl = 20,
    MacroDefinition = 501,
}

internal enum CXTypeKind
{
    Invalid = 0,
    Unexposed = 1,
    Void = 2,
    Bool = 3,
    Char_U = 4,
    UChar = 5,
    UShort = 8,
    UInt = 9,
    ULong = 10,
    ULongLong = 11,
    Char_S = 13,
    SChar = 14,
    Short = 16,
    Int = 17,
    Long = 18,
    LongLong = 19,
    Float = 21,
    Double = 22,
    Pointer = 101,
    Record = 105,
    Enum = 106,
    Typedef = 107,
    FunctionNoProto = 110,
    FunctionProto = 111,
    ConstantArray = 112,
    IncompleteArray = 114,
    Elaborated = 119,
    Attributed = 163,
}

internal enum CXChildVisitResult
{
    Break = 0,
    Continue = 1,
    Recurse = 2,
}

internal enum CXDiagnosticSeverity
{
    Ignored = 0,
    Note = 1,
    Warning = 2,
    Error = 3,
    Fatal = 4,
}

internal enum CXTokenKind
{
    Punctuation = 0,
    Keyword = 1,
    Identifier = 2,
    Literal = 3,
    Comment = 4,
}

internal enum CXEvalResultKind
{
    Int = 1,
    Float = 2,
}

internal enum CXErrorCode
{
    Success = 0,
    Failure = 1,
    Crashed = 2,
    InvalidArguments = 3,
    ASTReadError = 4,
}

[Flags]
internal enum CXTranslationUnitFlags : uint
{
    None = 0,
    // Keeps #define directives as MacroDefinition cursors: the only way to see TDM_ABI_VERSION.
    DetailedPreprocessingRecord = 0x01,
}

internal static unsafe partial class LibClang
{
    private const string Library = "libclang";

    [LibraryImport(Library)] internal static partial void* clang_createIndex(int excludeDeclarationsFromPch, int displayDiagnostics);
    [LibraryImport(Library)] internal static partial void clang_disposeIndex(void* index);

    [LibraryImport(Library)]
    internal static partial CXErrorCode clang_parseTranslationUnit2(
        void* index, byte* sourceFilename, byte** commandLineArgs, int numCommandLineArgs,
        CXUnsavedFile* unsavedFiles, uint numUnsavedFiles, CXTranslationUnitFlags options, void** outTranslationUnit);

    [LibraryImport(Library)] internal static partial void clang_disposeTranslationUnit(void* translationUnit);
    [LibraryImport(Library)] internal static partial CXCursor clang_getTranslationUnitCursor(void* translationUnit);

    [LibraryImport(Library)] internal static partial uint clang_getNumDiagnostics(void* translationUnit);
    [LibraryImport(Library)] internal static partial void* clang_getDiagnostic(void* translationUnit, uint index);
    [LibraryImport(Library)] internal static partial CXDiagnosticSeverity clang_getDiagnosticSeverity(void* diagnostic);
    [LibraryImport(Library)] internal static partial uint clang_defaultDiagnosticDisplayOptions();
    [LibraryImport(Library)] internal static partial CXString clang_formatDiagnostic(void* diagnostic, uint options);
    [LibraryImport(Library)] internal static partial void clang_disposeDiagnostic(void* diagnostic);

    [LibraryImport(Library)] internal static partial byte* clang_getCString(CXString text);
    [LibraryImport(Library)] internal static partial void clang_disposeString(CXString text);
    [LibraryImport(Library)] internal static partial CXString clang_getClangVersion();

    [LibraryImport(Library)]
    internal static partial uint clang_visitChildren(
        CXCursor parent, delegate* unmanaged[Cdecl]<CXCursor, CXCursor, void*, CXChildVisitResult> visitor, void* clientData);

    [LibraryImport(Library)] internal static partial CXString clang_getCursorSpelling(CXCursor cursor);
    [LibraryImport(Library)] internal static partial CXType clang_getCursorType(CXCursor cursor);
    [LibraryImport(Library)] internal static partial CXSourceLocation clang_getCursorLocation(CXCursor cursor);
    [LibraryImport(Library)] internal static partial CXSourceRange clang_getCursorExtent(CXCursor cursor);
    [LibraryImport(Library)] internal static partial CXCursor clang_getCursorDefinition(CXCursor cursor);
    [LibraryImport(Library)] internal static partial uint clang_isCursorDefinition(CXCursor cursor);
    [LibraryImport(Library)] internal static partial int clang_Cursor_isNull(CXCursor cursor);
    [LibraryImport(Library)] internal static partial uint clang_Cursor_isAnonymous(CXCursor cursor);
    [LibraryImport(Library)] internal static partial uint clang_Cursor_isBitField(CXCursor cursor);
    [LibraryImport(Library)] internal static partial long clang_Cursor_getOffsetOfField(CXCursor cursor);
    [LibraryImport(Library)] internal static partial int clang_Cursor_getNumArguments(CXCursor cursor);
    [LibraryImport(Library)] internal static partial CXCursor clang_Cursor_getArgument(CXCursor cursor, uint index);
    [LibraryImport(Library)] internal static partial uint clang_Cursor_isMacroFunctionLike(CXCursor cursor);
    [LibraryImport(Library)] internal static partial uint clang_Cursor_isMacroBuiltin(CXCursor cursor);
    [LibraryImport(Library)] internal static partial uint clang_Cursor_isFunctionInlined(CXCursor cursor);

    [LibraryImport(Library)] internal static partial CXType clang_getTypedefDeclUnderlyingType(CXCursor cursor);
    [LibraryImport(Library)] internal static partial CXType clang_getEnumDeclIntegerType(CXCursor cursor);
    [LibraryImport(Library)] internal static partial long clang_getEnumConstantDeclValue(CXCursor cursor);
    [LibraryImport(Library)] internal static partial ulong clang_getEnumConstantDeclUnsignedValue(CXCursor cursor);

    [LibraryImport(Library)] internal static partial CXString clang_getTypeSpelling(CXType type);
    [LibraryImport(Library)] internal static partial CXType clang_getCanonicalType(CXType type);
    [LibraryImport(Library)] internal static partial CXType clang_getPointeeType(CXType type);
    [LibraryImport(Library)] internal static partial CXCursor clang_getTypeDeclaration(CXType type);
    [LibraryImport(Library)] internal static partial CXType clang_Type_getNamedType(CXType type);
    [LibraryImport(Library)] internal static partial CXType clang_Type_getModifiedType(CXType type);
    [LibraryImport(Library)] internal static partial CXType clang_getResultType(CXType type);
    [LibraryImport(Library)] internal static partial int clang_getNumArgTypes(CXType type);
    [LibraryImport(Library)] internal static partial CXType clang_getArgType(CXType type, uint index);
    [LibraryImport(Library)] internal static partial uint clang_isFunctionTypeVariadic(CXType type);
    [LibraryImport(Library)] internal static partial CXType clang_getArrayElementType(CXType type);
    [LibraryImport(Library)] internal static partial long clang_getArraySize(CXType type);
    [LibraryImport(Library)] internal static partial long clang_Type_getSizeOf(CXType type);
    [LibraryImport(Library)] internal static partial long clang_Type_getAlignOf(CXType type);

    [LibraryImport(Library)] internal static partial int clang_Location_isFromMainFile(CXSourceLocation location);
    [LibraryImport(Library)] internal static partial CXSourceLocation clang_getRangeStart(CXSourceRange range);
    [LibraryImport(Library)] internal static partial CXSourceLocation clang_getRangeEnd(CXSourceRange range);
    [LibraryImport(Library)] internal static partial void clang_getExpansionLocation(CXSourceLocation location, void** file, uint* line, uint* column, uint* offset);

    [LibraryImport(Library)] internal static partial void clang_tokenize(void* translationUnit, CXSourceRange range, CXToken** tokens, uint* numTokens);
    [LibraryImport(Library)] internal static partial CXTokenKind clang_getTokenKind(CXToken token);
    [LibraryImport(Library)] internal static partial CXString clang_getTokenSpelling(void* translationUnit, CXToken token);
    [LibraryImport(Library)] internal static partial void clang_disposeTokens(void* translationUnit, CXToken* tokens, uint numTokens);

    [LibraryImport(Library)] internal static partial void* clang_Cursor_Evaluate(CXCursor cursor);
    [LibraryImport(Library)] internal static partial CXEvalResultKind clang_EvalResult_getKind(void* result);
    [LibraryImport(Library)] internal static partial uint clang_EvalResult_isUnsignedInt(void* result);
    [LibraryImport(Library)] internal static partial ulong clang_EvalResult_getAsUnsigned(void* result);
    [LibraryImport(Library)] internal static partial long clang_EvalResult_getAsLongLong(void* result);
    [LibraryImport(Library)] internal static partial double clang_EvalResult_getAsDouble(void* result);
    [LibraryImport(Library)] internal static partial void clang_EvalResult_dispose(void* result);

    /// <summary>Copies a CXString into a managed string and disposes it.</summary>
    internal static string Consume(CXString text)
    {
        try
        {
            byte* chars = clang_getCString(text);
            return chars == null ? string.Empty : Marshal.PtrToStringUTF8((nint)chars) ?? string.Empty;
        }
        finally
        {
            clang_disposeString(text);
        }
    }
}
