namespace Tandem.Cli.Commands;

internal static class AsyncStreams
{
    /// <summary>
    /// Enumerates an async stream by blocking on each step. The command is a console program with no
    /// synchronization context to keep free, and the producers run the native work on the thread pool anyway.
    /// </summary>
    public static IEnumerable<T> Blocking<T>(this IAsyncEnumerable<T> stream)
    {
        var enumerator = stream.GetAsyncEnumerator();
        try
        {
            while (enumerator.MoveNextAsync().AsTask().GetAwaiter().GetResult())
            {
                yield return enumerator.Current;
            }
        }
        finally
        {
            enumerator.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}
