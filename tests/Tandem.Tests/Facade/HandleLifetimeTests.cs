using System.Diagnostics;
using NUnit.Framework;
using Tandem.Tests.Support;

namespace Tandem.Tests.Facade;

/// <summary>
/// Ownership of native handles: use after Dispose is an ObjectDisposedException (never a native crash), a
/// session keeps its model's weights alive, and creating and freeing many objects leaks nothing.
/// </summary>
[TestFixture]
[NonParallelizable] // the leak tests measure the process's memory
public sealed class HandleLifetimeTests
{
    /// <summary>
    /// Growth of the resident set allowed over 10,000 sessions. One leaked 64-token KV cache of llama-f32 is
    /// 3 layers · 2 (K, V) · 2 KV heads · 32 · 64 · 4 bytes = 96 KiB, so leaking them would add ~940 MiB; leaking
    /// even 1.6 KiB a session (a small struct) would exceed this bound.
    /// </summary>
    private const long SessionLeakBound = 16L << 20;

    [Test]
    public void Every_member_of_a_disposed_session_throws_ObjectDisposedException()
    {
        using var model = Model.Load(Repository.Fixture("llama-f32"));
        var session = model.CreateSession();
        session.Prefill([1, 2, 3]);
        session.Dispose();
        session.Dispose(); // twice is fine

        var calls = new (string Name, TestDelegate Call)[]
        {
            ("Prefill", () => session.Prefill([1])),
            ("Decode", () => session.Decode(1)),
            ("Truncate", () => session.Truncate(0)),
            ("Length", () => _ = session.Length),
            ("LogitRows", () => _ = session.LogitRows),
            ("GetLogits", () => session.GetLogits(0)),
            ("Stats", () => session.Stats(0)),
            ("Score", () => session.Score([1, 2])),
            ("Sampler.Sample(session)", () =>
            {
                using var sampler = new Sampler();
                sampler.Sample(session);
            }),
        };
        foreach (var (name, call) in calls)
        {
            var thrown = Assert.Throws<ObjectDisposedException>(call, name);
            Assert.That(thrown!.ObjectName, Is.EqualTo(nameof(Session)), name);
        }
    }

    [Test]
    public void A_disposed_model_and_sampler_throw_ObjectDisposedException()
    {
        var model = Model.Load(Repository.Fixture("llama-f32"));
        model.Dispose();
        Assert.Throws<ObjectDisposedException>(() => model.CreateSession());
        Assert.Throws<ObjectDisposedException>(() => model.GenerateAsync("hello"));
        Assert.Throws<ObjectDisposedException>(() => model.Score("hello"));
        Assert.That(model.Info.Layers, Is.GreaterThan(0), "the info is a managed copy and stays readable");

        var sampler = new Sampler();
        sampler.Dispose();
        Assert.Throws<ObjectDisposedException>(() => sampler.Sample([1f, 2f]));
    }

    [Test]
    public void A_session_keeps_working_after_its_model_is_disposed()
    {
        var golden = Golden.Load("llama-f32");
        int[] ids = golden.Json.Prompts[0].Ids;
        var model = Model.Load(golden.Folder);
        using var reference = model.CreateSession();
        reference.Prefill(ids);
        float[] expected = reference.GetLogits(0);
        var session = model.CreateSession();

        model.Dispose();
        session.Prefill(ids);

        Assert.That(session.GetLogits(0), Is.EqualTo(expected));
        session.Dispose();
        reference.Prefill([5]);
        Assert.That(reference.Length, Is.EqualTo(ids.Length + 1));
    }

    [Test]
    public void Creating_and_freeing_10000_sessions_keeps_memory_flat()
    {
        using var model = Model.Load(Repository.Fixture("llama-f32"));
        var options = new SessionOptions(KvCapacity: 64);
        void Cycle(int count)
        {
            for (int i = 0; i < count; i++)
            {
                using var session = model.CreateSession(options);
                session.Decode(i % model.Info.VocabSize); // touch the cache and the workspace
            }
        }

        Cycle(500); // warm-up: allocator arenas, JIT, thread pool
        long before = ResidentBytes();
        Cycle(10_000);
        long after = ResidentBytes();

        Assert.That(after - before, Is.LessThan(SessionLeakBound),
            $"resident memory grew from {before >> 20} MiB to {after >> 20} MiB over 10,000 sessions");
    }

    [Test]
    public void Sessions_dropped_without_Dispose_are_freed_by_their_SafeHandles()
    {
        // Up to a batch of abandoned sessions is alive before the collector finalizes them, so the resident set
        // settles at the high-water mark of one batch; the warm-up reaches it, later batches must stay there.
        const int Batch = 1_000;
        using var model = Model.Load(Repository.Fixture("llama-f32"));
        var options = new SessionOptions(KvCapacity: 64);
        void AbandonBatch()
        {
            for (int i = 0; i < Batch; i++)
            {
                model.CreateSession(options).Decode(1);
            }
            CollectEverything();
        }

        AbandonBatch();
        long before = ResidentBytes();
        for (int round = 0; round < 4; round++)
        {
            AbandonBatch();
        }
        long after = ResidentBytes();

        Assert.That(after - before, Is.LessThan(SessionLeakBound),
            $"resident memory grew from {before >> 20} MiB to {after >> 20} MiB over {4 * Batch} abandoned sessions");
    }

    [Test]
    public void Loading_and_freeing_a_model_200_times_keeps_memory_flat()
    {
        // llama-f32's weights are 2.5 MiB: 200 leaked loads would add ~500 MiB.
        string folder = Repository.Fixture("llama-f32");
        void Cycle(int count)
        {
            for (int i = 0; i < count; i++)
            {
                using var model = Model.Load(folder);
                using var session = model.CreateSession(new SessionOptions(KvCapacity: 16));
                session.Decode(1);
            }
        }

        Cycle(20);
        long before = ResidentBytes();
        Cycle(200);
        long after = ResidentBytes();

        Assert.That(after - before, Is.LessThan(32L << 20),
            $"resident memory grew from {before >> 20} MiB to {after >> 20} MiB over 200 model loads");
    }

    private static long ResidentBytes()
    {
        CollectEverything();
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        return process.WorkingSet64;
    }

    private static void CollectEverything()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }
}
