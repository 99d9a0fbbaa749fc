namespace Tandem.Tests.Support;

/// <summary>An IProgress that runs the handler inline (Progress&lt;T&gt; would post it to the thread pool).</summary>
internal sealed class SynchronousProgress<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}
