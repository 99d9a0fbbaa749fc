// The decode GEMV kernels at 1..16 input rows on the projections of a Llama-3.2-1B- and a
// Llama-3.1-8B-shaped layer and their vocabulary projection: what a multi-row pass (speculative
// verification, an R-Stitch or EAD catch-up) costs next to a one-row decode step.
//
//   tandem_cuda_gemv_bench [--rows 1,2,3,4,5,6,8,12,16] [--models 1b,8b] [--reps 10]
//
// Each projection runs as the CUDA backend runs it in a pass of M rows: q/k/v with the attention
// norm, RoPE and the KV append (gemv_qkv_rope); o += into the residual (gemv, accumulate); gate/up
// with the MLP norm and SwiGLU (gemv_gated); down += into the residual; the vocabulary projection
// with the final norm (gemv). Columns: the kernel gemv_kernel_for picks ("auto"), each GEMV kernel
// forced where it takes the shape (rows: 1..4 short rows; tiles: the tensor-core kernel), and the
// cuBLAS path Matmul takes with the GEMV disabled (rmsnorm and rounding passes, cuBLAS, bias,
// swiglu and rope_and_store kernels as the backend falls back to them).
// Timing: CUDA events around a CUDA graph of consecutive calls (no host launch cost; successive
// calls overlap as in a pass, programmatic dependent launch), median of --reps replays, divided by
// the calls. The calls rotate through copies of the weights of at least 2x L2 in all, so every
// call streams its weights from HBM as in a pass. GB/s = weight bytes / time, next to the
// device-to-device copy bandwidth (bytes read + written) the decode floor is computed with.
// Per model, "pass" sums a layer's four launches x layers + the vocabulary projection (auto
// kernel) and compares M rows with one; the second pass line takes the faster of the kernels per
// projection, what a per-shape rule in gemv_kernel_for could reach.
#if defined(TANDEM_HAVE_CUDA)

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "cuda_bench_support.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/matmul.h"

namespace {

using namespace tdm::bench;
using tdm::LayerInput;
using tdm::MatrixView;
using tdm::Projection;
using tdm::VectorView;
using tdm::cuda::GemvKernel;

constexpr int kMaxRows = tdm::cuda::kGemvMaxRows;

struct Shape {
    const char* name;
    int64_t hidden, inter, heads, kv_heads, head_dim, vocab, layers;
};
const Shape kShapes[] = {{"1b", 2048, 8192, 32, 8, 64, 128256, 16},
                         {"8b", 4096, 14336, 32, 8, 128, 128256, 32}};

// Device memory filled with random bf16 in [-1, 1]: a 16 MiB pattern repeated.
class Filler {
public:
    explicit Filler(cudaStream_t stream) : stream_(stream), pattern_(kPattern) {
        std::vector<float> f(kPattern / 2);
        fill_uniform(f, 7);
        std::vector<uint16_t> h(f.size());
        for (size_t i = 0; i < f.size(); ++i) h[i] = tdm::f32_to_bf16(f[i]);
        TDM_CUDA_CHECK(cudaMemcpy(pattern_.data(), h.data(), kPattern, cudaMemcpyHostToDevice));
    }
    DeviceBuffer operator()(size_t bytes) const {
        DeviceBuffer out(bytes);
        for (size_t at = 0; at < bytes; at += kPattern)
            TDM_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(out.data()) + at, pattern_.data(),
                                           std::min(kPattern, bytes - at),
                                           cudaMemcpyDeviceToDevice, stream_));
        return out;
    }

private:
    static constexpr size_t kPattern = size_t(16) << 20;
    cudaStream_t stream_;
    DeviceBuffer pattern_;
};

// Copies of one weight matrix [rows, cols], at least two and 2x L2 in all.
struct Weights {
    std::vector<DeviceBuffer> copies;
    int64_t rows, cols;
    Weights(int64_t r, int64_t c, size_t l2, const Filler& fill) : rows(r), cols(c) {
        const size_t bytes = size_t(r * c) * 2;
        const size_t n = std::max<size_t>(2, (2 * l2 + bytes - 1) / bytes);
        for (size_t i = 0; i < n; ++i) copies.push_back(fill(bytes));
    }
    MatrixView view(size_t i) const {
        return MatrixView{copies[i % copies.size()].data(), tdm::DType::BF16, rows, cols};
    }
};

// Seconds per call of enqueue(i) (call i of a run), captured as a graph of `calls` calls and
// replayed; eager launches between the events if the capture fails.
double time_calls(cudaStream_t stream, int calls, int reps, const std::function<void(int)>& enqueue,
                  bool* graphed) {
    for (int i = 0; i < calls; ++i) enqueue(i);  // warm up: first-launch setup happens here
    TDM_CUDA_CHECK(cudaStreamSynchronize(stream));
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    *graphed = false;
    if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
        bool ok = true;
        try {
            for (int i = 0; i < calls; ++i) enqueue(i);
        } catch (const tdm::Error&) {
            ok = false;
        }
        ok = cudaStreamEndCapture(stream, &graph) == cudaSuccess && ok &&
             cudaGraphInstantiateWithFlags(&exec, graph, 0) == cudaSuccess;
        *graphed = ok;
        (void)cudaGetLastError();  // a failed capture leaves its error behind
    }
    std::vector<double> t;
    if (*graphed) {
        t = time_events(stream, 2, reps, [&] { TDM_CUDA_CHECK(cudaGraphLaunch(exec, stream)); });
    } else {
        t = time_events(stream, 1, reps, [&] {
            for (int i = 0; i < calls; ++i) enqueue(i);
        });
    }
    if (exec) (void)cudaGraphExecDestroy(exec);
    if (graph) (void)cudaGraphDestroy(graph);
    return median(t) / calls;
}

// Activations and outputs for up to kMaxRows rows of one model, shared by its projections.
struct Buffers {
    DeviceBuffer x, norm, scratch, q, k, v, y, gate, up, act, k_cache, v_cache, inv_freq;
    int64_t capacity = 64;
    Buffers(const Shape& s, cudaStream_t stream) {
        const int64_t wide = std::max({s.inter, s.vocab, (s.heads + 2 * s.kv_heads) * s.head_dim});
        std::vector<float> h(size_t(kMaxRows * std::max(s.hidden, s.inter)));
        fill_uniform(h, 3);
        x = DeviceBuffer(h.size() * 4);
        TDM_CUDA_CHECK(cudaMemcpy(x.data(), h.data(), h.size() * 4, cudaMemcpyHostToDevice));
        std::vector<uint16_t> w(size_t(s.hidden));
        for (size_t i = 0; i < w.size(); ++i) w[i] = tdm::f32_to_bf16(1.0f + 0.5f * h[i]);
        norm = DeviceBuffer(w.size() * 2);
        TDM_CUDA_CHECK(cudaMemcpy(norm.data(), w.data(), w.size() * 2, cudaMemcpyHostToDevice));
        std::vector<float> freq(size_t(s.head_dim / 2));
        for (size_t i = 0; i < freq.size(); ++i)
            freq[i] = float(1.0 / std::pow(500000.0, 2.0 * double(i) / double(s.head_dim)));
        inv_freq = DeviceBuffer(freq.size() * 4);
        TDM_CUDA_CHECK(cudaMemcpy(inv_freq.data(), freq.data(), freq.size() * 4,
                                  cudaMemcpyHostToDevice));
        auto zeros = [&](size_t bytes) {
            DeviceBuffer b(bytes);
            TDM_CUDA_CHECK(cudaMemsetAsync(b.data(), 0, bytes, stream));
            return b;
        };
        scratch = zeros(size_t(kMaxRows * std::max(s.hidden, s.inter)) * 4);
        q = zeros(size_t(kMaxRows * s.heads * s.head_dim) * 4);
        k = zeros(size_t(kMaxRows * s.kv_heads * s.head_dim) * 4);
        v = zeros(size_t(kMaxRows * s.kv_heads * s.head_dim) * 4);
        y = zeros(size_t(kMaxRows * wide) * 4);
        gate = zeros(size_t(kMaxRows * s.inter) * 4);
        up = zeros(size_t(kMaxRows * s.inter) * 4);
        act = zeros(size_t(kMaxRows * s.inter) * 4);
        k_cache = zeros(size_t(s.kv_heads * capacity * s.head_dim) * 2);
        v_cache = zeros(size_t(s.kv_heads * capacity * s.head_dim) * 2);
    }
};

// One projection launch of the pass: its weights and how each path enqueues call i at M rows.
struct Launch {
    std::string name;
    int64_t K, N;
    std::vector<std::unique_ptr<Weights>> mats;  // q, k, v / o / gate, up / down / head
    bool norm;
    std::function<void(int64_t M, int i, GemvKernel)> gemv;
    std::function<void(int64_t M, int i)> cublas;
    size_t bytes() const {
        size_t b = 0;
        for (const auto& m : mats) b += size_t(m->rows * m->cols) * 2;
        return b;
    }
};

std::vector<Launch> launches(const Shape& s, Buffers& b, tdm::cuda::Matmul& gemm, size_t l2,
                             const Filler& fill, cudaStream_t stream) {
    using namespace tdm::cuda;
    const int64_t H = s.hidden, D = s.head_dim, qd = s.heads * D, kvd = s.kv_heads * D;
    auto in = [&b](int64_t M, int64_t K, bool norm) {
        return LayerInput{b.x.as<float>(), M, K,
                          norm ? VectorView{b.norm.data(), tdm::DType::BF16, K} : VectorView{},
                          1e-5f, b.scratch.as<float>()};
    };
    std::vector<Launch> out;
    {
        Launch p{"qkv+rope", H, qd + 2 * kvd, {}, true, {}, {}};
        p.mats.push_back(std::make_unique<Weights>(qd, H, l2, fill));
        p.mats.push_back(std::make_unique<Weights>(kvd, H, l2, fill));
        p.mats.push_back(std::make_unique<Weights>(kvd, H, l2, fill));
        const Weights *wq = p.mats[0].get(), *wk = p.mats[1].get(), *wv = p.mats[2].get();
        auto qkv = [=, &b](int i) {
            return std::vector<Projection>{{wq->view(size_t(i)), {}, b.q.as<float>(), qd},
                                           {wk->view(size_t(i)), {}, b.k.as<float>(), kvd},
                                           {wv->view(size_t(i)), {}, b.v.as<float>(), kvd}};
        };
        p.gemv = [=, &b](int64_t M, int i, GemvKernel kernel) {
            const auto o = qkv(i);
            const Projection three[3] = {o[0], o[1], o[2]};
            QkvRope rope;
            rope.inv_freq = b.inv_freq.as<float>();
            rope.k_cache = b.k_cache.as<uint16_t>();
            rope.v_cache = b.v_cache.as<uint16_t>();
            rope.capacity = b.capacity;
            rope.head_dim = int32_t(D);
            gemv_qkv_rope(in(M, H, true), three, rope, stream, kernel);
        };
        // The cuBLAS path as CudaBackend::attention_inputs falls back to it.
        p.cublas = [=, &b, &gemm](int64_t M, int i) {
            const auto o = qkv(i);
            gemm.matmul_many(in(M, H, true), o.data(), 3);
            RopeStore a;
            a.q = b.q.as<float>();
            a.heads = int32_t(s.heads);
            a.k = b.k.as<float>();
            a.v = b.v.as<float>();
            a.kv_heads = int32_t(s.kv_heads);
            a.k_cache = b.k_cache.as<uint16_t>();
            a.v_cache = b.v_cache.as<uint16_t>();
            a.capacity = b.capacity;
            a.rows = M;
            a.head_dim = int32_t(D);
            a.inv_freq = b.inv_freq.as<float>();
            rope_and_store(a, stream);
        };
        out.push_back(std::move(p));
    }
    auto accumulate = [&](const char* name, int64_t K) {
        Launch p{name, K, H, {}, false, {}, {}};
        p.mats.push_back(std::make_unique<Weights>(H, K, l2, fill));
        const Weights* w = p.mats[0].get();
        p.gemv = [=, &b](int64_t M, int i, GemvKernel kernel) {
            const Projection o{w->view(size_t(i)), {}, b.y.as<float>(), H};
            gemv(in(M, K, false), &o, 1, true, stream, kernel);
        };
        p.cublas = [=, &b, &gemm](int64_t M, int i) {
            gemm.matmul_accumulate(b.x.as<float>(), M, K, w->view(size_t(i)), {}, b.y.as<float>());
        };
        out.push_back(std::move(p));
    };
    accumulate("o (+= x)", qd);
    {
        Launch p{"gate/up+swiglu", H, 2 * s.inter, {}, true, {}, {}};
        p.mats.push_back(std::make_unique<Weights>(s.inter, H, l2, fill));
        p.mats.push_back(std::make_unique<Weights>(s.inter, H, l2, fill));
        const Weights *wg = p.mats[0].get(), *wu = p.mats[1].get();
        const int64_t n = s.inter;
        p.gemv = [=, &b](int64_t M, int i, GemvKernel kernel) {
            gemv_gated(in(M, H, true), wg->view(size_t(i)), {}, wu->view(size_t(i)), {},
                       b.act.as<float>(), n, stream, kernel);
        };
        p.cublas = [=, &b, &gemm](int64_t M, int i) {
            gemm.gated_up(in(M, H, true), wg->view(size_t(i)), {}, wu->view(size_t(i)), {},
                          b.gate.as<float>(), b.up.as<float>(), b.act.as<float>());
        };
        out.push_back(std::move(p));
    }
    accumulate("down (+= x)", s.inter);
    {
        Launch p{"vocab", H, s.vocab, {}, true, {}, {}};
        p.mats.push_back(std::make_unique<Weights>(s.vocab, H, l2, fill));
        const Weights* w = p.mats[0].get();
        const int64_t V = s.vocab;
        p.gemv = [=, &b](int64_t M, int i, GemvKernel kernel) {
            const Projection o{w->view(size_t(i)), {}, b.y.as<float>(), V};
            gemv(in(M, H, true), &o, 1, false, stream, kernel);
        };
        p.cublas = [=, &b, &gemm](int64_t M, int i) {
            const Projection o{w->view(size_t(i)), {}, b.y.as<float>(), V};
            gemm.matmul_many(in(M, H, true), &o, 1);
        };
        out.push_back(std::move(p));
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::string rows_arg = "1,2,3,4,5,6,8,12,16", models_arg = "1b,8b";
    int reps = 10;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) {
            std::fprintf(stderr, "%s needs a value\n", a.c_str());
            return 2;
        }
        const std::string value = argv[++i];
        if (a == "--rows") rows_arg = value;
        else if (a == "--models") models_arg = value;
        else if (a == "--reps") reps = std::atoi(value.c_str());
        else {
            std::fprintf(stderr, "unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    try {
        const tdm::cuda::DeviceInfo info = tdm::cuda::require_supported_device(0);
        int l2 = 0;
        TDM_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
        tdm::cuda::Stream stream;
        tdm::cuda::Matmul gemm(stream.get());
        gemm.set_gemv_enabled(false);  // its path is the cuBLAS column
        const double copy = copy_bandwidth(stream.get());
        std::printf("device: %s (%d SMs, L2 %d MiB); device-to-device copy %.0f GB/s\n",
                    info.name.c_str(), info.multiprocessors, l2 >> 20, copy / 1e9);
        std::vector<int64_t> rows;
        for (const auto& r : split(rows_arg, ',')) rows.push_back(std::atoll(r.c_str()));
        for (const Shape& s : kShapes) {
            if (models_arg.find(s.name) == std::string::npos) continue;
            Buffers buffers(s, stream.get());
            const Filler fill(stream.get());
            auto projs = launches(s, buffers, gemm, size_t(l2), fill, stream.get());
            std::printf("\n%s: hidden %lld, intermediate %lld, %lld layers, vocab %lld\n", s.name,
                        (long long)s.hidden, (long long)s.inter, (long long)s.layers,
                        (long long)s.vocab);
            std::printf("%-15s %6s %3s | %-22s | %-22s | %-22s | %-22s\n", "projection", "MB",
                        "M", "auto: us GB/s x copy", "rows: us GB/s", "tiles: us GB/s",
                        "cuBLAS: us GB/s");
            std::map<int64_t, double> pass;       // M -> seconds of a pass (auto)
            std::map<int64_t, double> best_pass;  // the faster kernel per projection
            for (const auto& p : projs) {
                const int calls = int(std::max<size_t>(8, p.mats[0]->copies.size()));
                for (const int64_t M : rows) {
                    if (M < 1 || M > kMaxRows) continue;
                    const double gb = double(p.bytes()) / 1e9;
                    auto cell = [&](double sec, bool graphed) {
                        char buf[64];
                        std::snprintf(buf, sizeof buf, "%7.1f %5.0f%s", sec * 1e6, gb / sec,
                                      graphed ? "" : " eager");
                        return std::string(buf);
                    };
                    bool graphed = false;
                    auto gemv_time = [&](GemvKernel k) {
                        return time_calls(stream.get(), calls, reps,
                                          [&](int i) { p.gemv(M, i, k); }, &graphed);
                    };
                    const double t_auto = gemv_time(GemvKernel::kAuto);
                    char auto_cell[64];
                    std::snprintf(auto_cell, sizeof auto_cell, "%s %4.2f",
                                  cell(t_auto, graphed).c_str(), gb * 1e9 / t_auto / copy);
                    // Every kernel that can take the shape, so the auto rule can be checked.
                    std::string rows_cell = "-";
                    double t_best = t_auto;
                    if (tdm::cuda::gemv_rows_kernel_fits(M, p.K)) {
                        const double t = gemv_time(GemvKernel::kRows);
                        rows_cell = cell(t, graphed);
                        t_best = std::min(t_best, t);
                    }
                    const double t_tiles = gemv_time(GemvKernel::kTiles);
                    t_best = std::min(t_best, t_tiles);
                    const std::string tiles_cell = cell(t_tiles, graphed);
                    const double t_cublas = time_calls(stream.get(), calls, reps,
                                                       [&](int i) { p.cublas(M, i); }, &graphed);
                    std::printf("%-15s %6.1f %3lld | %-22s | %-22s | %-22s | %-22s\n",
                                p.name.c_str(), gb * 1e3, (long long)M, auto_cell,
                                rows_cell.c_str(), tiles_cell.c_str(),
                                cell(t_cublas, graphed).c_str());
                    const double times = p.name == "vocab" ? 1.0 : double(s.layers);
                    pass[M] += t_auto * times;
                    best_pass[M] += t_best * times;
                }
            }
            std::printf("%s pass (GEMV launches only, auto kernel):", s.name);
            for (const auto& [M, sec] : pass)
                std::printf("  M=%lld %.0f us (%.2fx M=1)", (long long)M, sec * 1e6,
                            pass.count(1) ? sec / pass[1] : 0.0);
            std::printf("\n%s pass with the faster kernel per projection:", s.name);
            for (const auto& [M, sec] : best_pass)
                std::printf("  M=%lld %.0f us (%.2fx auto M=1)", (long long)M, sec * 1e6,
                            pass.count(1) ? sec / pass[1] : 0.0);
            std::printf("\n");
        }
    } catch (const tdm::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}

#else
int main() { return 0; }
#endif  // TANDEM_HAVE_CUDA
