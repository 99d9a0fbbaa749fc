using Tandem.Bindings.Clang;

namespace Tandem.Bindings;

/// <summary>
/// Maps clang types to blittable C# types. Integers go through their canonical type, so int32_t is int and
/// uint8_t is byte (never bool: every flag crossing the boundary is one byte). Structs and enums keep their C
/// names; a pointer to an opaque handle is nint; function pointers become delegate* unmanaged[Cdecl].
/// </summary>
internal sealed class TypeMapper
{
    private readonly IReadOnlySet<string> _handles;
    private readonly IReadOnlySet<string> _structs;
    private readonly IReadOnlySet<string> _enums;
    private readonly Func<CXCursor, string> _tagName;

    /// <param name="tagName">The C# name of a struct or enum declaration (its tag, or its typedef if anonymous).</param>
    public TypeMapper(IReadOnlySet<string> handles, IReadOnlySet<string> structs, IReadOnlySet<string> enums, Func<CXCursor, string> tagName)
    {
        _handles = handles;
        _structs = structs;
        _enums = enums;
        _tagName = tagName;
    }

    /// <summary>The C# spelling of <paramref name="type"/>; <paramref name="where"/> names the use in errors.</summary>
    public string Map(CXType type, string where) => Map(type, where, viaTypedef: false);

    private string Map(CXType type, string where, bool viaTypedef)
    {
        switch (type.Kind)
        {
            case CXTypeKind.Elaborated:
                return Map(LibClang.clang_Type_getNamedType(type), where, viaTypedef);
            case CXTypeKind.Attributed:
                return Map(LibClang.clang_Type_getModifiedType(type), where, viaTypedef);
            case CXTypeKind.Typedef:
                // Typedefs are transparent in C#: int32_t becomes int, tdm_progress_fn its function pointer.
                CXCursor declaration = LibClang.clang_getTypeDeclaration(type);
                return Map(LibClang.clang_getTypedefDeclUnderlyingType(declaration), where, viaTypedef: true);
            case CXTypeKind.Unexposed:
                // e.g. a parameter declared as an array, which C adjusts to a pointer.
                CXType canonical = LibClang.clang_getCanonicalType(type);
                if (canonical.Kind == CXTypeKind.Unexposed)
                    throw new GeneratorException($"{where}: libclang does not expose type `{TranslationUnit.Spelling(type)}`.");
                return Map(canonical, where, viaTypedef);
            case CXTypeKind.Record:
                return Record(type, where);
            case CXTypeKind.Enum:
                string enumName = _tagName(LibClang.clang_getTypeDeclaration(type));
                if (!_enums.Contains(enumName))
                    throw new GeneratorException($"{where}: enum {enumName} is not declared in the header.");
                return enumName;
            case CXTypeKind.Pointer:
                return Pointer(LibClang.clang_getPointeeType(type), where);
            case CXTypeKind.FunctionProto:
            case CXTypeKind.FunctionNoProto:
                throw new GeneratorException($"{where}: a function type is only supported behind a pointer.");
            default:
                return Builtin(type, where, viaTypedef);
        }
    }

    private string Record(CXType type, string where)
    {
        CXCursor declaration = LibClang.clang_getTypeDeclaration(type);
        string name = _tagName(declaration);
        if (_handles.Contains(name))
            throw new GeneratorException($"{where}: handle {name} is opaque and can only be passed by pointer.");
        if (!_structs.Contains(name))
            throw new GeneratorException(
                $"{where}: {TranslationUnit.Spelling(type)} has no definition in the header and is not listed in \"handles\" (bindings.json).");
        return name;
    }

    private string Pointer(CXType pointee, string where)
    {
        CXType target = Desugar(pointee);
        switch (target.Kind)
        {
            case CXTypeKind.Record when _handles.Contains(_tagName(LibClang.clang_getTypeDeclaration(target))):
                return "nint";
            case CXTypeKind.FunctionProto:
                return FunctionPointer(target, where);
            case CXTypeKind.FunctionNoProto:
                throw new GeneratorException($"{where}: a function pointer without a prototype; declare its parameters, or (void).");
            case CXTypeKind.Void:
                return "void*";
            default:
                return Map(pointee, where) + "*";
        }
    }

    private string FunctionPointer(CXType function, string where)
    {
        if (LibClang.clang_isFunctionTypeVariadic(function) != 0)
            throw new GeneratorException($"{where}: variadic function pointers cannot be called through a blittable signature.");
        int count = LibClang.clang_getNumArgTypes(function);
        var parts = new List<string>(count + 1);
        for (uint i = 0; i < count; i++)
            parts.Add(Map(LibClang.clang_getArgType(function, i), $"{where} (callback parameter {i})"));
        parts.Add(Map(LibClang.clang_getResultType(function), $"{where} (callback result)"));
        return $"delegate* unmanaged[Cdecl]<{string.Join(", ", parts)}>";
    }

    private static string Builtin(CXType type, string where, bool viaTypedef)
    {
        long size = LibClang.clang_Type_getSizeOf(type);
        switch (type.Kind)
        {
            case CXTypeKind.Void: return "void";
            // C strings are UTF-8 bytes; _Bool is one byte on every ABI we target.
            case CXTypeKind.Bool:
            case CXTypeKind.Char_S:
            case CXTypeKind.Char_U:
            case CXTypeKind.UChar: return "byte";
            case CXTypeKind.SChar: return "sbyte";
            case CXTypeKind.Short: return "short";
            case CXTypeKind.UShort: return "ushort";
            case CXTypeKind.Int: return "int";
            case CXTypeKind.UInt: return "uint";
            case CXTypeKind.LongLong: return "long";
            case CXTypeKind.ULongLong: return "ulong";
            case CXTypeKind.Float: return "float";
            case CXTypeKind.Double: return "double";
            case CXTypeKind.Long:
            case CXTypeKind.ULong:
                // int64_t is `long` on LP64 Linux, which is fine; a bare `long` in the header is 4 bytes on
                // Windows and 8 on Linux, so the binding could be right on one and wrong on the other.
                if (!viaTypedef)
                    throw new GeneratorException($"{where}: `{TranslationUnit.Spelling(type)}` changes size across platforms; use a <stdint.h> type.");
                bool signed = type.Kind == CXTypeKind.Long;
                return size == 8 ? (signed ? "long" : "ulong") : (signed ? "int" : "uint");
            default:
                throw new GeneratorException($"{where}: type `{TranslationUnit.Spelling(type)}` has no blittable C# equivalent here.");
        }
    }

    /// <summary>Strips typedefs, elaboration and attributes, keeping the type's kind.</summary>
    internal static CXType Desugar(CXType type)
    {
        while (true)
        {
            switch (type.Kind)
            {
                case CXTypeKind.Elaborated: type = LibClang.clang_Type_getNamedType(type); break;
                case CXTypeKind.Attributed: type = LibClang.clang_Type_getModifiedType(type); break;
                case CXTypeKind.Typedef: type = LibClang.clang_getTypedefDeclUnderlyingType(LibClang.clang_getTypeDeclaration(type)); break;
                case CXTypeKind.Unexposed:
                    CXType canonical = LibClang.clang_getCanonicalType(type);
                    if (canonical.Kind == CXTypeKind.Unexposed)
                        return canonical;
                    type = canonical;
                    break;
                default: return type;
            }
        }
    }
}
