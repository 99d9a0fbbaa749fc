// The logits summary on the GPU in two launches:
//   1. kBlocks-wide: each block takes a contiguous slice of the row and finds its `want` best
//      keys (the first is its argmax), then, relative to that local max, the softmax partial sums
//      in double;
//   2. one block: merges the per-block candidate lists into the row's ranked top list and
//      rescales the partial sums to the global max (in double, like the CPU twin).
// The best keys: for a few (greedy decoding, the statistics' K = 2) one block-wide minimum per
// rank; for more (sampling asks for 64) a bitonic sort in shared memory of chunks of the keys
// behind the best list so far, which costs a few sorts instead of 64 reductions in each kernel.
// Ranking uses the sampler's 64-bit rank key (logit descending, then id ascending; -0.0 equals
// +0.0), so "the smallest key" is "the best token" in both orders the CPU uses.
#include "uncertainty/cuda_logit_summary.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <string>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch_checks.h"

namespace tdm::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 64;
constexpr int kPerBlock = 2048;  // row elements per block before another block is worth it
constexpr uint64_t kNoKey = ~uint64_t{0};  // above every real key (that one would be a NaN)
// Above this many ranks the best keys come from sorting (best_by_sorting), below from minima.
constexpr int kMinimaMaxRanks = 4;
constexpr int kSortKeys = 2048;  // keys one bitonic sort holds (16 KB of shared memory)

struct BlockPartial {
    double rest, tilt, tempered;  // relative to this block's max, its own argmax left out of rest
    long long candidates;
    long long invalid;            // lowest bad index in the block, LLONG_MAX if none
};

__device__ __forceinline__ uint64_t rank_key(float z, uint32_t id) {
    z += 0.0f;  // -0.0 and +0.0 tie: the lower id must win
    const uint32_t bits = __float_as_uint(z);
    const uint32_t ascending = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    return (uint64_t(~ascending) << 32) | id;
}

__device__ __forceinline__ bool is_invalid(float z) { return !(z < __int_as_float(0x7f800000)); }

// Block-wide reductions over kThreads threads through `scratch` (kThreads / 32 entries); every
// thread gets the result.
template <class T, class Op>
__device__ T block_reduce(T v, T* scratch, Op op) {
    for (int offset = 16; offset > 0; offset /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();  // scratch may still be read by a previous reduction
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = scratch[0];
    for (int w = 1; w < kThreads / 32; ++w) v = op(v, scratch[w]);
    return v;
}

struct MinOp {
    template <class T>
    __device__ T operator()(T a, T b) const { return a < b ? a : b; }
};
struct SumOp {
    template <class T>
    __device__ T operator()(T a, T b) const { return a + b; }
};

// The smallest key above `after` among logits[begin, end) (kNoKey if none). NaN and +inf never
// rank: the caller reports them.
__device__ uint64_t next_key(const float* logits, int64_t begin, int64_t end, uint64_t after,
                             uint64_t* scratch) {
    uint64_t best = kNoKey;
    for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
        const float z = logits[i];
        if (is_invalid(z)) continue;
        const uint64_t key = rank_key(z, uint32_t(i));
        if (key > after && key < best) best = key;
    }
    return block_reduce(best, scratch, MinOp{});
}

// Sorts s[0..n) ascending, n a power of two <= kSortKeys. Whole block.
__device__ void bitonic_sort(uint64_t* s, int n) {
    for (int k = 2; k <= n; k <<= 1) {
        for (int j = k >> 1; j > 0; j >>= 1) {
            for (int i = threadIdx.x; i < n; i += kThreads) {
                const int l = i ^ j;
                if (l <= i) continue;
                const uint64_t a = s[i], b = s[l];
                if ((a > b) == ((i & k) == 0)) {
                    s[i] = b;
                    s[l] = a;
                }
            }
            __syncthreads();
        }
    }
}

// The `want` smallest of the n keys key_at(0..n) into best[0..want) (ascending, kNoKey past the
// real ones), through `sorted` (kSortKeys entries of shared memory): each chunk of keys is sorted
// behind the best list so far. want <= TDM_MAX_TOP_K. Whole block; key_at may return kNoKey.
template <class KeyAt>
__device__ void best_by_sorting(KeyAt key_at, int64_t n, int want, uint64_t* sorted,
                                uint64_t* best) {
    for (int r = threadIdx.x; r < want; r += kThreads) sorted[r] = kNoKey;
    const int64_t per_chunk = kSortKeys - want;
    for (int64_t c0 = 0; c0 < n || c0 == 0; c0 += per_chunk) {
        const int len = int(min(per_chunk, n - c0));
        int size = 1;
        while (size < want + len) size <<= 1;
        __syncthreads();
        for (int i = want + threadIdx.x; i < size; i += kThreads)
            sorted[i] = i - want < len ? key_at(c0 + i - want) : kNoKey;
        __syncthreads();
        bitonic_sort(sorted, size);
        if (n == 0) break;
    }
    for (int r = threadIdx.x; r < want; r += kThreads) best[r] = sorted[r];
    __syncthreads();
}

__global__ void __launch_bounds__(kThreads)
summarize_blocks(const float* logits, int64_t vocab, int64_t slice, int want, float temperature,
                 BlockPartial* partials, uint64_t* keys) {
    __shared__ uint64_t key_scratch[kThreads / 32];
    __shared__ double sum_scratch[kThreads / 32];
    __shared__ long long count_scratch[kThreads / 32];
    const int64_t begin = min(vocab, int64_t(blockIdx.x) * slice);
    const int64_t end = min(vocab, begin + slice);

    // The ranked candidates of this slice; the first is its argmax.
    uint64_t top = kNoKey;
    uint64_t* mine = keys + int64_t(blockIdx.x) * want;
    if (want > kMinimaMaxRanks) {
        __shared__ uint64_t sorted[kSortKeys];
        const auto key_at = [logits, begin](int64_t i) {
            const float z = logits[begin + i];
            return is_invalid(z) ? kNoKey : rank_key(z, uint32_t(begin + i));
        };
        best_by_sorting(key_at, end - begin, want, sorted, mine);
        top = sorted[0];
    } else {
        // Key 0 would be a NaN, so "above 0" excludes nothing real for the first rank.
        uint64_t key = 0;
        for (int r = 0; r < want; ++r) {
            key = next_key(logits, begin, end, key, key_scratch);  // block-uniform
            if (r == 0) top = key;
            if (threadIdx.x == 0) mine[r] = key;
            if (key == kNoKey) {  // the slice ran out: the remaining ranks are empty
                for (int q = r + 1 + int(threadIdx.x); q < want; q += kThreads) mine[q] = kNoKey;
                break;
            }
        }
    }
    const int64_t argmax = top == kNoKey ? -1 : int64_t(uint32_t(top));
    const float m = argmax < 0 ? -__int_as_float(0x7f800000) : logits[argmax];

    double rest = 0, tilt = 0, tempered = 0;
    long long candidates = 0, invalid = LLONG_MAX;
    const bool finite_max = m > -__int_as_float(0x7f800000);
    for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
        const float z = logits[i];
        if (is_invalid(z)) {
            invalid = min(invalid, (long long)i);
            continue;
        }
        if (!finite_max || z == -__int_as_float(0x7f800000)) continue;
        ++candidates;
        const double d = double(z) - double(m);
        if (temperature > 0.0f) tempered += exp(d / double(temperature));
        if (i == argmax) continue;
        const double e = exp(d);
        rest += e;
        tilt += e * d;
    }
    rest = block_reduce(rest, sum_scratch, SumOp{});
    tilt = block_reduce(tilt, sum_scratch, SumOp{});
    tempered = block_reduce(tempered, sum_scratch, SumOp{});
    candidates = block_reduce(candidates, count_scratch, SumOp{});
    invalid = block_reduce(invalid, count_scratch, MinOp{});
    if (threadIdx.x == 0) partials[blockIdx.x] = {rest, tilt, tempered, candidates, invalid};
}

__global__ void __launch_bounds__(kThreads)
merge_blocks(const float* logits, int blocks, int want, float temperature,
             const BlockPartial* partials, const uint64_t* keys, LogitSummary* out) {
    __shared__ uint64_t key_scratch[kThreads / 32];
    __shared__ uint64_t ranked[TDM_MAX_TOP_K];
    const int total = blocks * want;
    int count = 0;
    if (want > kMinimaMaxRanks) {
        __shared__ uint64_t sorted[kSortKeys];
        best_by_sorting([keys](int64_t i) { return keys[i]; }, total, want, sorted, ranked);
        while (count < want && ranked[count] != kNoKey) ++count;
    } else {
        uint64_t key = 0;
        for (int r = 0; r < want; ++r) {
            uint64_t best = kNoKey;
            for (int i = threadIdx.x; i < total; i += kThreads) {
                const uint64_t k = keys[i];
                if ((r == 0 || k > key) && k < best) best = k;
            }
            key = block_reduce(best, key_scratch, MinOp{});
            if (key == kNoKey) break;
            if (threadIdx.x == 0) ranked[r] = key;
            count = r + 1;
        }
    }
    __syncthreads();

    // The global max is the first ranked logit; every block's sums move to it (in double). One
    // thread per block's partial (the loads are independent), then fixed-order reductions.
    __shared__ double sum_scratch[kThreads / 32];
    __shared__ long long count_scratch[kThreads / 32];
    const int64_t argmax = count > 0 ? int64_t(uint32_t(ranked[0])) : -1;
    const double m = count > 0 ? double(logits[argmax]) : 0.0;
    double rest = 0, tilt = 0, tempered = 0;
    long long candidates = 0, invalid = LLONG_MAX;
    for (int b = threadIdx.x; b < blocks; b += kThreads) {
        const BlockPartial& p = partials[b];
        candidates += p.candidates;
        invalid = min(invalid, p.invalid);
        const uint64_t top = keys[int64_t(b) * want];
        if (top == kNoKey || count == 0) continue;
        const float zb = logits[uint32_t(top)];
        if (!(zb > -__int_as_float(0x7f800000))) continue;  // all -inf here
        const double delta = double(zb) - m;  // <= 0
        const double f = exp(delta);
        rest += f * p.rest;
        tilt += f * (p.tilt + delta * p.rest);
        if (int64_t(uint32_t(top)) != argmax) {  // the block's own max is one more term
            rest += f;
            tilt += f * delta;
        }
        if (temperature > 0.0f) tempered += p.tempered * exp(delta / double(temperature));
    }
    rest = block_reduce(rest, sum_scratch, SumOp{});
    tilt = block_reduce(tilt, sum_scratch, SumOp{});
    tempered = block_reduce(tempered, sum_scratch, SumOp{});
    candidates = block_reduce(candidates, count_scratch, SumOp{});
    invalid = block_reduce(invalid, count_scratch, MinOp{});
    if (threadIdx.x != 0) return;

    out->count = count;
    for (int r = 0; r < TDM_MAX_TOP_K; ++r) {
        const bool filled = r < count;
        const uint32_t id = filled ? uint32_t(ranked[r]) : 0u;
        out->ids[r] = filled ? int32_t(id) : -1;
        out->logits[r] = filled ? logits[id] : 0.0f;
    }
    out->candidates = candidates;
    out->invalid_index = invalid == LLONG_MAX ? -1 : invalid;
    out->rest = rest;
    out->tilt = tilt;
    out->tempered = tempered;
}

}  // namespace

LogitSummarizer::LogitSummarizer() {
    void* p = nullptr;
    TDM_CUDA_CHECK(cudaMallocHost(&p, sizeof(LogitSummary)));
    staging_ = static_cast<LogitSummary*>(p);
}

LogitSummarizer::~LogitSummarizer() {
    if (staging_ != nullptr) (void)cudaFreeHost(staging_);
}

void LogitSummarizer::run(const float* logits, int64_t vocab, int want, float temperature,
                          cudaStream_t stream, LogitSummary* out) {
    TDM_REQUIRE(logits != nullptr && out != nullptr, TDM_ERR_INVALID_ARGUMENT,
                "logit summary: logits or out is NULL");
    require_int32(vocab, "logit summary", "vocab");
    TDM_REQUIRE(vocab >= 1, TDM_ERR_INVALID_ARGUMENT, "logit summary: vocab must be >= 1");
    TDM_REQUIRE(want >= 1 && want <= TDM_MAX_TOP_K, TDM_ERR_INVALID_ARGUMENT,
                "logit summary: want must be in [1, " + std::to_string(TDM_MAX_TOP_K) + "], got " +
                    std::to_string(want));
    TDM_REQUIRE(temperature >= 0.0f, TDM_ERR_INVALID_ARGUMENT,
                "logit summary: temperature must be >= 0");
    want = int(std::min<int64_t>(want, vocab));
    const int blocks = int(std::clamp<int64_t>((vocab + kPerBlock - 1) / kPerBlock, 1, kMaxBlocks));
    const int64_t slice = (vocab + blocks - 1) / blocks;
    partials_.reserve(size_t(blocks) * sizeof(BlockPartial) +
                      size_t(blocks) * size_t(want) * sizeof(uint64_t));
    result_.reserve(sizeof(LogitSummary));
    auto* partials = partials_.as<BlockPartial>();
    auto* keys = reinterpret_cast<uint64_t*>(partials + blocks);
    summarize_blocks<<<blocks, kThreads, 0, stream>>>(logits, vocab, slice, want, temperature,
                                                       partials, keys);
    TDM_CUDA_CHECK_LAUNCH("summarize_blocks");
    merge_blocks<<<1, kThreads, 0, stream>>>(logits, blocks, want, temperature, partials, keys,
                                             result_.as<LogitSummary>());
    TDM_CUDA_CHECK_LAUNCH("merge_blocks");
    TDM_CUDA_CHECK(cudaMemcpyAsync(staging_, result_.data(), sizeof(LogitSummary),
                                   cudaMemcpyDeviceToHost, stream));
    TDM_CUDA_CHECK(cudaStreamSynchronize(stream));
    *out = *staging_;
}

}  // namespace tdm::cuda
