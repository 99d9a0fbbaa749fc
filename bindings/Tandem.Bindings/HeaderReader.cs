using System.Text.RegularExpressions;
using Tandem.Bindings.Clang;

namespace Tandem.Bindings;

/// <summary>
/// Walks the translation unit of the header and builds the <see cref="HeaderModel"/>: every enum, struct,
/// function and integer #define declared in the header itself (not in what it includes), in source order.
/// Anything it cannot bind faithfully (unions, bitfields, variadic functions, arrays of structs) is an error
/// that names the declaration, never a silent omission.
/// </summary>
internal sealed partial class HeaderReader
{
    private readonly BindingsConfig _config;
    private readonly TranslationUnit _unit;
    private readonly CommentReader _comments;
    private readonly List<CXCursor> _declarations;
    private readonly Dictionary<int, string> _typedefNamesOfAnonymousTags = new();

    private HeaderReader(BindingsConfig config, TranslationUnit unit, byte[] headerText)
    {
        _config = config;
        _unit = unit;
        _comments = new CommentReader(headerText);
        _declarations = TranslationUnit.Children(unit.Root).Where(TranslationUnit.IsFromMainFile).ToList();
    }

    public static HeaderModel Read(string headerPath, BindingsConfig config)
    {
        IReadOnlyList<string> arguments = config.ClangArguments();
        using TranslationUnit unit = TranslationUnit.Parse(headerPath, arguments);
        var reader = new HeaderReader(config, unit, File.ReadAllBytes(headerPath));
        return reader.Read(headerPath, arguments);
    }

    private HeaderModel Read(string headerPath, IReadOnlyList<string> arguments)
    {
        foreach (CXCursor cursor in _declarations)
        {
            if (cursor.Kind == CXCursorKind.TypedefDecl)
            {
                CXType tag = TypeMapper.Desugar(LibClang.clang_getTypedefDeclUnderlyingType(cursor));
                if (tag.Kind is CXTypeKind.Record or CXTypeKind.Enum)
                {
                    CXCursor declaration = LibClang.clang_getTypeDeclaration(tag);
                    if (!IsIdentifier(TranslationUnit.Spelling(declaration)))
                        _typedefNamesOfAnonymousTags.TryAdd(TranslationUnit.Extent(declaration).Begin, TranslationUnit.Spelling(cursor));
                }
            }
        }

        List<CXCursor> structs = Definitions(CXCursorKind.StructDecl);
        List<CXCursor> enums = Definitions(CXCursorKind.EnumDecl);
        foreach (CXCursor union in Definitions(CXCursorKind.UnionDecl))
            throw new GeneratorException($"line {TranslationUnit.Line(union)}: union {TagName(union)} is not supported by the generator.");

        var handles = OpaqueStructs();
        var mapper = new TypeMapper(
            handles,
            structs.Select(TagName).ToHashSet(StringComparer.Ordinal),
            enums.Select(TagName).ToHashSet(StringComparer.Ordinal),
            TagName);

        return new HeaderModel(
            MacroEvaluator.Evaluate(_unit, _declarations, headerPath, arguments, _config.IgnoredMacros.ToHashSet(StringComparer.Ordinal), Doc),
            enums.Select(ReadEnum).ToList(),
            structs.Select(s => ReadStruct(s, mapper)).ToList(),
            ReadFunctions(mapper));
    }

    /// <summary>Tag definitions of one kind, each once (a tag may be declared several times).</summary>
    private List<CXCursor> Definitions(CXCursorKind kind) =>
        _declarations.Where(c => c.Kind == kind && LibClang.clang_isCursorDefinition(c) != 0).ToList();

    /// <summary>
    /// The structs the header declares but never defines, checked against "handles" in bindings.json, which
    /// says (on purpose, not by inference) which names the facade wraps in SafeHandles as nint.
    /// </summary>
    private HashSet<string> OpaqueStructs()
    {
        var opaque = _declarations
            .Where(c => c.Kind == CXCursorKind.StructDecl && LibClang.clang_Cursor_isNull(LibClang.clang_getCursorDefinition(c)) != 0)
            .Select(TagName)
            .ToHashSet(StringComparer.Ordinal);
        foreach (string handle in _config.Handles)
        {
            if (!opaque.Contains(handle))
                throw new GeneratorException($"bindings.json lists handle {handle}, but the header declares no opaque struct of that name.");
        }
        // An opaque struct not listed is only an error where it is used (TypeMapper says where).
        return _config.Handles.ToHashSet(StringComparer.Ordinal);
    }

    private EnumModel ReadEnum(CXCursor cursor)
    {
        string name = TagName(cursor);
        CXType integer = LibClang.clang_getCanonicalType(LibClang.clang_getEnumDeclIntegerType(cursor));
        bool unsigned = integer.Kind is CXTypeKind.UInt or CXTypeKind.ULong or CXTypeKind.ULongLong or CXTypeKind.UShort or CXTypeKind.UChar or CXTypeKind.Char_U;
        long size = LibClang.clang_Type_getSizeOf(integer);

        var members = new List<EnumMemberModel>();
        var values = new List<decimal>();
        foreach (CXCursor constant in TranslationUnit.Children(cursor).Where(c => c.Kind == CXCursorKind.EnumConstantDecl))
        {
            decimal value = unsigned
                ? LibClang.clang_getEnumConstantDeclUnsignedValue(constant)
                : LibClang.clang_getEnumConstantDeclValue(constant);
            values.Add(value);
            members.Add(new EnumMemberModel(TranslationUnit.Spelling(constant), value.ToString(System.Globalization.CultureInfo.InvariantCulture), Doc(constant)));
        }

        // C gives an enum whose values are all non-negative the type unsigned int; the ABI only sees four bytes,
        // and `int` lets the facade compare with the int32_t fields that carry these values.
        string underlying = size switch
        {
            4 when values.All(v => v >= int.MinValue && v <= int.MaxValue) => "int",
            4 => "uint",
            8 when values.All(v => v >= long.MinValue && v <= long.MaxValue) => "long",
            8 => "ulong",
            _ => throw new GeneratorException($"line {TranslationUnit.Line(cursor)}: enum {name} is {size} bytes; only 4- and 8-byte enums are supported."),
        };
        return new EnumModel(name, underlying, size, members, Doc(cursor));
    }

    private StructModel ReadStruct(CXCursor cursor, TypeMapper mapper)
    {
        string name = TagName(cursor);
        var fields = new List<FieldModel>();
        foreach (CXCursor child in TranslationUnit.Children(cursor))
        {
            if (child.Kind is CXCursorKind.StructDecl or CXCursorKind.UnionDecl or CXCursorKind.EnumDecl)
                throw new GeneratorException($"line {TranslationUnit.Line(child)}: {name} defines a nested struct, union or enum; define it at file scope.");
            if (child.Kind != CXCursorKind.FieldDecl)
                continue;
            fields.Add(ReadField(name, child, mapper));
        }
        long size = LibClang.clang_Type_getSizeOf(LibClang.clang_getCursorType(cursor));
        return new StructModel(name, size, fields, Doc(cursor));
    }

    private FieldModel ReadField(string structName, CXCursor field, TypeMapper mapper)
    {
        string name = TranslationUnit.Spelling(field);
        string where = $"line {TranslationUnit.Line(field)}: field {structName}.{name}";
        if (LibClang.clang_Cursor_isBitField(field) != 0)
            throw new GeneratorException($"{where} is a bitfield, which has no portable layout.");

        CXType type = LibClang.clang_getCursorType(field);
        CXType desugared = TypeMapper.Desugar(type);
        if (desugared.Kind == CXTypeKind.IncompleteArray)
            throw new GeneratorException($"{where} is a flexible array member, which a managed struct cannot hold.");

        long offsetBits = LibClang.clang_Cursor_getOffsetOfField(field);
        long size = LibClang.clang_Type_getSizeOf(type);
        if (offsetBits < 0 || offsetBits % 8 != 0 || size <= 0)
            throw new GeneratorException($"{where}: libclang gives no byte offset or size (offset {offsetBits} bits, size {size}).");
        if (desugared.Kind == CXTypeKind.ConstantArray)
        {
            CXType element = LibClang.clang_getArrayElementType(desugared);
            string elementType = mapper.Map(element, where);
            if (!FixedBufferTypes.Contains(elementType))
                throw new GeneratorException($"{where}: an array of {elementType} cannot be a C# fixed buffer; use an array of a primitive type.");
            int length = checked((int)LibClang.clang_getArraySize(desugared));
            return new FieldModel(name, elementType, length, offsetBits / 8, size, Doc(field));
        }
        return new FieldModel(name, mapper.Map(type, where), null, offsetBits / 8, size, Doc(field));
    }

    private static readonly HashSet<string> FixedBufferTypes =
        new(StringComparer.Ordinal) { "byte", "sbyte", "short", "ushort", "int", "uint", "long", "ulong", "float", "double" };

    private List<FunctionModel> ReadFunctions(TypeMapper mapper)
    {
        var functions = new List<FunctionModel>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (CXCursor cursor in _declarations.Where(c => c.Kind == CXCursorKind.FunctionDecl))
        {
            string name = TranslationUnit.Spelling(cursor);
            string where = $"line {TranslationUnit.Line(cursor)}: function {name}";
            if (LibClang.clang_isCursorDefinition(cursor) != 0)
                throw new GeneratorException($"{where} has a body in the header; only exported declarations can be bound.");
            if (!seen.Add(name))
                continue; // a redeclaration; clang has already checked that it agrees with the first

            CXType type = LibClang.clang_getCursorType(cursor);
            if (type.Kind == CXTypeKind.FunctionNoProto)
                throw new GeneratorException($"{where} has no prototype; declare it as {name}(void).");
            if (LibClang.clang_isFunctionTypeVariadic(type) != 0)
                throw new GeneratorException($"{where} is variadic, which a blittable signature cannot express.");

            var parameters = new List<ParameterModel>();
            int count = LibClang.clang_Cursor_getNumArguments(cursor);
            for (uint i = 0; i < count; i++)
            {
                CXCursor parameter = LibClang.clang_Cursor_getArgument(cursor, i);
                string parameterName = TranslationUnit.Spelling(parameter);
                if (parameterName.Length == 0)
                    parameterName = $"arg{i}";
                parameters.Add(new ParameterModel(parameterName, mapper.Map(LibClang.clang_getCursorType(parameter), $"{where}, parameter {parameterName}")));
            }
            string result = mapper.Map(LibClang.clang_getResultType(type), $"{where}, result");
            functions.Add(new FunctionModel(name, result, parameters, Doc(cursor)));
        }
        return functions;
    }

    /// <summary>The C# name of a struct or enum: its tag, or the typedef that names an anonymous one.</summary>
    private string TagName(CXCursor declaration)
    {
        string spelling = TranslationUnit.Spelling(declaration);
        if (IsIdentifier(spelling))
            return spelling;
        if (_typedefNamesOfAnonymousTags.TryGetValue(TranslationUnit.Extent(declaration).Begin, out string? typedefName))
            return typedefName;
        throw new GeneratorException($"line {TranslationUnit.Line(declaration)}: an anonymous struct or enum needs a tag or a typedef name.");
    }

    private IReadOnlyList<string> Doc(CXCursor cursor)
    {
        var (begin, end) = TranslationUnit.Extent(cursor);
        return _comments.For(begin, end);
    }

    private static bool IsIdentifier(string text) => IdentifierPattern().IsMatch(text);

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex IdentifierPattern();
}
