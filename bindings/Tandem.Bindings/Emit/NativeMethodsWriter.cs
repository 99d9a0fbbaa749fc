namespace Tandem.Bindings.Emit;

/// <summary>
/// Writes NativeMethods.g.cs: the constants and [LibraryImport] functions in one static partial class, the
/// enums and the sequential structs beside it in the same namespace. Everything is internal and blittable;
/// the facade is the only public face of the library.
/// </summary>
internal static class NativeMethodsWriter
{
    public static string Write(HeaderModel header, BindingsConfig config, string source)
    {
        var w = new CodeWriter();
        CSharpSyntax.FileHeader(w, source);
        w.Line();
        w.Line("using System.Runtime.CompilerServices;");
        w.Line("using System.Runtime.InteropServices;");
        w.Line();
        w.Line($"namespace {config.Namespace};");
        w.Line();
        w.Line("// Struct fields are filled in by native code, which the compiler cannot see.");
        w.Line("#pragma warning disable CS0649");
        w.Line();

        WriteClass(w, header, config, source);
        foreach (EnumModel e in header.Enums)
        {
            w.Line();
            WriteEnum(w, e);
        }
        foreach (StructModel s in header.Structs)
        {
            w.Line();
            WriteStruct(w, s);
        }
        return w.ToString();
    }

    private static void WriteClass(CodeWriter w, HeaderModel header, BindingsConfig config, string source)
    {
        w.Line($"/// <summary>The functions and #define constants of {CSharpSyntax.EscapeXml(source)}, with their C names.</summary>");
        w.Open($"internal static unsafe partial class {config.ClassName}");
        w.Line($"internal const string LibraryName = \"{config.LibraryName}\";");
        foreach (ConstantModel constant in header.Constants)
        {
            w.Line();
            w.Summary(constant.Doc);
            w.Line($"internal const {constant.Type} {constant.Name} = {constant.Literal};");
        }
        foreach (FunctionModel function in header.Functions)
        {
            w.Line();
            w.Summary(function.Doc);
            w.Line("[LibraryImport(LibraryName)]");
            w.Line("[UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]");
            string parameters = string.Join(", ", function.Parameters.Select(p => $"{p.Type} {CSharpSyntax.Identifier(p.Name)}"));
            w.Line($"internal static partial {function.ReturnType} {CSharpSyntax.Identifier(function.Name)}({parameters});");
        }
        w.Close();
    }

    private static void WriteEnum(CodeWriter w, EnumModel e)
    {
        w.Summary(e.Doc);
        w.Open($"internal enum {e.Name} : {e.UnderlyingType}");
        bool spaced = e.Members.Any(m => m.Doc.Count > 0);
        for (int i = 0; i < e.Members.Count; i++)
        {
            EnumMemberModel member = e.Members[i];
            if (spaced && i > 0)
                w.Line();
            w.Summary(member.Doc);
            w.Line($"{CSharpSyntax.Identifier(member.Name)} = {member.Literal},");
        }
        w.Close();
    }

    private static void WriteStruct(CodeWriter w, StructModel s)
    {
        w.Summary(s.Doc);
        w.Line("[StructLayout(LayoutKind.Sequential)]");
        w.Open($"internal unsafe struct {s.Name}");
        // Where docs are interleaved, blank lines keep each one visibly attached to its own field.
        bool spaced = s.Fields.Any(f => f.Doc.Count > 0);
        for (int i = 0; i < s.Fields.Count; i++)
        {
            FieldModel field = s.Fields[i];
            if (spaced && i > 0)
                w.Line();
            w.Summary(field.Doc);
            string name = CSharpSyntax.Identifier(field.Name);
            w.Line(field.FixedLength is int length
                ? $"public fixed {field.Type} {name}[{length}];"
                : $"public {field.Type} {name};");
        }
        w.Close();
    }
}
