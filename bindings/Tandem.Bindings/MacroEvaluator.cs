using System.Globalization;
using System.Text;
using Tandem.Bindings.Clang;

namespace Tandem.Bindings;

/// <summary>
/// Turns the header's object-like #defines into C# constants. clang itself evaluates them: a second,
/// in-memory translation unit includes the header and declares, for each macro M,
/// <c>static const __typeof__((M)) tdm_bindings_constant_N = (M);</c>, so the value and its C type (1u is
/// unsigned int, 64 is int) follow the C rules exactly, including expressions such as (1u &lt;&lt; 4).
/// </summary>
internal static class MacroEvaluator
{
    private const string VariablePrefix = "tdm_bindings_constant_";

    /// <param name="declarations">The header's top-level cursors (the first translation unit).</param>
    /// <param name="doc">Finds the comment of a cursor of the first translation unit.</param>
    public static IReadOnlyList<ConstantModel> Evaluate(
        TranslationUnit unit, IReadOnlyList<CXCursor> declarations, string headerPath, IReadOnlyList<string> arguments,
        IReadOnlySet<string> ignored, Func<CXCursor, IReadOnlyList<string>> doc)
    {
        var candidates = new List<(string Name, IReadOnlyList<string> Doc)>();
        foreach (CXCursor macro in declarations.Where(c => c.Kind == CXCursorKind.MacroDefinition))
        {
            if (LibClang.clang_Cursor_isMacroBuiltin(macro) != 0 || LibClang.clang_Cursor_isMacroFunctionLike(macro) != 0)
                continue;
            var tokens = unit.Tokens(macro);
            string name = tokens[0].Text;
            if (ignored.Contains(name) || !LooksLikeConstant(tokens.Skip(1).ToList()))
                continue; // an include guard, an attribute macro such as TDM_API, a string
            candidates.Add((name, doc(macro)));
        }
        if (candidates.Count == 0)
            return Array.Empty<ConstantModel>();

        string evaluationPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(headerPath))!, "__tandem_bindings_constants__.c");
        var source = new StringBuilder();
        source.Append("#include \"").Append(Path.GetFullPath(headerPath).Replace("\\", "\\\\")).Append("\"\n");
        for (int i = 0; i < candidates.Count; i++)
            source.Append($"static const __typeof__(({candidates[i].Name})) {VariablePrefix}{i} = ({candidates[i].Name});\n");

        TranslationUnit evaluation;
        try
        {
            evaluation = TranslationUnit.Parse(evaluationPath, arguments, new UnsavedFile(evaluationPath, source.ToString()));
        }
        catch (GeneratorException e)
        {
            throw new GeneratorException(
                $"a #define of {Path.GetFileName(headerPath)} is not a numeric constant; add it to \"ignoredMacros\" in bindings.json " +
                $"if it is not meant for C#. Candidates: {string.Join(", ", candidates.Select(c => c.Name))}.\n{e.Message}");
        }

        using (evaluation)
        {
            var constants = new ConstantModel?[candidates.Count];
            foreach (CXCursor variable in TranslationUnit.Children(evaluation.Root))
            {
                if (variable.Kind != CXCursorKind.VarDecl || !TranslationUnit.IsFromMainFile(variable))
                    continue;
                string spelling = TranslationUnit.Spelling(variable);
                if (!spelling.StartsWith(VariablePrefix, StringComparison.Ordinal))
                    continue;
                int index = int.Parse(spelling.AsSpan(VariablePrefix.Length), CultureInfo.InvariantCulture);
                var (name, comment) = candidates[index];
                var (type, literal) = Value(variable, name);
                constants[index] = new ConstantModel(name, type, literal, comment);
            }
            return constants.Select((c, i) => c ?? throw new GeneratorException($"macro {candidates[i].Name} was not evaluated.")).ToList();
        }
    }

    /// <summary>
    /// A body of numbers, operators and names of other macros. Keywords (e.g. __attribute__), strings and
    /// character literals mean the macro is not a numeric constant; an empty body is an include guard.
    /// </summary>
    private static bool LooksLikeConstant(IReadOnlyList<(CXTokenKind Kind, string Text)> body) =>
        body.Count > 0 && body.All(t => t.Kind switch
        {
            CXTokenKind.Punctuation or CXTokenKind.Identifier => true,
            CXTokenKind.Literal => !t.Text.Contains('"') && !t.Text.Contains('\''),
            _ => false,
        });

    private static unsafe (string Type, string Literal) Value(CXCursor variable, string name)
    {
        CXType type = LibClang.clang_getCanonicalType(LibClang.clang_getCursorType(variable));
        void* result = LibClang.clang_Cursor_Evaluate(variable);
        if (result == null)
            throw new GeneratorException($"macro {name} is not a constant expression.");
        try
        {
            CXEvalResultKind kind = LibClang.clang_EvalResult_getKind(result);
            long size = LibClang.clang_Type_getSizeOf(type);
            if (kind == CXEvalResultKind.Int)
            {
                bool unsigned = LibClang.clang_EvalResult_isUnsignedInt(result) != 0;
                string literal = unsigned
                    ? LibClang.clang_EvalResult_getAsUnsigned(result).ToString(CultureInfo.InvariantCulture)
                    : LibClang.clang_EvalResult_getAsLongLong(result).ToString(CultureInfo.InvariantCulture);
                string csharpType = (type.Kind, size) switch
                {
                    (CXTypeKind.Int, 4) => "int",
                    (CXTypeKind.UInt, 4) => "uint",
                    (CXTypeKind.Long or CXTypeKind.LongLong, 8) => "long",
                    (CXTypeKind.ULong or CXTypeKind.ULongLong, 8) => "ulong",
                    _ => throw new GeneratorException($"macro {name} has type {TranslationUnit.Spelling(type)}, which has no C# constant type."),
                };
                return (csharpType, literal);
            }
            if (kind == CXEvalResultKind.Float)
            {
                double value = LibClang.clang_EvalResult_getAsDouble(result);
                if (!double.IsFinite(value))
                    throw new GeneratorException($"macro {name} is not finite.");
                return type.Kind == CXTypeKind.Float
                    ? ("float", ((float)value).ToString("R", CultureInfo.InvariantCulture) + "f")
                    : ("double", value.ToString("R", CultureInfo.InvariantCulture) + "d");
            }
            throw new GeneratorException($"macro {name} does not evaluate to a number.");
        }
        finally
        {
            LibClang.clang_EvalResult_dispose(result);
        }
    }
}
