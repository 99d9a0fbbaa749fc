namespace Tandem.Bindings;

// What the generator learned from the header, already in C# terms (type names, literals) but with C names
// kept. Doc holds the C comment's lines, unescaped; the writers escape them for XML.

internal sealed record HeaderModel(
    IReadOnlyList<ConstantModel> Constants,
    IReadOnlyList<EnumModel> Enums,
    IReadOnlyList<StructModel> Structs,
    IReadOnlyList<FunctionModel> Functions);

/// <summary>An object-like #define that clang evaluated to a number.</summary>
internal sealed record ConstantModel(string Name, string Type, string Literal, IReadOnlyList<string> Doc);

internal sealed record EnumModel(string Name, string UnderlyingType, long Size, IReadOnlyList<EnumMemberModel> Members, IReadOnlyList<string> Doc);

internal sealed record EnumMemberModel(string Name, string Literal, IReadOnlyList<string> Doc);

/// <summary>A struct with clang's size in bytes.</summary>
internal sealed record StructModel(string Name, long Size, IReadOnlyList<FieldModel> Fields, IReadOnlyList<string> Doc);

/// <summary>
/// A struct field. For a fixed-size array, <see cref="Type"/> is the element type and <see cref="FixedLength"/>
/// the element count; Offset and Size are clang's, in bytes.
/// </summary>
internal sealed record FieldModel(string Name, string Type, int? FixedLength, long Offset, long Size, IReadOnlyList<string> Doc);

internal sealed record FunctionModel(string Name, string ReturnType, IReadOnlyList<ParameterModel> Parameters, IReadOnlyList<string> Doc);

internal sealed record ParameterModel(string Name, string Type);
