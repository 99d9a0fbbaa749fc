// End-to-end CPU benchmark: prefill and decode speed of a 125M-parameter Llama (the shape of
// ../shared/bench/cpu-llamacpp) in f32, f16 and bf16, next to the memory-bandwidth floor.
//
//   tandem_model_bench [--threads 2] [--prompt 512] [--gen 128] [--reps 3] [--dir DIR]
//                      [--bandwidth GB/s] [--model HF_FOLDER ...]
//
// Without --model it writes random weights (fixed seed) under --dir (default build/bench-models)
// once and times them; with --model it times the given folders (e.g. the HF folders the llama.cpp
// harness writes, for a head-to-head on identical weights). The floor uses the read bandwidth it
// measures itself, or --bandwidth (e.g. the membw probe of that harness, for one common floor).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/kernels.h"
#include "model/model.h"
#include "model/session.h"
#include "random_model_writer.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// Read bandwidth (bytes/s): sum a 1 GiB buffer with the benchmark's thread count, best of 5.
double measure_read_bandwidth(int threads) {
    const size_t n = (size_t(1) << 30) / sizeof(uint64_t);
    std::vector<uint64_t> buf(n);
    tdm::ThreadPool pool(threads);
    pool.parallel_for(0, int64_t(n), 1 << 16, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) buf[size_t(i)] = uint64_t(i) * 2654435761u;
    });
    double best = 1e30;
    std::vector<uint64_t> partial(size_t(pool.size()));
    for (int rep = 0; rep < 5; ++rep) {
        auto t = Clock::now();
        pool.run_on_all([&](int tid) {
            size_t lo = n * size_t(tid) / size_t(pool.size());
            size_t hi = n * size_t(tid + 1) / size_t(pool.size());
            uint64_t s = 0;
            for (size_t i = lo; i < hi; ++i) s += buf[i];
            partial[size_t(tid)] = s;
        });
        best = std::min(best, seconds_since(t));
    }
    volatile uint64_t sink = 0;
    for (auto p : partial) sink = sink + p;
    return double(n * sizeof(uint64_t)) / best;
}

// Bytes one decode step must read: every matrix and norm, one embedding row, and the KV cache at
// the average position of the decode run.
double decode_bytes(const tdm::Model& m, int64_t avg_position) {
    const auto& c = m.config();
    const auto& w = m.weights();
    auto mat = [](const tdm::MatrixView& v) { return double(v.rows * v.cols) * tdm::dtype_size(v.dtype); };
    auto vec = [](const tdm::VectorView& v) { return double(v.size) * tdm::dtype_size(v.dtype); };
    double bytes = double(w.embed.cols) * tdm::dtype_size(w.embed.dtype);
    for (const auto& L : w.layers) {
        bytes += vec(L.attn_norm) + vec(L.mlp_norm) + mat(L.wq) + mat(L.wk) + mat(L.wv) +
                 mat(L.wo) + mat(L.w_gate) + mat(L.w_up) + mat(L.w_down);
    }
    bytes += vec(w.final_norm) + mat(w.lm_head);
    bytes += double(c.num_hidden_layers) * 2.0 * double(c.kv_dim()) * double(avg_position) * 4.0;
    return bytes;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

struct Result {
    double prefill_tps, decode_tps;
};

Result time_model(const std::shared_ptr<const tdm::Model>& model, int threads, int prompt, int gen,
                  int reps) {
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> tok(3, int32_t(model->config().vocab_size) - 1);
    std::vector<int32_t> ids(static_cast<size_t>(prompt));
    for (auto& t : ids) t = tok(rng);
    std::vector<double> prefill_s, decode_s;
    for (int r = 0; r < reps; ++r) {
        tdm::SessionConfig sc;
        sc.threads = threads;
        sc.kv_capacity = prompt + gen;
        tdm::Session s(model, sc);
        auto t = Clock::now();
        s.prefill(ids.data(), prompt, false);
        prefill_s.push_back(seconds_since(t));
        const int64_t V = s.vocab();
        t = Clock::now();
        for (int i = 0; i < gen; ++i) {
            const float* z = s.logits(0);
            int32_t next = int32_t(std::max_element(z, z + V) - z);
            s.decode(next);
        }
        decode_s.push_back(seconds_since(t));
    }
    return {prompt / median(prefill_s), gen / median(decode_s)};
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 2, prompt = 512, gen = 128, reps = 3;
    double bandwidth_gbs = 0;
    std::string dir = "build/bench-models";
    std::vector<std::string> models;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", a.c_str()); std::exit(2); }
            return argv[++i];
        };
        if (a == "--threads") threads = std::atoi(next().c_str());
        else if (a == "--prompt") prompt = std::atoi(next().c_str());
        else if (a == "--gen") gen = std::atoi(next().c_str());
        else if (a == "--reps") reps = std::atoi(next().c_str());
        else if (a == "--dir") dir = next();
        else if (a == "--bandwidth") bandwidth_gbs = std::atof(next().c_str());
        else if (a == "--model") models.push_back(next());
        else { std::fprintf(stderr, "unknown argument %s\n", a.c_str()); return 2; }
    }
    try {
        if (models.empty()) {
            const tdm::bench::LlamaShape shape;
            for (auto [dt, name] : {std::pair{tdm::DType::F32, "f32"}, {tdm::DType::F16, "f16"},
                                    {tdm::DType::BF16, "bf16"}}) {
                std::string folder = dir + "/rand-llama-125m-" + name;
                std::printf("writing/reusing %s\n", folder.c_str());
                tdm::bench::write_random_llama(folder, shape, dt, 20261127);
                models.push_back(folder);
            }
        }
        const double measured = measure_read_bandwidth(threads);
        const double bw = bandwidth_gbs > 0 ? bandwidth_gbs * 1e9 : measured;
        std::printf("\nCPU kernels: %s; threads: %d; read bandwidth measured here (best of 5): "
                    "%.1f GB/s; floor computed with %.1f GB/s\n",
                    tdm::cpu::cpu_features(), threads, measured / 1e9, bw / 1e9);
        std::printf("prompt %d tokens, then %d decoded tokens (greedy), median of %d runs\n\n", prompt,
                    gen, reps);
        std::printf("| model | weights | prefill tok/s | decode tok/s | decode floor tok/s | fraction of floor |\n");
        std::printf("|---|---|---:|---:|---:|---:|\n");
        for (const auto& folder : models) {
            tdm::LoadOptions lo;
            lo.threads = threads;
            auto model = tdm::Model::load(folder, lo);
            Result r = time_model(model, threads, prompt, gen, reps);
            double floor_tps = bw / decode_bytes(*model, prompt + gen / 2);
            std::printf("| %s | %s | %.0f | %.1f | %.0f | %.2f |\n",
                        folder.substr(folder.find_last_of('/') + 1).c_str(),
                        tdm::dtype_name(model->dtype()), r.prefill_tps, r.decode_tps, floor_tps,
                        r.decode_tps / floor_tps);
            std::fflush(stdout);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tandem_model_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
