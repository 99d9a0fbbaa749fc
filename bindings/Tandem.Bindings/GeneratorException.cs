namespace Tandem.Bindings;

/// <summary>The header or the configuration asks for something the generator will not guess at.</summary>
public sealed class GeneratorException : Exception
{
    public GeneratorException(string message) : base(message) { }
}
