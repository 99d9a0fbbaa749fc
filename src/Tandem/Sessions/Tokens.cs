using System.Runtime.InteropServices;

namespace Tandem;

/// <summary>Token lists as spans for the native calls.</summary>
internal static class Tokens
{
    /// <summary>
    /// The ids of <paramref name="tokens"/> as a span: without a copy for arrays (what the tokenizer returns) and
    /// lists, copied otherwise.
    /// </summary>
    public static ReadOnlySpan<int> AsSpan(IReadOnlyList<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        return tokens switch
        {
            int[] array => array,
            List<int> list => CollectionsMarshal.AsSpan(list),
            _ => tokens.ToArray(),
        };
    }
}
