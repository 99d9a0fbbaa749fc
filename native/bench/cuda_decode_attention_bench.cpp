// Decode attention latency through the engine's entry point (cuda::attention_decode, set up as
// CudaBackend::attention sets it up in a decode step) at the Llama-3.2-1B (Hq 32, Hkv 8, D 64)
// and Llama-3.1-8B (Hq 32, Hkv 8, D 128) shapes, 512 .. 131072 keys:
//
//   tandem_decode_attention_bench [--lengths 512,768,1024,4096,32768,131072] [--reps 200]
//                                 [--graph-reps 100] [--warm]
//
// A call: position pos = keys - 1 read from device memory, the cache sized as the engine's KV
// cache grows (doubling from 256 positions: 768 keys sit in a 1024-position cache), the split
// count decode_splits gives for the capacity (what a recorded step uses), one scratch buffer.
// Timed with CUDA events:
//   eager - one launch between two events, median of --reps launches;
//   graph - 16 calls, one per layer (16 caches, q and outputs, as in a 16-layer step), captured
//           in a CUDA graph and replayed: median of --graph-reps replays / 16. No launch gaps,
//           and consecutive calls overlap as in a step (programmatic dependent launch).
// Before each timed launch or replay L2 is flushed - by a decode call over a separate cache of 4x
// its size, so that L2 holds clean lines as after a GEMV's weights (a memset would leave dirty
// lines whose write-back the timed call would pay for): in a real step the weights streamed
// between two attention calls have evicted the KV cache. --warm leaves L2 as it is.
// bytes = K and V rows read + q read + out written; floor = bytes / device-to-device copy
// bandwidth (bytes read + written, as tandem_cuda_bench's decode floor); x floor = graph time /
// floor. The "old path" columns time the scratch-merge kernel (decode_vec_kernel) with the split
// count it had before the cluster kernel (at least kMaxClusterDecodeSplits + 1) where the
// cluster kernel runs now, for a before/after in the same run; "diff" is max |new - old| /
// rms(old) over the outputs of one call (a sanity check: f32 rounding only, ~1e-6).
#if defined(TANDEM_HAVE_CUDA)

#include <cuda_runtime_api.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "attention/cuda_attention.h"
#include "core/dtype.h"
#include "core/error.h"
#include "cuda_bench_support.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"

namespace {

using namespace tdm::bench;
using tdm::cuda::AttentionArgs;
using tdm::cuda::Stream;

constexpr int kHeads = 32, kKvHeads = 8;
constexpr int kLayers = 16;  // calls per captured graph

struct Options {
    std::vector<int64_t> lengths{512, 768, 1024, 4096, 32768, 131072};
    int reps = 200, graph_reps = 100;
    bool warm = false;
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--warm") {
            o.warm = true;
        } else if (a == "--lengths" && has_value) {
            o.lengths.clear();
            for (const std::string& s : split(argv[++i], ',')) o.lengths.push_back(std::stoll(s));
        } else if (a == "--reps" && has_value) {
            o.reps = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--graph-reps" && has_value) {
            o.graph_reps = std::max(1, std::atoi(argv[++i]));
        } else {
            std::fprintf(stderr,
                         "usage: %s [--lengths 512,768,...] [--reps N] [--graph-reps N] [--warm]\n",
                         argv[0]);
            std::exit(2);
        }
    }
    for (int64_t n : o.lengths) {
        if (n < 1 || n > (int64_t(1) << 30)) {
            std::fprintf(stderr, "bad length %lld\n", static_cast<long long>(n));
            std::exit(2);
        }
    }
    return o;
}

// `bytes` of device memory filled with copies of `pattern`.
DeviceBuffer filled(size_t bytes, const DeviceBuffer& pattern, cudaStream_t stream) {
    DeviceBuffer b(bytes);
    for (size_t at = 0; at < bytes; at += pattern.bytes()) {
        TDM_CUDA_CHECK(cudaMemcpyAsync(b.as<char>() + at, pattern.data(),
                                       std::min(pattern.bytes(), bytes - at),
                                       cudaMemcpyDeviceToDevice, stream));
    }
    return b;
}

// One layer's q, caches and output.
struct Layer {
    DeviceBuffer q, k, v, out;
};

struct Timing {
    double eager_us = 0, graph_us = 0;
};

class Bench {
public:
    Bench(const Options& o, cudaStream_t stream, int multiprocessors) : o_(o), stream_(stream) {
        // The flush: D 128, 8 KV heads (4 KB of K and V a position), >= 4x L2.
        int l2 = 0;
        TDM_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
        constexpr int D = 128;
        const int64_t capacity = std::max<int64_t>(
            4096, std::bit_ceil(uint64_t(4) * uint64_t(std::max(l2, 1)) / (kKvHeads * D * 4)));
        const size_t cache_bytes = size_t(kKvHeads) * size_t(capacity) * D * 2;
        flush_k_ = DeviceBuffer(cache_bytes);
        flush_v_ = DeviceBuffer(cache_bytes);
        flush_q_ = DeviceBuffer(size_t(kHeads) * D * 4);
        flush_out_ = DeviceBuffer(size_t(kHeads) * D * 4);
        barrier_ = DeviceBuffer(16);
        TDM_CUDA_CHECK(cudaMemset(flush_k_.data(), 0x3c, cache_bytes));  // bf16 ~0.0115
        TDM_CUDA_CHECK(cudaMemset(flush_v_.data(), 0x3c, cache_bytes));
        TDM_CUDA_CHECK(cudaMemset(flush_q_.data(), 0, flush_q_.bytes()));
        flush_args_.q = flush_q_.as<float>();
        flush_args_.k_cache = flush_k_.as<uint16_t>();
        flush_args_.v_cache = flush_v_.as<uint16_t>();
        flush_args_.out = flush_out_.as<float>();
        flush_args_.n_new = 1;
        flush_args_.pos0 = capacity - 1;
        flush_args_.capacity = capacity;
        flush_args_.heads = kHeads;
        flush_args_.kv_heads = kKvHeads;
        flush_args_.head_dim = D;
        flush_splits_ = tdm::cuda::decode_splits(flush_args_, multiprocessors);
        flush_scratch_ = DeviceBuffer(
            size_t(tdm::cuda::decode_scratch_floats(flush_args_, flush_splits_)) * 4);
        tdm::cuda::clear_decode_scratch(flush_scratch_.as<float>(), flush_args_, flush_splits_,
                                        stream_);
        TDM_CUDA_CHECK(cudaDeviceSynchronize());  // the memsets ran on the legacy stream
    }

    // Times `splits` chunks on the layers' calls at position pos (from device memory).
    Timing time(std::vector<AttentionArgs> calls, int splits) {
        DeviceBuffer scratch(size_t(tdm::cuda::decode_scratch_floats(calls[0], splits)) * 4);
        tdm::cuda::clear_decode_scratch(scratch.as<float>(), calls[0], splits, stream_);
        const auto call = [&](int layer) {
            tdm::cuda::attention_decode(calls[size_t(layer) % calls.size()], splits,
                                        scratch.as<float>(), stream_);
        };
        Timing t;
        for (int i = 0; i < 3; ++i) call(i);  // warm-up
        std::vector<double> eager;
        for (int i = 0; i < o_.reps; ++i) {
            flush();
            eager.push_back(timed([&] { call(i); }));
        }
        t.eager_us = median(eager) * 1e6;

        cudaGraph_t graph = nullptr;
        TDM_CUDA_CHECK(cudaStreamSynchronize(stream_));
        TDM_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
        for (int layer = 0; layer < kLayers; ++layer) call(layer);
        TDM_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
        cudaGraphExec_t exec = nullptr;
        TDM_CUDA_CHECK(cudaGraphInstantiateWithFlags(&exec, graph, 0));
        TDM_CUDA_CHECK(cudaGraphLaunch(exec, stream_));  // warm-up
        std::vector<double> replays;
        for (int i = 0; i < o_.graph_reps; ++i) {
            flush();
            replays.push_back(timed([&] { TDM_CUDA_CHECK(cudaGraphLaunch(exec, stream_)); }));
        }
        TDM_CUDA_CHECK(cudaGraphExecDestroy(exec));
        TDM_CUDA_CHECK(cudaGraphDestroy(graph));
        t.graph_us = median(replays) / kLayers * 1e6;
        return t;
    }

    // One call's output (layer 0) with `splits` chunks.
    std::vector<float> output(const AttentionArgs& a, int splits) {
        DeviceBuffer scratch(size_t(tdm::cuda::decode_scratch_floats(a, splits)) * 4);
        tdm::cuda::clear_decode_scratch(scratch.as<float>(), a, splits, stream_);
        TDM_CUDA_CHECK(cudaMemsetAsync(a.out, 0xff, size_t(a.heads) * a.head_dim * 4, stream_));
        tdm::cuda::attention_decode(a, splits, scratch.as<float>(), stream_);
        std::vector<float> host(size_t(a.heads) * a.head_dim);
        TDM_CUDA_CHECK(cudaMemcpyAsync(host.data(), a.out, host.size() * 4,
                                       cudaMemcpyDeviceToHost, stream_));
        TDM_CUDA_CHECK(cudaStreamSynchronize(stream_));
        return host;
    }

private:
    void flush() {
        if (o_.warm) return;
        tdm::cuda::attention_decode(flush_args_, flush_splits_, flush_scratch_.as<float>(),
                                    stream_);
        // A memset in between: the timed kernel may not start early (overlapped) on the flush.
        TDM_CUDA_CHECK(cudaMemsetAsync(barrier_.data(), 0, barrier_.bytes(), stream_));
    }

    // Seconds between two events around what `work` enqueues.
    template <class F>
    double timed(F&& work) {
        cudaEvent_t start, stop;
        TDM_CUDA_CHECK(cudaEventCreate(&start));
        TDM_CUDA_CHECK(cudaEventCreate(&stop));
        TDM_CUDA_CHECK(cudaEventRecord(start, stream_));
        work();
        TDM_CUDA_CHECK(cudaEventRecord(stop, stream_));
        TDM_CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0;
        TDM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        TDM_CUDA_CHECK(cudaEventDestroy(start));
        TDM_CUDA_CHECK(cudaEventDestroy(stop));
        return double(ms) * 1e-3;
    }

    const Options& o_;
    cudaStream_t stream_;
    DeviceBuffer flush_k_, flush_v_, flush_q_, flush_out_, flush_scratch_, barrier_;
    AttentionArgs flush_args_{};
    int flush_splits_ = 1;
};

// The split count decode_splits gave before the cluster kernel (two blocks per SM, >= 64 keys a
// chunk), raised past kMaxClusterDecodeSplits so that it runs the scratch-merge kernel.
int old_path_splits(int64_t keys, int multiprocessors) {
    const int64_t wanted = (2 * int64_t(multiprocessors) + kKvHeads - 1) / kKvHeads;
    const int64_t old = std::clamp<int64_t>(std::min<int64_t>(wanted, keys / 64), 1,
                                            tdm::cuda::kMaxDecodeSplits);
    return int(std::max<int64_t>(old, tdm::cuda::kMaxClusterDecodeSplits + 1));
}

double relative_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0, sq = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
        worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
        sq += double(b[i]) * b[i];
    }
    const double rms = std::sqrt(sq / double(std::max<size_t>(1, b.size())));
    return rms > 0 ? worst / rms : worst;
}

int run(const Options& o) {
    tdm::cuda::require_supported_device(0);
    const tdm::cuda::DeviceInfo info = tdm::cuda::device_info(0);
    Stream stream;
    const double bandwidth = copy_bandwidth(stream.get());
    std::printf("%s, %d SMs; device-to-device copy %.0f GB/s (read + written); L2 %s; "
                "Hq %d, Hkv %d; %d calls per graph\n",
                info.name.c_str(), info.multiprocessors, bandwidth / 1e9,
                o.warm ? "warm" : "flushed before each timing", kHeads, kKvHeads, kLayers);
    std::printf("%4s %7s %7s %6s %9s %9s %9s %8s %8s %7s | %10s %9s %9s | %8s\n", "D", "keys",
                "cache", "splits", "MB", "eager us", "graph us", "GB/s", "floor us", "x floor",
                "old splits", "eager us", "graph us", "diff");

    // A random pattern every buffer is tiled with (the values do not change the timing).
    std::vector<float> pattern_f(size_t(1) << 22);
    fill_uniform(pattern_f, 7);
    std::vector<uint16_t> pattern_bf16(pattern_f.size());
    for (size_t i = 0; i < pattern_f.size(); ++i) pattern_bf16[i] = tdm::f32_to_bf16(pattern_f[i]);
    DeviceBuffer pattern32(pattern_f.size() * 4), pattern16(pattern_bf16.size() * 2);
    TDM_CUDA_CHECK(cudaMemcpy(pattern32.data(), pattern_f.data(), pattern32.bytes(),
                              cudaMemcpyHostToDevice));
    TDM_CUDA_CHECK(cudaMemcpy(pattern16.data(), pattern_bf16.data(), pattern16.bytes(),
                              cudaMemcpyHostToDevice));
    TDM_CUDA_CHECK(cudaDeviceSynchronize());  // `stream` does not wait for the legacy stream

    Bench bench(o, stream.get(), info.multiprocessors);
    for (int D : {64, 128}) {
        for (int64_t keys : o.lengths) {
            const int64_t capacity = std::max<int64_t>(256, std::bit_ceil(uint64_t(keys)));
            const size_t cache_bytes = size_t(kKvHeads) * size_t(capacity) * size_t(D) * 2;
            // Distinct layers while they fit in 4 GiB; past that a layer's cache dwarfs L2.
            const int layers = int(std::clamp<size_t>((size_t(4) << 30) / (2 * cache_bytes), 1,
                                                      size_t(kLayers)));
            std::vector<Layer> storage(static_cast<size_t>(layers));
            const std::vector<int64_t> position{keys - 1};
            DeviceBuffer pos(sizeof(int64_t));
            TDM_CUDA_CHECK(cudaMemcpy(pos.data(), position.data(), sizeof(int64_t),
                                      cudaMemcpyHostToDevice));
            std::vector<AttentionArgs> calls;
            for (Layer& l : storage) {
                l.q = filled(size_t(kHeads) * D * 4, pattern32, stream.get());
                l.k = filled(cache_bytes, pattern16, stream.get());
                l.v = filled(cache_bytes, pattern16, stream.get());
                l.out = DeviceBuffer(size_t(kHeads) * D * 4);
                AttentionArgs a;
                a.q = l.q.as<float>();
                a.k_cache = l.k.as<uint16_t>();
                a.v_cache = l.v.as<uint16_t>();
                a.out = l.out.as<float>();
                a.lse = nullptr;  // as the engine's decode
                a.n_new = 1;
                a.pos0 = capacity - 1;  // a recorded step's host position: the longest
                a.capacity = capacity;
                a.heads = kHeads;
                a.kv_heads = kKvHeads;
                a.head_dim = D;
                a.scale = 1.0f / std::sqrt(float(D));
                a.pos_dev = pos.as<int64_t>();
                calls.push_back(a);
            }
            TDM_CUDA_CHECK(cudaDeviceSynchronize());  // the fills and the position are in place

            const int splits = tdm::cuda::decode_splits(calls[0], info.multiprocessors);
            const Timing t = bench.time(calls, splits);
            const double bytes = double(keys) * kKvHeads * D * 2 * 2 + 2.0 * kHeads * D * 4;
            const double floor_us = bytes / bandwidth * 1e6;
            std::printf("%4d %7lld %7lld %6d %9.3f %9.2f %9.2f %8.0f %8.2f %7.2f |", D,
                        static_cast<long long>(keys), static_cast<long long>(capacity), splits,
                        bytes / 1e6, t.eager_us, t.graph_us, bytes / (t.graph_us * 1e-6) / 1e9,
                        floor_us, t.graph_us / floor_us);
            if (splits <= tdm::cuda::kMaxClusterDecodeSplits) {
                const int old_splits = old_path_splits(capacity, info.multiprocessors);
                const Timing old = bench.time(calls, old_splits);
                const double diff = relative_diff(bench.output(calls[0], splits),
                                                  bench.output(calls[0], old_splits));
                std::printf(" %10d %9.2f %9.2f | %8.1e\n", old_splits, old.eager_us,
                            old.graph_us, diff);
            } else {
                std::printf(" %10s %9s %9s | %8s\n", "(same)", "", "", "");
            }
            std::fflush(stdout);
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(parse(argc, argv));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tandem_decode_attention_bench: %s\n", e.what());
        return 1;
    }
}

#endif  // TANDEM_HAVE_CUDA
