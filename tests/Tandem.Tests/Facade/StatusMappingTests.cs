using NUnit.Framework;
using Tandem.Interop;

namespace Tandem.Tests.Facade;

/// <summary>The one status-to-exception mapping, and the public status enum kept in step with tdm_status.</summary>
[TestFixture]
public sealed class StatusMappingTests
{
    [Test]
    public void TandemStatus_mirrors_tdm_status_name_for_name_and_value_for_value()
    {
        var native = Enum.GetValues<tdm_status>().ToDictionary(s => (int)s, s => s.ToString());
        var managed = Enum.GetValues<TandemStatus>().ToDictionary(s => (int)s, s => s.ToString());

        Assert.That(managed.Keys, Is.EquivalentTo(native.Keys));
        foreach (var (value, name) in native)
        {
            string expected = name == "TDM_OK" ? "Ok" : string.Concat(name["TDM_ERR_".Length..].Split('_')
                .Select(w => w[0] + w[1..].ToLowerInvariant()));
            Assert.That(managed[value], Is.EqualTo(expected), $"status {value}");
        }
    }

    [Test]
    public void The_native_status_names_agree()
    {
        foreach (var status in Enum.GetValues<tdm_status>())
        {
            Assert.That(NativeName(status), Is.EqualTo(status.ToString()));
        }
    }

    [TestCase((int)tdm_status.TDM_ERR_INVALID_ARGUMENT, typeof(ArgumentException))]
    [TestCase((int)tdm_status.TDM_ERR_TOKEN_OUT_OF_RANGE, typeof(ArgumentOutOfRangeException))]
    [TestCase((int)tdm_status.TDM_ERR_CANCELLED, typeof(OperationCanceledException))]
    [TestCase((int)tdm_status.TDM_ERR_CONTEXT_FULL, typeof(ContextFullException))]
    [TestCase((int)tdm_status.TDM_ERR_NOT_FOUND, typeof(TandemException))]
    [TestCase((int)tdm_status.TDM_ERR_IO, typeof(TandemException))]
    [TestCase((int)tdm_status.TDM_ERR_INVALID_MODEL, typeof(TandemException))]
    [TestCase((int)tdm_status.TDM_ERR_UNSUPPORTED, typeof(TandemException))]
    [TestCase((int)tdm_status.TDM_ERR_OUT_OF_MEMORY, typeof(TandemException))]
    [TestCase((int)tdm_status.TDM_ERR_BACKEND_UNAVAILABLE, typeof(TandemException))]
    [TestCase((int)tdm_status.TDM_ERR_DEVICE, typeof(TandemException))]
    [TestCase((int)tdm_status.TDM_ERR_INVALID_STATE, typeof(TandemException))]
    [TestCase((int)tdm_status.TDM_ERR_INTERNAL, typeof(TandemException))]
    public void Each_status_maps_to_its_exception_with_the_message_and_the_status(int status, Type expected)
    {
        var exception = NativeStatus.ToException((tdm_status)status, "what went wrong");

        Assert.That(exception, Is.TypeOf(expected));
        Assert.That(exception.Message, Is.EqualTo("what went wrong"));
        Assert.That(TandemException.StatusOf(exception), Is.EqualTo((TandemStatus)status));
        if (exception is TandemException tandem)
        {
            Assert.That(tandem.Status, Is.EqualTo((TandemStatus)status));
        }
    }

    [Test]
    public void A_cancellation_carries_the_callers_token()
    {
        using var source = new CancellationTokenSource();
        var exception = (OperationCanceledException)NativeStatus.ToException(tdm_status.TDM_ERR_CANCELLED, "stop", source.Token);
        Assert.That(exception.CancellationToken, Is.EqualTo(source.Token));
    }

    [Test]
    public void An_empty_native_message_still_says_which_status()
    {
        var exception = NativeStatus.ToException(tdm_status.TDM_ERR_IO, "");
        Assert.That(exception.Message, Does.Contain(nameof(TandemStatus.Io)));
    }

    [Test]
    public void A_real_failure_carries_the_native_threads_message()
    {
        var thrown = Assert.Throws<TandemException>(() => Model.Load("/definitely/not/a/model"));
        Assert.That(thrown!.Message, Does.Contain("/definitely/not/a/model"));
        Assert.That(TandemException.StatusOf(new InvalidOperationException()), Is.Null, "not from the core");
    }

    private static unsafe string NativeName(tdm_status status) => Utf8.ToManaged(NativeMethods.tdm_status_name((int)status));
}
