// The CUDA benchmark of issue 3, Tandem's side: what one GPU does with our kernels and our engine.
//
//   tandem_cuda_bench [--json FILE] [--dir DIR] [--models 1b,8b] [--attention 4096,16384,65536]
//                     [--prompt 512] [--gen 256] [--prefill 4096] [--reps 3]
//
//   1. Device-to-device copy bandwidth (cudaMemcpyAsync of 2 GiB, bytes read + written): the
//      ceiling the decode floor is computed with.
//   2. Dense causal attention prefill alone, Hq=32, Hkv=8, D=128, at each --attention length:
//      TFLOP/s with dense causal FLOPs = 4 N^2 Hq D / 2. Our kernel reads the engine's bf16 KV
//      cache and f32 Q (rounded to bf16 once per query tile; PyTorch's side in cuda_baselines.py
//      runs it all in bf16). Each size is
//      checked first: the output is poisoned, every element must come back finite, and sampled
//      rows must match a float64 host reference.
//   3. For a Llama-3.2-1B-shaped and a Llama-3.1-8B-shaped model: random bf16 weights (fixed
//      seed) written under --dir, loaded on the GPU, then batch-1 greedy decode tokens/s after a
//      --prompt-token prompt (--gen new tokens; greedy by Session::sample, which takes the
//      argmax on the GPU and brings back only the token) and prefill tokens/s of a --prefill-token prompt,
//      next to the floor: (weight bytes + KV bytes) per token / measured copy bandwidth.
//
// Prints a table and writes every number to --json for run_cuda_bench.sh to merge with the
// PyTorch baselines.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/cuda_attention.h"
#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"
#include "model/model.h"
#include "model/session.h"
#include "cuda_bench_support.h"
#include "random_model_writer.h"

namespace {

using namespace tdm::bench;

struct AttentionResult {
    int64_t n;
    double seconds, tflops, max_rel_err;
    int reps;
    bool checked;  // every element written and finite, sampled rows within 1e-2 of float64
    double mma_sync_tflops;  // the same problem on the previous (mma.sync) loop, same run
};

// Our prefill kernel on one causal problem of each length in `lengths`. Q/K/V are drawn once for
// the longest length and shared: Q is [n, Hq, D] (a prefix is the shorter problem) and the caches
// are [Hkv, capacity, D] with capacity = the longest length, so every length reads its prefix.
std::vector<AttentionResult> bench_attention(const std::vector<int64_t>& lengths,
                                             cudaStream_t stream) {
    constexpr int Hq = 32, Hkv = 8, D = 128;
    const int64_t cap = *std::max_element(lengths.begin(), lengths.end());
    std::vector<float> q(size_t(cap * Hq * D)), k(size_t(Hkv * cap * D)), v(k.size());
    fill_uniform(q, 1);
    fill_uniform(k, 2);
    fill_uniform(v, 3);
    // The KV cache is bf16: the reference reads the same rounded values.
    std::vector<uint16_t> k16(k.size()), v16(v.size());
    for (size_t i = 0; i < k.size(); ++i) {
        k16[i] = tdm::f32_to_bf16(k[i]);
        v16[i] = tdm::f32_to_bf16(v[i]);
        k[i] = tdm::bf16_to_f32(k16[i]);
        v[i] = tdm::bf16_to_f32(v16[i]);
    }
    DeviceBuffer dq(q.size() * 4), dk(k.size() * 2), dv(v.size() * 2), dout(q.size() * 4),
        dlse(size_t(cap * Hq) * 4);
    TDM_CUDA_CHECK(cudaMemcpy(dq.data(), q.data(), q.size() * 4, cudaMemcpyHostToDevice));
    TDM_CUDA_CHECK(cudaMemcpy(dk.data(), k16.data(), k.size() * 2, cudaMemcpyHostToDevice));
    TDM_CUDA_CHECK(cudaMemcpy(dv.data(), v16.data(), v.size() * 2, cudaMemcpyHostToDevice));
    const float scale = 1.0f / std::sqrt(float(D));

    std::vector<AttentionResult> results;
    for (int64_t n : lengths) {
        tdm::cuda::AttentionArgs a;
        a.q = dq.as<float>();
        a.k_cache = dk.as<uint16_t>();
        a.v_cache = dv.as<uint16_t>();
        a.out = dout.as<float>();
        a.lse = dlse.as<float>();  // the block-sparse issue needs it, so it is part of the cost
        a.n_new = n;
        a.pos0 = 0;
        a.capacity = cap;
        a.heads = Hq;
        a.kv_heads = Hkv;
        a.head_dim = D;
        a.scale = scale;

        // Check first, on a poisoned output (all-ones bytes are NaN). This run is also the
        // warm-up, and its time sets how many timed runs fit in about 10 s (3 to 20).
        const size_t out_floats = size_t(n * Hq * D);
        TDM_CUDA_CHECK(cudaMemsetAsync(dout.data(), 0xFF, out_floats * 4, stream));
        const auto first = time_events(stream, 0, 1, [&] { tdm::cuda::attention_prefill(a, stream); });
        std::vector<float> out(out_floats);
        TDM_CUDA_CHECK(cudaMemcpy(out.data(), dout.data(), out_floats * 4, cudaMemcpyDeviceToHost));
        size_t unwritten = 0;
        for (size_t i = 0; i < out_floats; ++i) unwritten += !std::isfinite(out[i]);
        // Sampled rows (first, ragged middle, last; heads of different KV groups) against a
        // float64 reference. D = 64/128 run on bf16 tensor cores (operands rounded to bf16: a few
        // 1e-3 relative, as SDPA's own 2.5e-3), other head dims in f32 (far under 1e-4); 1e-2
        // bounds both.
        double max_rel = 0;
        for (int64_t row : {int64_t(0), n / 3 + 7, n - 1}) {
            for (int h : {0, 13, Hq - 1}) {
                const int kvh = h / (Hq / Hkv);
                const float* qr = &q[size_t((row * Hq + h) * D)];
                std::vector<double> s(size_t(row + 1));
                double mx = -1e300;
                for (int64_t j = 0; j <= row; ++j) {
                    const float* kr = &k[size_t((kvh * cap + j) * D)];
                    double dot = 0;
                    for (int d = 0; d < D; ++d) dot += double(qr[d]) * double(kr[d]);
                    s[size_t(j)] = dot * scale;
                    mx = std::max(mx, s[size_t(j)]);
                }
                double l = 0;
                std::vector<double> o(D, 0.0);
                for (int64_t j = 0; j <= row; ++j) {
                    const double p = std::exp(s[size_t(j)] - mx);
                    l += p;
                    const float* vr = &v[size_t((kvh * cap + j) * D)];
                    for (int d = 0; d < D; ++d) o[size_t(d)] += p * double(vr[d]);
                }
                double num = 0, den = 0;
                for (int d = 0; d < D; ++d) {
                    const double ref = o[size_t(d)] / l;
                    const double got = out[size_t((row * Hq + h) * D + d)];
                    num += (got - ref) * (got - ref);
                    den += ref * ref;
                }
                max_rel = std::max(max_rel, std::sqrt(num / std::max(den, 1e-300)));
            }
        }
        // A failed check is reported, not fatal: the table marks the timing as invalid.
        const bool checked = unwritten == 0 && max_rel < 1e-2;
        if (!checked)
            std::printf("attention N=%lld: CHECK FAILED: %zu elements unwritten or not finite, "
                        "relative error %.2e against the float64 reference\n", (long long)n,
                        unwritten, max_rel);

        const int reps = std::clamp(int(10.0 / first[0]), 3, 20);
        auto t = time_events(stream, 0, reps, [&] { tdm::cuda::attention_prefill(a, stream); });
        const double sec = median(t);
        const double flops = 4.0 * double(n) * double(n) * Hq * D / 2.0;
        // The mma.sync loop the wgmma one replaced, on the same inputs: the ratio of the two is
        // what the Hopper loop buys.
        auto t_mma = time_events(stream, 0, reps, [&] {
            tdm::cuda::attention_prefill_flash(a, stream, tdm::cuda::FlashLoop::kMmaSync);
        });
        const double sec_mma = median(t_mma);
        results.push_back({n, sec, flops / sec / 1e12, max_rel, reps, checked,
                           flops / sec_mma / 1e12});
        std::printf("attention N=%-6lld  %9.3f ms  %7.2f TFLOP/s  (median of %d; rel err %.1e); "
                    "mma.sync loop %7.2f TFLOP/s (%.2fx)\n",
                    (long long)n, sec * 1e3, flops / sec / 1e12, reps, max_rel,
                    flops / sec_mma / 1e12, sec_mma / sec);
        std::fflush(stdout);
    }
    return results;
}

struct ModelSpec {
    std::string key, label;
    tdm::bench::LlamaShape shape;
};

std::vector<ModelSpec> model_specs() {
    tdm::bench::LlamaShape s1b;
    s1b.dim = 2048; s1b.layers = 16; s1b.heads = 32; s1b.kv_heads = 8; s1b.head_dim = 64;
    s1b.ffn = 8192; s1b.vocab = 128256; s1b.context = 131072; s1b.tied_embeddings = true;
    s1b.rope_theta = 500000.0;
    tdm::bench::LlamaShape s8b;
    s8b.dim = 4096; s8b.layers = 32; s8b.heads = 32; s8b.kv_heads = 8; s8b.head_dim = 128;
    s8b.ffn = 14336; s8b.vocab = 128256; s8b.context = 131072; s8b.tied_embeddings = false;
    s8b.rope_theta = 500000.0;
    return {{"1b", "Llama-3.2-1B shape", s1b}, {"8b", "Llama-3.1-8B shape", s8b}};
}

// Bytes one decode step must move through device memory: every weight matrix and norm once (a
// tied lm_head is the embedding, read whole by the logits), one embedding row, and the KV cache
// of `kv_positions` positions at `kv_bytes` bytes an element.
double decode_bytes(const tdm::Model& m, double kv_positions, double kv_bytes) {
    const auto& c = m.config();
    const auto& w = m.weights();
    auto mat = [](const tdm::MatrixView& x) {
        return double(x.rows * x.cols) * double(tdm::dtype_size(x.dtype));
    };
    auto vec = [](const tdm::VectorView& x) { return double(x.size) * double(tdm::dtype_size(x.dtype)); };
    double bytes = double(w.embed.cols) * double(tdm::dtype_size(w.embed.dtype));
    for (const auto& L : w.layers)
        bytes += vec(L.attn_norm) + vec(L.mlp_norm) + mat(L.wq) + mat(L.wk) + mat(L.wv) +
                 mat(L.wo) + mat(L.w_gate) + mat(L.w_up) + mat(L.w_down);
    bytes += vec(w.final_norm) + mat(w.lm_head);
    bytes += double(c.num_hidden_layers) * 2.0 * double(c.kv_dim()) * kv_positions * kv_bytes;
    return bytes;
}

// FLOPs per token of a prefill of n tokens: 2 per weight of every layer matrix, causal attention
// (4 n^2 Hq D / 2 a layer, counted dense as in the attention table) and the logits of the last
// token only.
double prefill_flops_per_token(const tdm::Model& m, int64_t n) {
    const auto& c = m.config();
    double weights = 0;
    for (const auto& L : m.weights().layers)
        for (const tdm::MatrixView* x : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
            weights += double(x->rows * x->cols);
    const double attention = 2.0 * double(n) * double(c.num_attention_heads) *
                             double(c.head_dim) * double(c.num_hidden_layers);
    const double logits = 2.0 * double(c.vocab_size) * double(c.hidden_size) / double(n);
    return 2.0 * weights + attention + logits;
}


std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> tok(3, int32_t(vocab) - 1);
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& t : ids) t = tok(rng);
    return ids;
}

struct ModelResult {
    double prompt_prefill_tps, decode_tps, prefill_tps;
    double decode_seconds_median;
    double decode_eager_tps;  // the same decode with TANDEM_CUDA_GRAPH=0 (every launch enqueued)
    int64_t graph_replays;    // of the last timed decode run: > 0 when the graph path ran
};

// Greedy decode after a prompt, and a long prefill, each a median of `reps` runs on fresh
// sessions, after one untimed warm-up run (cuBLAS handles, workspaces, first-launch costs).
// Session::prefill may return before the GPU has finished (the logits stay on the device until
// someone asks), so every timed prefill ends with the first greedy token, which waits for the
// forward pass: the time to first token, measured with a host clock.
tdm_sampler_options greedy_options() {
    tdm_sampler_options o = tdm::default_sampler_options();
    o.temperature = 0.0f;
    return o;
}

ModelResult time_model(const std::shared_ptr<const tdm::Model>& model, int prompt, int gen,
                       int prefill, int reps) {
    const int64_t V = model->config().vocab_size;
    const auto prompt_ids = random_tokens(prompt, V, 1234);
    const auto long_ids = random_tokens(prefill, V, 4321);
    int64_t replays = 0;
    auto decode_run = [&](int steps, double* prefill_s, double* decode_s, bool graph = true) {
        tdm::SessionConfig sc;
        sc.kv_capacity = prompt + steps + 1;
        // The backend reads the switch when the session creates it.
        if (!graph) setenv("TANDEM_CUDA_GRAPH", "0", 1);
        tdm::Session s(model, sc);
        if (!graph) unsetenv("TANDEM_CUDA_GRAPH");
        // Greedy through Session::sample: the argmax is taken on the GPU and only the token
        // comes back, as a generate loop over the C ABI does (tdm_sampler_sample_session).
        tdm::Sampler greedy(greedy_options());
        auto t = Clock::now();
        s.prefill(prompt_ids.data(), prompt, false);
        int32_t next = s.sample(greedy, nullptr);
        if (prefill_s) *prefill_s = seconds_since(t);
        t = Clock::now();
        for (int i = 0; i < steps; ++i) {
            s.decode(next);
            next = s.sample(greedy, nullptr);
        }
        if (decode_s) *decode_s = seconds_since(t);
        replays = s.backend().graph_replays();
    };
    auto prefill_run = [&]() {
        tdm::SessionConfig sc;
        sc.kv_capacity = prefill + 1;
        tdm::Session s(model, sc);
        tdm::Sampler greedy(greedy_options());
        auto t = Clock::now();
        s.prefill(long_ids.data(), prefill, false);
        (void)s.sample(greedy, nullptr);
        return seconds_since(t);
    };
    decode_run(8, nullptr, nullptr);
    prefill_run();
    std::vector<double> pp, dd, lp;
    for (int r = 0; r < reps; ++r) {
        double p = 0, d = 0;
        decode_run(gen, &p, &d);
        pp.push_back(p);
        dd.push_back(d);
    }
    const int64_t graph_replays = replays;
    std::vector<double> de;
    for (int r = 0; r < reps; ++r) {
        double d = 0;
        decode_run(gen, nullptr, &d, /*graph=*/false);
        de.push_back(d);
    }
    for (int r = 0; r < reps; ++r) lp.push_back(prefill_run());
    return {prompt / median(pp), gen / median(dd), prefill / median(lp), median(dd),
            gen / median(de), graph_replays};
}

}  // namespace

int main(int argc, char** argv) {
    std::string json_path, dir = "/tmp/tandem-bench-models", models_arg = "1b,8b",
                           attention_arg = "4096,16384,65536";
    int prompt = 512, gen = 256, prefill = 4096, reps = 3;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", a.c_str()); std::exit(2); }
            return argv[++i];
        };
        if (a == "--json") json_path = next();
        else if (a == "--dir") dir = next();
        else if (a == "--models") models_arg = next();
        else if (a == "--attention") attention_arg = next();
        else if (a == "--prompt") prompt = std::atoi(next().c_str());
        else if (a == "--gen") gen = std::atoi(next().c_str());
        else if (a == "--prefill") prefill = std::atoi(next().c_str());
        else if (a == "--reps") reps = std::atoi(next().c_str());
        else { std::fprintf(stderr, "unknown argument %s\n", a.c_str()); return 2; }
    }
    nlohmann::json out = nlohmann::json::object();
    // Written after every measurement, so a run cut short still leaves what it measured.
    auto save = [&] {
        if (json_path.empty()) return;
        std::ofstream f(json_path);
        f << out.dump(2) << "\n";
    };
    try {
        const tdm::cuda::DeviceInfo info = tdm::cuda::require_supported_device(0);
        int runtime = 0, driver = 0;
        TDM_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
        TDM_CUDA_CHECK(cudaDriverGetVersion(&driver));
        out["device"] = info.name;
        out["cuda_runtime"] = runtime;
        out["cuda_driver"] = driver;
        std::printf("device: %s (%d SMs, %.1f GiB), CUDA runtime %d, driver %d\n", info.name.c_str(),
                    info.multiprocessors, double(info.memory_bytes) / (1 << 30), runtime, driver);
        tdm::cuda::Stream stream;

        const double bw = copy_bandwidth(stream.get());
        out["copy_bandwidth_gbs"] = bw / 1e9;
        std::printf("device-to-device copy: %.0f GB/s (bytes read + written, 2 GiB, median of 20)\n",
                    bw / 1e9);
        save();

        std::vector<int64_t> lengths;
        for (const auto& s : split(attention_arg, ',')) lengths.push_back(std::atoll(s.c_str()));
        if (!lengths.empty()) {
            for (const auto& r : bench_attention(lengths, stream.get())) {
                out["attention"][std::to_string(r.n)] = {{"ms", r.seconds * 1e3},
                                                         {"tflops", r.tflops},
                                                         {"rel_err", r.max_rel_err},
                                                         {"reps", r.reps},
                                                         {"checked", r.checked},
                                                         {"mma_sync_tflops", r.mma_sync_tflops}};
                save();
            }
        }

        const auto wanted = split(models_arg, ',');
        for (const auto& spec : model_specs()) {
            if (std::find(wanted.begin(), wanted.end(), spec.key) == wanted.end()) continue;
            const std::string folder = dir + "/random-llama-" + spec.key + "-bf16";
            auto t = Clock::now();
            tdm::bench::write_random_llama(folder, spec.shape, tdm::DType::BF16, 20261127,
                                           tdm::bench::RandomStream::Blocked);
            const double write_s = seconds_since(t);
            t = Clock::now();
            tdm::LoadOptions lo;
            lo.device = TDM_DEVICE_CUDA;
            lo.device_index = 0;
            auto model = tdm::Model::load(folder, lo);
            const double load_s = seconds_since(t);
            std::printf("\n%s: %.2f B parameters; weights written/reused in %.1f s, loaded on the "
                        "GPU in %.1f s\n", spec.label.c_str(), double(model->parameter_count()) / 1e9,
                        write_s, load_s);
            std::fflush(stdout);
            const ModelResult r = time_model(model, prompt, gen, prefill, reps);
            // The KV cache read by the average decode step (prompt + gen/2 positions), bf16 as
            // ours (and transformers') is.
            const double kv_pos = prompt + gen / 2.0;
            const double bytes_bf16 = decode_bytes(*model, kv_pos, 2.0);
            const double floor_tps = bw / bytes_bf16;
            out["models"][spec.key] = {{"label", spec.label},
                                       {"parameters", model->parameter_count()},
                                       {"decode_tps", r.decode_tps},
                                       {"decode_eager_tps", r.decode_eager_tps},
                                       {"graph_replays", r.graph_replays},
                                       {"prompt_prefill_tps", r.prompt_prefill_tps},
                                       {"prefill_tps", r.prefill_tps},
                                       {"bytes_per_token_bf16_kv", bytes_bf16},
                                       {"floor_tps", floor_tps},
                                       {"prefill_flops_per_token",
                                        prefill_flops_per_token(*model, prefill)},
                                       {"prompt", prompt},
                                       {"gen", gen},
                                       {"prefill", prefill},
                                       {"reps", reps}};
            save();
            std::printf("%s: decode %.1f tok/s (floor %.0f tok/s = %.2f GB/token at %.0f GB/s; "
                        "fraction %.2f; without the CUDA graph %.1f tok/s, graph %.2fx; %lld "
                        "replays), prefill %d: %.0f tok/s, prefill %d: %.0f tok/s\n",
                        spec.label.c_str(), r.decode_tps, floor_tps, bytes_bf16 / 1e9, bw / 1e9,
                        r.decode_tps / floor_tps, r.decode_eager_tps,
                        r.decode_tps / r.decode_eager_tps, (long long)r.graph_replays, prompt,
                        r.prompt_prefill_tps, prefill, r.prefill_tps);
            std::fflush(stdout);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tandem_cuda_bench: %s\n", e.what());
        save();
        return 1;
    }
    return 0;
}
