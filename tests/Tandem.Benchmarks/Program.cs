using BenchmarkDotNet.Running;

// dotnet run -c Release --project tests/Tandem.Benchmarks -- --filter '*'
// (TANDEM_BENCH_MODEL=DIR picks another model folder than tests/fixtures/llama-f32.)
BenchmarkSwitcher.FromAssembly(typeof(Tandem.Benchmarks.DecodeOverheadBenchmarks).Assembly).Run(args);
