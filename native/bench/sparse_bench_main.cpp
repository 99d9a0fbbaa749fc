// The block-sparse attention benchmark of issue 4, Tandem's side (run_sparse_bench.sh runs it next
// to PyTorch's SDPA and prints one table with sparse_bench_table.py).
//
//   tandem_sparse_bench [--json FILE] [--lengths 8192,32768,131072] [--densities 0.1,0.3]
//                       [--block 128] [--seconds 6]
//
// bf16 KV cache (f32 Q and output, as the engine keeps them), B=1, Hq=32, Hkv=8, D=128, causal,
// at each length:
//   - our dense prefill kernel: TFLOP/s with dense causal FLOPs = 4 N^2 Hq D / 2;
//   - our block-sparse kernel on a fixed random causal mask per density (per query head and query
//     block: the sink, the diagonal and a random choice of the other causal blocks, so that the
//     listed blocks are `density` of the causal ones): time, the density reached, and the
//     effective TFLOP/s on the active blocks, 4 B^2 D (active blocks over all query heads) / time
//     (diagonal blocks count whole, as the issue defines it).
// Every measurement is checked first on a poisoned output: every element written and finite, and
// sampled rows (first, middle, last; heads of different KV groups) within 1e-2 (norm-wise) of a
// float64 host reference of the same mask. Median of CUDA-event timings, as many runs as fit in
// about --seconds (3 to 20).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/cuda_attention.h"
#include "core/dtype.h"
#include "core/error.h"
#include "cuda_bench_support.h"
#include "kernels/cuda/device.h"

namespace {

using namespace tdm::bench;

constexpr int Hq = 32, Hkv = 8, D = 128;

struct Plan {
    int32_t q_blocks = 0;
    std::vector<int32_t> row_ptr, cols;
    int64_t active = 0;  // listed blocks over all heads
    int64_t causal = 0;  // causal blocks over all heads
};

// Per (head, query block r): blocks 0 and r, and round(density (r + 1)) - 2 (at least 0) others
// drawn without replacement from 1..r-1.
Plan random_plan(int64_t n, int B, double density, uint32_t seed) {
    Plan p;
    p.q_blocks = int32_t((n + B - 1) / B);
    std::mt19937 rng(seed);
    std::vector<int32_t> middle;
    p.row_ptr.push_back(0);
    for (int h = 0; h < Hq; ++h) {
        for (int32_t r = 0; r < p.q_blocks; ++r) {
            const int32_t others = std::clamp(int32_t(std::lround(density * (r + 1))) - 2, 0,
                                              std::max(0, r - 1));
            middle.clear();
            for (int32_t c = 1; c < r; ++c) middle.push_back(c);
            std::shuffle(middle.begin(), middle.end(), rng);
            middle.resize(size_t(others));
            std::sort(middle.begin(), middle.end());
            p.cols.push_back(0);
            p.cols.insert(p.cols.end(), middle.begin(), middle.end());
            if (r > 0) p.cols.push_back(r);
            p.row_ptr.push_back(int32_t(p.cols.size()));
            p.causal += r + 1;
        }
    }
    p.active = int64_t(p.cols.size());
    return p;
}

struct Data {
    int64_t cap;
    std::vector<float> q, k, v;  // k, v hold the bf16-rounded values the GPU reads
    DeviceBuffer dq, dk, dv, dout, dlse;
};

Data make_data(int64_t cap) {
    Data d;
    d.cap = cap;
    d.q.resize(size_t(cap * Hq * D));
    d.k.resize(size_t(Hkv * cap * D));
    d.v.resize(d.k.size());
    fill_uniform(d.q, 11);
    fill_uniform(d.k, 12);
    fill_uniform(d.v, 13);
    std::vector<uint16_t> k16(d.k.size()), v16(d.v.size());
    for (size_t i = 0; i < d.k.size(); ++i) {
        k16[i] = tdm::f32_to_bf16(d.k[i]);
        v16[i] = tdm::f32_to_bf16(d.v[i]);
        d.k[i] = tdm::bf16_to_f32(k16[i]);
        d.v[i] = tdm::bf16_to_f32(v16[i]);
    }
    d.dq = DeviceBuffer(d.q.size() * 4);
    d.dk = DeviceBuffer(k16.size() * 2);
    d.dv = DeviceBuffer(v16.size() * 2);
    d.dout = DeviceBuffer(d.q.size() * 4);
    d.dlse = DeviceBuffer(size_t(cap * Hq) * 4);
    TDM_CUDA_CHECK(cudaMemcpy(d.dq.data(), d.q.data(), d.q.size() * 4, cudaMemcpyHostToDevice));
    TDM_CUDA_CHECK(cudaMemcpy(d.dk.data(), k16.data(), k16.size() * 2, cudaMemcpyHostToDevice));
    TDM_CUDA_CHECK(cudaMemcpy(d.dv.data(), v16.data(), v16.size() * 2, cudaMemcpyHostToDevice));
    return d;
}

// Norm-wise relative error of sampled output rows against float64, over the keys `visible(h, r,
// j)` allows; also counts unwritten (non-finite) outputs over the whole output.
template <class Visible>
std::pair<double, size_t> check(const Data& d, int64_t n, Visible visible) {
    const size_t floats = size_t(n * Hq * D);
    std::vector<float> out(floats);
    TDM_CUDA_CHECK(cudaMemcpy(out.data(), d.dout.data(), floats * 4, cudaMemcpyDeviceToHost));
    size_t unwritten = 0;
    for (float x : out) unwritten += !std::isfinite(x);
    const float scale = 1.0f / std::sqrt(float(D));
    double worst = 0;
    for (int64_t row : {int64_t(0), n / 3 + 7, n - 1}) {
        for (int h : {0, 13, Hq - 1}) {
            const int kvh = h / (Hq / Hkv);
            const float* qr = &d.q[size_t((row * Hq + h) * D)];
            std::vector<double> s;
            std::vector<int64_t> keys;
            double mx = -1e300;
            for (int64_t j = 0; j <= row; ++j) {
                if (!visible(h, row, j)) continue;
                const float* kr = &d.k[size_t((kvh * d.cap + j) * D)];
                double dot = 0;
                for (int e = 0; e < D; ++e) dot += double(qr[e]) * kr[e];
                s.push_back(dot * scale);
                keys.push_back(j);
                mx = std::max(mx, s.back());
            }
            std::vector<double> o(D, 0.0);
            double l = 0;
            for (size_t x = 0; x < keys.size(); ++x) {
                const double p = std::exp(s[x] - mx);
                l += p;
                const float* vr = &d.v[size_t((kvh * d.cap + keys[x]) * D)];
                for (int e = 0; e < D; ++e) o[size_t(e)] += p * vr[e];
            }
            double num = 0, den = 0;
            for (int e = 0; e < D; ++e) {
                const double ref = o[size_t(e)] / l, got = out[size_t((row * Hq + h) * D + e)];
                num += (got - ref) * (got - ref);
                den += ref * ref;
            }
            worst = std::max(worst, std::sqrt(num / std::max(den, 1e-300)));
        }
    }
    return {worst, unwritten};
}

// Poisons the output, runs `work` once (the check run, also the warm-up), checks, then times as
// many runs as fit in about `seconds`. Returns {seconds, checked, error, reps}.
template <class Work, class Visible>
nlohmann::json measure(const char* what, const Data& d, int64_t n, cudaStream_t stream,
                       double seconds, Work work, Visible visible) {
    TDM_CUDA_CHECK(cudaMemsetAsync(d.dout.data(), 0xFF, size_t(n * Hq * D) * 4, stream));
    const double first = time_events(stream, 0, 1, work)[0];
    const auto [err, unwritten] = check(d, n, visible);
    const bool checked = unwritten == 0 && err < 1e-2;
    if (!checked)
        std::printf("%s N=%lld: CHECK FAILED: %zu outputs unwritten, relative error %.2e\n", what,
                    (long long)n, unwritten, err);
    const int reps = std::clamp(int(seconds / first), 3, 20);
    const double sec = median(time_events(stream, 1, reps, work));
    return {{"ms", sec * 1e3}, {"checked", checked}, {"rel_err", err}, {"reps", reps}};
}

}  // namespace

int main(int argc, char** argv) {
    std::string json_path, lengths_arg = "8192,32768,131072", densities_arg = "0.1,0.3";
    int block = 128;
    double seconds = 6.0;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--json") json_path = next();
        else if (a == "--lengths") lengths_arg = next();
        else if (a == "--densities") densities_arg = next();
        else if (a == "--block") block = std::atoi(next().c_str());
        else if (a == "--seconds") seconds = std::atof(next().c_str());
        else {
            std::fprintf(stderr, "unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    try {
        tdm::cuda::require_supported_device(0);
        TDM_CUDA_CHECK(cudaSetDevice(0));
        cudaDeviceProp prop{};
        TDM_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        nlohmann::json out = {
            {"device", prop.name}, {"block", block}, {"lengths", nlohmann::json::object()}};
        auto save = [&] {
            if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
        };
        cudaStream_t stream;
        TDM_CUDA_CHECK(cudaStreamCreate(&stream));
        std::printf("device: %s; Hq=%d Hkv=%d D=%d, bf16 KV cache, block %d\n", prop.name, Hq, Hkv,
                    D, block);

        for (const auto& len : split(lengths_arg, ',')) {
            const int64_t n = std::atoll(len.c_str());
            Data d = make_data(n);
            tdm::cuda::AttentionArgs a;
            a.q = d.dq.as<float>();
            a.k_cache = d.dk.as<uint16_t>();
            a.v_cache = d.dv.as<uint16_t>();
            a.out = d.dout.as<float>();
            a.lse = d.dlse.as<float>();
            a.n_new = n;
            a.pos0 = 0;
            a.capacity = n;
            a.heads = Hq;
            a.kv_heads = Hkv;
            a.head_dim = D;
            a.scale = 1.0f / std::sqrt(float(D));
            nlohmann::json result;

            const double dense_flops = 4.0 * double(n) * double(n) * Hq * D / 2.0;
            result["dense"] = measure(
                "dense", d, n, stream, seconds,
                [&] { tdm::cuda::attention_prefill(a, stream); },
                [](int, int64_t, int64_t) { return true; });
            const double dense_ms = result["dense"]["ms"].get<double>();
            result["dense"]["tflops"] = dense_flops / (dense_ms * 1e-3) / 1e12;
            std::printf("N=%-7lld dense        %10.3f ms  %7.1f TFLOP/s%s\n", (long long)n,
                        dense_ms, result["dense"]["tflops"].get<double>(),
                        result["dense"]["checked"].get<bool>() ? "" : "  CHECK FAILED");
            std::fflush(stdout);

            for (const auto& dens : split(densities_arg, ',')) {
                const double target = std::atof(dens.c_str());
                const Plan plan = random_plan(n, block, target, 20261127u + uint32_t(n));
                DeviceBuffer rp(plan.row_ptr.size() * 4), cols(plan.cols.size() * 4);
                TDM_CUDA_CHECK(cudaMemcpy(rp.data(), plan.row_ptr.data(), plan.row_ptr.size() * 4,
                                          cudaMemcpyHostToDevice));
                TDM_CUDA_CHECK(cudaMemcpy(cols.data(), plan.cols.data(), plan.cols.size() * 4,
                                          cudaMemcpyHostToDevice));
                tdm::BlockPlanView view;
                view.heads = Hq;
                view.block_size = block;
                view.first_q_block = 0;
                view.q_blocks = plan.q_blocks;
                view.k_blocks = plan.q_blocks;
                view.row_ptr = rp.as<int32_t>();
                view.cols = cols.as<int32_t>();
                auto visible = [&](int h, int64_t row, int64_t j) {
                    const int64_t r = row / block;
                    const size_t at = size_t(h * plan.q_blocks + r);
                    const auto* b = plan.cols.data() + plan.row_ptr[at];
                    const auto* e = plan.cols.data() + plan.row_ptr[at + 1];
                    return std::binary_search(b, e, int32_t(j / block));
                };
                nlohmann::json r = measure(
                    "sparse", d, n, stream, seconds,
                    [&] { tdm::cuda::attention_prefill_block_sparse(a, view, stream); }, visible);
                const double ms = r["ms"].get<double>();
                const double eff =
                    4.0 * block * block * D * double(plan.active) / (ms * 1e-3) / 1e12;
                r["target_density"] = target;
                r["density"] = double(plan.active) / double(plan.causal);
                r["active_blocks"] = plan.active;
                r["effective_tflops"] = eff;
                r["speedup_vs_dense"] = result["dense"]["ms"].get<double>() / ms;
                std::printf("N=%-7lld sparse %3.0f%%  %10.3f ms  %7.1f TFLOP/s on active blocks "
                            "(density %.3f, %.2fx dense)%s\n",
                            (long long)n, target * 100, ms, eff, r["density"].get<double>(),
                            r["speedup_vs_dense"].get<double>(),
                            r["checked"].get<bool>() ? "" : "  CHECK FAILED");
                std::fflush(stdout);
                result["sparse"][dens] = r;
            }
            out["lengths"][std::to_string(n)] = result;
            save();
        }
        TDM_CUDA_CHECK(cudaStreamDestroy(stream));
        return 0;
    } catch (const tdm::Error& e) {
        std::fprintf(stderr, "tandem_sparse_bench: %s\n", e.what());
        return 1;
    }
}
