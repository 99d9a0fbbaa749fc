namespace Tandem.Bindings.Emit;

/// <summary>
/// Writes StructLayoutTests.g.cs: for every struct, NUnit assertions that the managed struct has the size,
/// the field count and the field offsets libclang computed for the C struct, written in as numbers, and that
/// every one-byte field is a byte and not a bool (whose marshalled size is 4). The
/// managed offsets are measured with pointers into a live value, i.e. the layout native code actually sees
/// (runtime marshalling is disabled, so no marshalled copy with its own layout ever exists).
/// </summary>
internal static class LayoutTestsWriter
{
    public static string Write(HeaderModel header, BindingsConfig config, string source, string target)
    {
        var w = new CodeWriter();
        CSharpSyntax.FileHeader(w, source);
        w.Line();
        w.Line("#nullable enable");
        w.Line();
        w.Line("using System.Reflection;");
        w.Line("using System.Runtime.InteropServices;");
        w.Line("using NUnit.Framework;");
        w.Line($"using {config.Namespace};");
        w.Line();
        w.Line($"namespace {config.LayoutTests.Namespace};");
        w.Line();
        w.Line("/// <summary>");
        w.Line($"/// The managed layout of every struct and enum of {CSharpSyntax.EscapeXml(source)} against the numbers libclang");
        w.Line($"/// computed for {CSharpSyntax.EscapeXml(target)}.");
        w.Line("/// </summary>");
        w.Line("[TestFixture]");
        w.Open($"public sealed unsafe class {config.LayoutTests.ClassName}");

        bool first = true;
        foreach (StructModel s in header.Structs)
        {
            if (!first)
                w.Line();
            first = false;
            WriteStructTest(w, s);
        }
        if (header.Enums.Count > 0)
        {
            if (!first)
                w.Line();
            WriteEnumTest(w, header.Enums);
        }
        w.Close();
        return w.ToString();
    }

    private static void WriteStructTest(CodeWriter w, StructModel s)
    {
        w.Line("[Test]");
        w.Open($"public void {s.Name}_has_the_layout_clang_computed()");
        w.Line($"{s.Name} value = default;");
        w.Line("byte* start = (byte*)&value;");
        w.Line("const BindingFlags instanceFields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;");
        w.Open("using (Assert.EnterMultipleScope())");
        w.Line($"Assert.That(sizeof({s.Name}), Is.EqualTo({s.Size}), \"sizeof({s.Name})\");");
        w.Line($"Assert.That(typeof({s.Name}).GetFields(instanceFields), Has.Length.EqualTo({s.Fields.Count}), \"fields of {s.Name}\");");
        foreach (FieldModel field in s.Fields)
        {
            string member = $"value.{CSharpSyntax.Identifier(field.Name)}";
            // A fixed buffer of a fixed variable is already a pointer to its first element.
            string address = field.FixedLength is null ? $"(byte*)&{member}" : $"(byte*){member}";
            w.Line($"Assert.That({address} - start, Is.EqualTo({field.Offset}), \"offsetof({s.Name}, {field.Name})\");");
            if (field.Size == 1 && field.FixedLength is null)
            {
                // Marshal.SizeOf sees through to the marshalled size: 4 for a bool, 1 for a byte.
                w.Line($"Assert.That(Marshal.SizeOf(typeof({s.Name}).GetField(\"{field.Name}\")!.FieldType), Is.EqualTo(1), " +
                       $"\"{s.Name}.{field.Name} must cross the boundary as one byte\");");
            }
        }
        w.Close();
        w.Close();
    }

    private static void WriteEnumTest(CodeWriter w, IReadOnlyList<EnumModel> enums)
    {
        w.Line("[Test]");
        w.Open("public void Enums_have_the_size_clang_computed()");
        w.Open("using (Assert.EnterMultipleScope())");
        foreach (EnumModel e in enums)
            w.Line($"Assert.That(sizeof({e.Name}), Is.EqualTo({e.Size}), \"sizeof({e.Name})\");");
        w.Close();
        w.Close();
    }
}
