using System.Text;
using System.Text.Json;
using NUnit.Framework;

namespace Tandem.Tests.Interop;

// Inside the namespace, so that these names win over same-named types of the Tandem assembly
// (such as Tandem.Generator, the facade's sampling loop) found while walking out through namespace Tandem.
using Tandem.Bindings;

/// <summary>
/// The binding generator on small headers written here: what each C construct becomes, struct layouts of
/// random shapes against the x86-64 C alignment rules, and a clear error for what it will not bind.
/// </summary>
[TestFixture]
public sealed class BindingGeneratorTests
{
    private string _workspace = null!;

    [SetUp]
    public void CreateWorkspace()
    {
        // A miniature repository: bindings/bindings.json, bindings/include/stdint.h (the real one) and api.h.
        _workspace = Path.Combine(Path.GetTempPath(), "tandem-bindings-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(_workspace, "bindings", "include"));
        File.Copy(
            Path.Combine(GeneratedBindingsTests.RepositoryRoot(), "bindings", "include", "stdint.h"),
            Path.Combine(_workspace, "bindings", "include", "stdint.h"));
    }

    [TearDown]
    public void DeleteWorkspace() => Directory.Delete(_workspace, recursive: true);

    private const string Api = """
        #ifndef API_H
        #define API_H
        #include <stdint.h>
        #define API_EXPORT __attribute__((visibility("default")))

        /* Flags & masks: <b> is escaped. */
        #define API_FLAG (1u << 4)
        #define API_NEGATIVE (-3)
        #define API_HALF 0.5f
        #define API_BIG 5000000000LL
        #define API_DERIVED (API_FLAG * 2)

        /* ---- a section banner, detached by the blank line below ---- */

        typedef enum api_mode {
            API_MODE_LOW = -1, /* below zero */
            API_MODE_HIGH = 2
        } api_mode;

        typedef enum api_mask { API_MASK_ALL = 0xFFFFFFFFu } api_mask;

        typedef struct api_handle api_handle;

        typedef int32_t (*api_callback)(const char* text, void* user_data);

        /* One record,
         * over two lines. */
        typedef struct api_record {
            uint8_t flag;                /* one byte */
            uint64_t size;
            float values[5];
            api_callback callback;
            const api_handle* owner;
            struct api_record* next;
            api_mode mode;
            double ratio;
        } api_record;

        /* Creates a handle. */
        API_EXPORT api_mode api_create(const api_record* record, api_handle** out);
        API_EXPORT void api_free(api_handle* handle);
        API_EXPORT uint32_t api_count(void);
        #endif
        """;

    [Test]
    public void Every_kind_of_declaration_keeps_its_C_name_and_gets_a_blittable_type()
    {
        string code = Generate(Api, handles: ["api_handle"]).NativeMethods;

        string[] expected =
        [
            "internal const string LibraryName = \"api\";",
            "/// <summary>Flags &amp; masks: &lt;b&gt; is escaped.</summary>",
            "internal const uint API_FLAG = 16;",
            "internal const int API_NEGATIVE = -3;",
            "internal const float API_HALF = 0.5f;",
            "internal const long API_BIG = 5000000000;",
            "internal const uint API_DERIVED = 32;",
            "internal enum api_mode : int",
            "/// <summary>below zero</summary>\n    API_MODE_LOW = -1,",
            "API_MODE_HIGH = 2,",
            "internal enum api_mask : uint",
            "API_MASK_ALL = 4294967295,",
            "/// <summary>\n/// One record,\n/// over two lines.\n/// </summary>\n[StructLayout(LayoutKind.Sequential)]\ninternal unsafe struct api_record",
            "/// <summary>one byte</summary>\n    public byte flag;",
            "public ulong size;",
            "public fixed float values[5];",
            "public delegate* unmanaged[Cdecl]<byte*, void*, int> callback;",
            "public nint owner;",
            "public api_record* next;",
            "public api_mode mode;",
            "public double ratio;",
            "/// <summary>Creates a handle.</summary>\n    [LibraryImport(LibraryName)]\n    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]\n" +
            "    internal static partial api_mode api_create(api_record* record, nint* @out);",
            "internal static partial void api_free(nint handle);",
            "internal static partial uint api_count();",
        ];
        using (Assert.EnterMultipleScope())
        {
            foreach (string line in expected)
                Assert.That(code, Does.Contain(line));
            Assert.That(code, Does.Not.Contain("API_H "), "an include guard is not a constant");
            Assert.That(code, Does.Not.Contain("API_EXPORT"), "an attribute macro is not a constant");
            Assert.That(code, Does.Not.Contain("banner"), "a comment followed by a blank line documents nothing");
            Assert.That(code, Does.Not.Contain("bool"), "flags cross the boundary as bytes");
        }
    }

    [Test]
    public void The_layout_test_asserts_clang_numbers_and_one_byte_flags()
    {
        string tests = Generate(Api, handles: ["api_handle"]).StructLayoutTests;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(tests, Does.Contain("Assert.That(sizeof(api_record), Is.EqualTo(80), \"sizeof(api_record)\");"));
            Assert.That(tests, Does.Contain("Assert.That((byte*)&value.size - start, Is.EqualTo(8), \"offsetof(api_record, size)\");"));
            Assert.That(tests, Does.Contain("Assert.That((byte*)value.values - start, Is.EqualTo(16), \"offsetof(api_record, values)\");"));
            Assert.That(tests, Does.Contain("Assert.That((byte*)&value.ratio - start, Is.EqualTo(72), \"offsetof(api_record, ratio)\");"));
            Assert.That(tests, Does.Contain("GetField(\"flag\")!.FieldType), Is.EqualTo(1)"));
            Assert.That(tests, Does.Contain("Assert.That(sizeof(api_mode), Is.EqualTo(4), \"sizeof(api_mode)\");"));
        }
    }

    /// <summary>
    /// Structs of random fields (ragged mixes of 1-, 2-, 4- and 8-byte members and arrays) must come out with the
    /// offsets and sizes the x86-64 System V rules give, computed here independently of clang.
    /// </summary>
    [Test]
    public void Random_struct_layouts_follow_the_x86_64_C_rules()
    {
        (string C, int Size, int Align)[] scalars =
        [
            ("uint8_t", 1, 1), ("int8_t", 1, 1), ("int16_t", 2, 2), ("uint32_t", 4, 4), ("int32_t", 4, 4),
            ("float", 4, 4), ("uint64_t", 8, 8), ("double", 8, 8), ("void*", 8, 8),
        ];
        var random = TestContext.CurrentContext.Random;
        var header = new StringBuilder("#include <stdint.h>\n");
        var expected = new List<(string Name, int Size, List<int> Offsets)>();
        for (int s = 0; s < 12; s++)
        {
            string name = $"api_random_{s}";
            header.Append($"typedef struct {name} {{\n");
            int offset = 0, align = 1, fieldCount = random.Next(1, 14);
            var offsets = new List<int>();
            for (int f = 0; f < fieldCount; f++)
            {
                var (c, size, fieldAlign) = scalars[random.Next(scalars.Length)];
                int length = c != "void*" && random.Next(4) == 0 ? random.Next(1, 9) : 1;
                header.Append(length == 1 ? $"    {c} f{f};\n" : $"    {c} f{f}[{length}];\n");
                offset = (offset + fieldAlign - 1) / fieldAlign * fieldAlign;
                offsets.Add(offset);
                offset += size * length;
                align = Math.Max(align, fieldAlign);
            }
            header.Append($"}} {name};\n");
            expected.Add((name, (offset + align - 1) / align * align, offsets));
        }

        HeaderModel model = HeaderReader.Read(WriteHeader(header.ToString()), WriteConfig(handles: []));

        Assert.That(model.Structs.Select(s => s.Name), Is.EqualTo(expected.Select(e => e.Name)));
        using (Assert.EnterMultipleScope())
        {
            foreach (var ((name, size, offsets), actual) in expected.Zip(model.Structs))
            {
                Assert.That(actual.Size, Is.EqualTo(size), $"sizeof({name})\n{header}");
                Assert.That(actual.Fields.Select(f => f.Offset), Is.EqualTo(offsets), $"offsets of {name}\n{header}");
            }
        }
    }

    [TestCase("typedef union api_u { int32_t a; float b; } api_u;", "union api_u")]
    [TestCase("typedef struct api_b { uint32_t a : 3; } api_b;", "api_b.a is a bitfield")]
    [TestCase("typedef struct api_f { uint32_t n; float v[]; } api_f;", "api_f.v is a flexible array member")]
    [TestCase("typedef struct api_p { int32_t x; } api_p; typedef struct api_q { api_p ps[2]; } api_q;", "cannot be a C# fixed buffer")]
    [TestCase("typedef struct api_o { struct { int32_t x; } inner; } api_o;", "nested struct")]
    [TestCase("void api_log(const char* format, ...);", "api_log is variadic")]
    [TestCase("void api_old();", "api_old has no prototype")]
    [TestCase("void api_size(long n);", "changes size across platforms")]
    [TestCase("typedef struct api_secret api_secret; void api_use(api_secret* s);", "not listed in \"handles\"")]
    [TestCase("static inline int32_t api_inline(void) { return 1; }", "api_inline has a body")]
    [TestCase("#define API_NAME api_name_value", "is not a numeric constant")]
    [TestCase("int32_t api_broken(", "clang reported")]
    [TestCase("#include <stdio.h>", "clang reported")]
    public void What_cannot_be_bound_faithfully_is_an_error_that_names_it(string declarations, string message)
    {
        var error = Assert.Throws<GeneratorException>(() => Generate("#include <stdint.h>\n" + declarations + "\n", handles: []));
        Assert.That(error!.Message, Does.Contain(message));
    }

    [Test]
    public void An_ignored_macro_is_left_out_instead_of_failing()
    {
        string code = Generate("#define API_NAME api_name_value\n#define API_SIZE 3\n", handles: [], ignoredMacros: ["API_NAME"]).NativeMethods;
        Assert.That(code, Does.Contain("internal const int API_SIZE = 3;"));
        Assert.That(code, Does.Not.Contain("API_NAME"));
    }

    [Test]
    public void A_configured_handle_the_header_does_not_declare_is_an_error()
    {
        var error = Assert.Throws<GeneratorException>(() => Generate("#include <stdint.h>\n", handles: ["api_ghost"]));
        Assert.That(error!.Message, Does.Contain("api_ghost"));
    }

    [Test]
    public void A_configuration_without_a_pinned_target_is_an_error()
    {
        var error = Assert.Throws<GeneratorException>(() =>
            Generate("#include <stdint.h>\n", handles: [], clangArgs: ["-x", "c", "-std=c11", "-nostdinc"]));
        Assert.That(error!.Message, Does.Contain("--target"));
    }

    private GeneratedBindings Generate(string header, string[] handles, string[]? ignoredMacros = null, string[]? clangArgs = null) =>
        Generator.Generate(WriteHeader(header), WriteConfig(handles, ignoredMacros, clangArgs));

    private string WriteHeader(string text)
    {
        string path = Path.Combine(_workspace, "api.h");
        File.WriteAllText(path, text);
        return path;
    }

    private BindingsConfig WriteConfig(string[] handles, string[]? ignoredMacros = null, string[]? clangArgs = null)
    {
        var json = new
        {
            header = "api.h",
            @namespace = "Api.Interop",
            className = "NativeMethods",
            libraryName = "api",
            output = "out/NativeMethods.g.cs",
            layoutTests = new { @namespace = "Api.Tests", className = "StructLayoutTests", output = "out/StructLayoutTests.g.cs" },
            handles,
            ignoredMacros = ignoredMacros ?? [],
            includeDirectories = new[] { "bindings/include" },
            clangArgs = clangArgs ?? ["-x", "c", "-std=c11", "--target=x86_64-unknown-linux-gnu", "-nostdinc"],
        };
        string path = Path.Combine(_workspace, "bindings", "bindings.json");
        File.WriteAllText(path, JsonSerializer.Serialize(json));
        return BindingsConfig.Load(path);
    }
}
