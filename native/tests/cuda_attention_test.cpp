// The CUDA attention kernels (attention/cuda_*.cu) against the CPU reference attention
// (kernels/cpu/reference.h, double accumulation) on fresh random inputs: prefill at ragged row
// counts, head dims from 16 to 256, GQA groups from 1 to 40, sliding windows; decode at every
// split count from one chunk to more chunks than keys; the tensor-core prefill (head dims 64 and
// 128) at ragged row counts around its tiles, GQA groups 1 to 8, windows on and off. The
// log-sum-exp is checked against a double computation here.
//
// The KV cache is bf16 (as the CUDA backend keeps it): K and V are drawn, rounded to bf16, and the
// reference reads the rounded values, so the tolerances below measure the kernels alone.
// The GPU sees NaN at every cache position it must not read (past the last query's position, and
// before the first query's window), so an out-of-range read shows as NaN. Outputs are poisoned.
// Tolerance of the f32 SIMT kernels: f32 softmax and sums over a few thousand keys, exp2f within
// 2 ulp:
// max |gpu - ref| / rms(ref) <= 2e-5; |lse - ref| <= 2e-5 (1 + |ref|).
// The tensor-core prefill (head dims 64 and 128, bf16 operands) is checked by its own tests with
// a bf16 tolerance (see kFlashTol). GuardedOutput's outputs are not 16-byte aligned, so
// attention_prefill takes the f32 kernel in the tests that use it, at every head dim.
#include <gtest/gtest.h>

#if !defined(TANDEM_HAVE_CUDA)

TEST(CudaAttention, SkippedInABuildWithoutCuda) {
    GTEST_SKIP() << "this build has no CUDA backend (nvcc was not found): CUDA attention untested";
}

#else

#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>

#include "attention/cuda_attention.h"
#include "cuda_test_support.h"
#include "kernels/cpu/reference.h"
#include "kernels/cuda/kernels.h"

namespace tdm::cuda {
namespace {

using namespace testing;

constexpr double kTol = 2e-5;

struct Case {
    int64_t n_new, pos0;
    int32_t heads, kv_heads, D, window;
};

std::string describe(const Case& c) {
    return "n_new=" + std::to_string(c.n_new) + " pos0=" + std::to_string(c.pos0) + " heads=" +
           std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) + " D=" +
           std::to_string(c.D) + " window=" + std::to_string(c.window);
}

// log sum_j exp(scale q.k_j) over the keys query i of head h sees, in double.
std::vector<double> reference_lse(const std::vector<float>& q, const std::vector<float>& k,
                                  const Case& c, int64_t capacity, float scale) {
    const int64_t group = c.heads / c.kv_heads;
    std::vector<double> out(size_t(c.n_new * c.heads));
    for (int64_t i = 0; i < c.n_new; ++i) {
        const int64_t pos = c.pos0 + i;
        for (int64_t h = 0; h < c.heads; ++h) {
            std::vector<double> s;
            for (int64_t j = 0; j <= pos; ++j) {
                if (c.window > 0 && j <= pos - c.window) continue;
                double dot = 0;
                for (int64_t d = 0; d < c.D; ++d)
                    dot += double(q[size_t((i * c.heads + h) * c.D + d)]) *
                           k[size_t(((h / group) * capacity + j) * c.D + d)];
                s.push_back(dot * scale);
            }
            const double m = *std::max_element(s.begin(), s.end());
            double sum = 0;
            for (double x : s) sum += std::exp(x - m);
            out[size_t(i * c.heads + h)] = m + std::log(sum);
        }
    }
    return out;
}

// A bf16 NaN that no rounding produces: marks cache positions the GPU must not read.
constexpr uint16_t kPoison16 = 0x7fad;

std::vector<float> rounded_to_bf16(std::vector<float> v) {
    for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
    return v;
}

struct Inputs {
    int64_t capacity;
    std::vector<float> q, k, v;        // what the reference reads
    DeviceBuffer d_q, d_k, d_v;        // the GPU's copy, NaN where it must not read
    std::vector<float> ref_out;
    std::vector<double> ref_lse;
    float scale;
};

// `capacity` 0: a few positions past the last query.
Inputs make_inputs(const Case& c, std::mt19937& rng, int64_t capacity = 0) {
    Inputs in;
    in.capacity = capacity > 0 ? capacity : c.pos0 + c.n_new + 9;
    in.scale = 1.0f / std::sqrt(float(c.D));
    in.q = uniform(size_t(c.n_new * c.heads * c.D), rng, -2, 2);
    in.k = rounded_to_bf16(uniform(size_t(c.kv_heads * in.capacity * c.D), rng, -2, 2));
    in.v = rounded_to_bf16(uniform(in.k.size(), rng));
    in.ref_out.assign(in.q.size(), 0.0f);
    const cpu::AttentionShape shape{c.n_new, c.pos0, in.capacity, c.heads, c.kv_heads, c.D,
                                    c.window, in.scale};
    cpu::ref::attention(in.q.data(), in.k.data(), in.v.data(), shape, in.ref_out.data());
    in.ref_lse = reference_lse(in.q, in.k, c, in.capacity, in.scale);

    const int64_t first_visible = c.window > 0 ? std::max<int64_t>(0, c.pos0 - c.window + 1) : 0;
    std::vector<uint16_t> k_gpu = to_bf16(in.k), v_gpu = to_bf16(in.v);
    for (int64_t h = 0; h < c.kv_heads; ++h) {
        for (int64_t p = 0; p < in.capacity; ++p) {
            if (p >= first_visible && p < c.pos0 + c.n_new) continue;
            for (int64_t d = 0; d < c.D; ++d) {
                k_gpu[size_t((h * in.capacity + p) * c.D + d)] = kPoison16;
                v_gpu[size_t((h * in.capacity + p) * c.D + d)] = kPoison16;
            }
        }
    }
    in.d_q = upload(in.q);
    in.d_k = upload(k_gpu);
    in.d_v = upload(v_gpu);
    return in;
}

AttentionArgs args_for(const Case& c, const Inputs& in, float* out, float* lse) {
    return AttentionArgs{.q = in.d_q.as<float>(),
                         .k_cache = in.d_k.as<uint16_t>(),
                         .v_cache = in.d_v.as<uint16_t>(),
                         .out = out,
                         .lse = lse,
                         .n_new = c.n_new,
                         .pos0 = c.pos0,
                         .capacity = in.capacity,
                         .heads = c.heads,
                         .kv_heads = c.kv_heads,
                         .head_dim = c.D,
                         .window = c.window,
                         .scale = in.scale};
}

// Checks one result; `worst` keeps the largest output error seen (reported as a test property).
void expect_matches(const Inputs& in, const GuardedOutput& out, const GuardedOutput& lse,
                    double& worst) {
    ASSERT_TRUE(out.written_exactly());
    ASSERT_TRUE(lse.written_exactly());
    const double error = relative_error(out.logical(), in.ref_out);
    worst = std::max(worst, error);
    EXPECT_LE(error, kTol);
    const auto got = lse.logical();
    for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], in.ref_lse[i], kTol * (1.0 + std::fabs(in.ref_lse[i]))) << "row " << i;
}

TEST(CudaAttention, PrefillMatchesReference) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(21);
    const Case cases[] = {
        {1, 0, 1, 1, 16, 0},     {5, 0, 4, 2, 16, 0},     {37, 11, 8, 2, 64, 0},
        {70, 0, 4, 1, 128, 0},   {33, 40, 6, 3, 80, 0},   {20, 100, 2, 2, 256, 0},
        {64, 30, 4, 2, 32, 8},   {45, 17, 7, 1, 100, 33}, {3, 200, 8, 8, 200, 0},
        {130, 0, 2, 1, 48, 50},  {31, 0, 40, 1, 64, 0},   {9, 5, 3, 3, 1, 0},
        {300, 0, 4, 2, 64, 0},   {77, 500, 2, 1, 128, 64},
    };
    double worst = 0;
    for (const Case& c : cases) {
        SCOPED_TRACE(describe(c));
        const Inputs in = make_inputs(c, rng);
        GuardedOutput out(c.n_new, int64_t(c.heads) * c.D, int64_t(c.heads) * c.D);
        GuardedOutput lse(c.n_new, c.heads, c.heads);
        attention_prefill(args_for(c, in, out.data(), lse.data()), nullptr);
        expect_matches(in, out, lse, worst);
    }
    RecordProperty("worst_relative_error", sci(worst));
}

TEST(CudaAttention, DecodeMatchesReferenceAtEverySplitCount) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(22);
    const int multiprocessors = device_info(0).multiprocessors;
    const Case cases[] = {
        {1, 0, 4, 2, 16, 0},    {1, 1, 1, 1, 64, 0},      {1, 31, 8, 2, 128, 0},
        {1, 32, 4, 4, 96, 0},   {1, 33, 2, 1, 256, 0},    {1, 200, 32, 8, 64, 0},
        {1, 1500, 2, 1, 64, 0}, {1, 4000, 8, 2, 128, 100}, {1, 777, 40, 1, 80, 0},
        {1, 64, 6, 3, 200, 7},
        // the vectorised kernel (D 64/128, up to 8 query heads per KV head) at its group limit,
        // and past it (the tile kernel)
        {1, 300, 16, 2, 64, 0}, {1, 5000, 8, 1, 64, 0},  {1, 90, 16, 1, 128, 0},
    };
    double worst = 0;
    for (const Case& c : cases) {
        const Inputs in = make_inputs(c, rng);
        const AttentionArgs probe = args_for(c, in, nullptr, nullptr);
        // 1 .. kMaxClusterDecodeSplits: one cluster per KV head at head dims 64/128 (G <= 8);
        // more: the scratch merge.
        for (int splits : {1, 3, kMaxClusterDecodeSplits, kMaxClusterDecodeSplits + 1,
                           decode_splits(probe, multiprocessors), kMaxDecodeSplits}) {
            SCOPED_TRACE(describe(c) + " splits=" + std::to_string(splits));
            GuardedOutput out(1, int64_t(c.heads) * c.D, int64_t(c.heads) * c.D);
            GuardedOutput lse(1, c.heads, c.heads);
            DeviceBuffer scratch(size_t(decode_scratch_floats(probe, splits)) * sizeof(float));
            clear_decode_scratch(scratch.as<float>(), probe, splits, nullptr);
            attention_decode(args_for(c, in, out.data(), lse.data()), splits,
                             scratch.as<float>(), nullptr);
            expect_matches(in, out, lse, worst);
            // A recorded decode step reads its position from device memory; the host-side pos0
            // (the recording's) may be any position the cache holds. Same bits.
            const std::vector<int64_t> position{c.pos0};
            DeviceBuffer d_pos = upload(position);
            GuardedOutput out2(1, int64_t(c.heads) * c.D, int64_t(c.heads) * c.D);
            GuardedOutput lse2(1, c.heads, c.heads);
            AttentionArgs replay = args_for(c, in, out2.data(), lse2.data());
            replay.pos0 = in.capacity - 1;
            replay.pos_dev = d_pos.as<int64_t>();
            attention_decode(replay, splits, scratch.as<float>(), nullptr);
            EXPECT_EQ(out2.logical(), out.logical());
            EXPECT_EQ(lse2.logical(), lse.logical());
        }
    }
    RecordProperty("worst_relative_error", sci(worst));
}

// The engine's cache capacity for `keys` positions (KVCache::reserve doubles from 256), so that
// a split count sized for capacity - 1 (a recorded graph) is also exercised on a shorter prefix.
int64_t engine_capacity(int64_t keys) {
    return std::max<int64_t>(256, std::bit_ceil(uint64_t(keys)));
}

// One decode call on fresh poisoned outputs; `pos_dev` null: the position is c.pos0 (host),
// else it is read from device memory and the host pos0 is the recording's, capacity - 1.
struct DecodeRun {
    std::vector<float> out, lse;
};
DecodeRun run_decode(const Case& c, const Inputs& in, int splits, const int64_t* pos_dev,
                     double& worst) {
    GuardedOutput out(1, int64_t(c.heads) * c.D, int64_t(c.heads) * c.D);
    GuardedOutput lse(1, c.heads, c.heads);
    AttentionArgs a = args_for(c, in, out.data(), lse.data());
    if (pos_dev != nullptr) {
        a.pos0 = in.capacity - 1;
        a.pos_dev = pos_dev;
    }
    DeviceBuffer scratch(size_t(decode_scratch_floats(a, splits)) * sizeof(float));
    clear_decode_scratch(scratch.as<float>(), a, splits, nullptr);
    attention_decode(a, splits, scratch.as<float>(), nullptr);
    expect_matches(in, out, lse, worst);
    return {out.logical(), lse.logical()};
}

// Ragged lengths around the cluster kernel's rounds and batches (1, 2, 63..65, 511, 767, 1000),
// past its range (4097, 33000: the scratch merge), at D 64 and 128, 1, 4 and 8 query heads per
// KV head, the whole prefix and a sliding window; each with the split count decode_splits picks
// for the position (host pos), the one a recorded graph uses (sized for capacity - 1, position
// from device memory; the same bits as a host-pos call with that split count), and the other
// path (the scratch merge where the cluster runs and the other way round).
TEST(CudaAttention, DecodeAtRaggedLengthsMatchesReference) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(26);
    const int multiprocessors = device_info(0).multiprocessors;
    std::vector<Case> cases;
    for (int64_t keys : {1, 2, 63, 64, 65, 511, 767, 1000, 4097, 33000})
        for (int32_t D : {64, 128})
            for (int32_t group : {1, 4, 8})
                for (int32_t window : {0, 333})
                    cases.push_back({1, keys - 1, 2 * group, 2, D, window});
    // The Llama-3.2-1B and Llama-3.1-8B decode shapes (32 query heads, 8 KV heads).
    cases.push_back({1, 766, 32, 8, 64, 0});
    cases.push_back({1, 999, 32, 8, 128, 0});
    cases.push_back({1, 4096, 32, 8, 128, 0});
    double worst = 0;
    for (const Case& c : cases) {
        const Inputs in = make_inputs(c, rng, engine_capacity(c.pos0 + 1));
        const AttentionArgs probe = args_for(c, in, nullptr, nullptr);
        AttentionArgs longest = probe;
        longest.pos0 = in.capacity - 1;
        const int host_splits = decode_splits(probe, multiprocessors);
        const int graph_splits = decode_splits(longest, multiprocessors);
        const int other_splits = host_splits <= kMaxClusterDecodeSplits
                                     ? 2 * kMaxClusterDecodeSplits
                                     : kMaxClusterDecodeSplits;
        const DeviceBuffer d_pos = upload(std::vector<int64_t>{c.pos0});
        const std::string what = describe(c) + " capacity=" + std::to_string(in.capacity);
        {
            SCOPED_TRACE(what + " host pos, splits=" + std::to_string(host_splits));
            run_decode(c, in, host_splits, nullptr, worst);
        }
        {
            SCOPED_TRACE(what + " other path, splits=" + std::to_string(other_splits));
            run_decode(c, in, other_splits, nullptr, worst);
        }
        SCOPED_TRACE(what + " graph splits=" + std::to_string(graph_splits));
        const DecodeRun host = run_decode(c, in, graph_splits, nullptr, worst);
        const DecodeRun device = run_decode(c, in, graph_splits, d_pos.as<int64_t>(), worst);
        EXPECT_EQ(device.out, host.out);
        EXPECT_EQ(device.lse, host.lse);
    }
    RecordProperty("worst_relative_error", sci(worst));
}

// In a decode step, the kernel launched right before attention (overlapped, overlap.cuh) writes
// q (RoPE in place) and the newest key and value (position pos); attention may read the older
// cache rows before that kernel has finished, but must read those after. Here the predecessor is
// rope_and_store, made long by kDummyHeads extra query heads ahead of the real ones, so the real
// q heads and then the K/V row are written late in its run, while attention is already resident;
// the row at pos holds NaN until the predecessor writes it. A read too early shows as NaN or as
// a mismatch against the reference computed from the q the predecessor left behind.
TEST(CudaAttention, DecodeReadsWhatTheKernelBeforeItWrote) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(27);
    const int multiprocessors = device_info(0).multiprocessors;
    constexpr int64_t kDummyHeads = 32768;
    const Case cases[] = {
        {1, 0, 8, 2, 64, 0},     {1, 63, 8, 2, 128, 0},    {1, 766, 32, 8, 64, 0},
        {1, 999, 32, 8, 128, 300}, {1, 2047, 8, 1, 64, 0}, {1, 4096, 16, 2, 64, 0},
        {1, 5000, 32, 8, 128, 0},
    };
    Stream stream;
    double worst = 0;
    for (const Case& c : cases) {
        Inputs in = make_inputs(c, rng, engine_capacity(c.pos0 + 1));
        // The predecessor's inputs: the newest key and value rows [1, kv_heads, D] (bf16 values:
        // stored exactly) and RoPE frequencies.
        std::vector<float> k_new(size_t(c.kv_heads) * c.D), v_new(k_new.size());
        for (int64_t h = 0; h < c.kv_heads; ++h)
            for (int64_t d = 0; d < c.D; ++d) {
                const size_t at = size_t((h * in.capacity + c.pos0) * c.D + d);
                k_new[size_t(h * c.D + d)] = in.k[at];
                v_new[size_t(h * c.D + d)] = in.v[at];
            }
        std::vector<float> inv_freq(size_t(c.D / 2));
        for (size_t i = 0; i < inv_freq.size(); ++i)
            inv_freq[i] = float(std::pow(10000.0, -2.0 * double(i) / c.D));
        const DeviceBuffer d_knew = upload(k_new), d_vnew = upload(v_new),
                           d_freq = upload(inv_freq);
        const DeviceBuffer d_pos = upload(std::vector<int64_t>{c.pos0});
        DeviceBuffer q_all =
            upload(std::vector<float>(size_t((kDummyHeads + c.heads) * c.D), 0.5f));
        float* q = q_all.as<float>() + kDummyHeads * c.D;
        const std::vector<uint16_t> poison_row(size_t(c.D), kPoison16);

        AttentionArgs probe = args_for(c, in, nullptr, nullptr);
        probe.q = q;
        const int splits = decode_splits(probe, multiprocessors);
        // A too-early read loses the race only some of the time: several trials each.
        for (int trial = 0; trial < 6; ++trial) {
            const bool device_pos = trial % 2 == 1;
            SCOPED_TRACE(describe(c) + " splits=" + std::to_string(splits) +
                         (device_pos ? " pos from device" : " pos from host") + " trial " +
                         std::to_string(trial));
            TDM_CUDA_CHECK(cudaMemcpyAsync(q, in.q.data(), in.q.size() * sizeof(float),
                                           cudaMemcpyHostToDevice, stream.get()));
            for (int64_t h = 0; h < c.kv_heads; ++h) {
                const size_t at = size_t((h * in.capacity + c.pos0) * c.D);
                for (const DeviceBuffer* cache : {&in.d_k, &in.d_v})
                    TDM_CUDA_CHECK(cudaMemcpyAsync(cache->as<uint16_t>() + at, poison_row.data(),
                                                   poison_row.size() * sizeof(uint16_t),
                                                   cudaMemcpyHostToDevice, stream.get()));
            }
            RopeStore r;
            r.q = q_all.as<float>();
            r.heads = int32_t(kDummyHeads) + c.heads;
            r.k = d_knew.as<float>();
            r.v = d_vnew.as<float>();
            r.kv_heads = c.kv_heads;
            r.rotate_k = false;
            r.k_cache = in.d_k.as<uint16_t>();
            r.v_cache = in.d_v.as<uint16_t>();
            r.capacity = in.capacity;
            r.rows = 1;
            r.pos0 = c.pos0;
            r.pos_dev = device_pos ? d_pos.as<int64_t>() : nullptr;
            r.head_dim = c.D;
            r.inv_freq = d_freq.as<float>();

            GuardedOutput out(1, int64_t(c.heads) * c.D, int64_t(c.heads) * c.D);
            GuardedOutput lse(1, c.heads, c.heads);
            AttentionArgs a = args_for(c, in, out.data(), lse.data());
            a.q = q;
            if (device_pos) {
                a.pos0 = in.capacity - 1;
                a.pos_dev = d_pos.as<int64_t>();
            }
            DeviceBuffer scratch(size_t(decode_scratch_floats(a, splits)) * sizeof(float));
            clear_decode_scratch(scratch.as<float>(), a, splits, stream.get());
            // The helpers upload on the legacy stream, which `stream` does not wait for.
            TDM_CUDA_CHECK(cudaDeviceSynchronize());
            rope_and_store(r, stream.get());
            attention_decode(a, splits, scratch.as<float>(), stream.get());
            stream.synchronize();

            // The reference from the rotated q.
            const std::vector<float> q_rot = download<float>(q, in.q.size());
            if (c.pos0 > 0) {  // (at position 0 RoPE is the identity)
                ASSERT_NE(q_rot, in.q) << "the predecessor did not rotate q";
            }
            in.ref_out.assign(q_rot.size(), 0.0f);
            const cpu::AttentionShape shape{c.n_new, c.pos0, in.capacity, c.heads, c.kv_heads,
                                            c.D, c.window, in.scale};
            cpu::ref::attention(q_rot.data(), in.k.data(), in.v.data(), shape,
                                in.ref_out.data());
            in.ref_lse = reference_lse(q_rot, in.k, c, in.capacity, in.scale);
            expect_matches(in, out, lse, worst);
        }
    }
    RecordProperty("worst_relative_error", sci(worst));
}

TEST(CudaAttention, PrefillWithoutLseAndDecodeSplitChoice) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(23);
    const Case c{24, 8, 4, 2, 64, 0};
    const Inputs in = make_inputs(c, rng);
    GuardedOutput out(c.n_new, int64_t(c.heads) * c.D, int64_t(c.heads) * c.D);
    attention_prefill(args_for(c, in, out.data(), nullptr), nullptr);  // lse is optional
    ASSERT_TRUE(out.written_exactly());
    EXPECT_LE(relative_error(out.logical(), in.ref_out), kTol);

    // Short caches are not split; long ones are, within the limits.
    AttentionArgs a{.q = in.d_q.as<float>(), .k_cache = in.d_k.as<uint16_t>(),
                    .v_cache = in.d_v.as<uint16_t>(), .out = out.data(), .lse = nullptr,
                    .n_new = 1, .pos0 = 10, .capacity = 200000, .heads = 32, .kv_heads = 8,
                    .head_dim = 128, .window = 0, .scale = 0.1f};
    EXPECT_EQ(decode_splits(a, 132), 1);
    // A 1024-key cache: one cluster of the most blocks per KV head; fewer where the SMs cannot
    // hold them all at once.
    a.pos0 = 1023;
    EXPECT_EQ(decode_splits(a, 132), kMaxClusterDecodeSplits);
    EXPECT_EQ(decode_splits(a, 32), 4);
    a.pos0 = 100000;
    const int s = decode_splits(a, 132);
    EXPECT_GT(s, kMaxClusterDecodeSplits);  // the scratch merge
    EXPECT_LE(s, kMaxDecodeSplits);
    a.window = 1000;  // only the window counts
    EXPECT_EQ(decode_splits(a, 132), kMaxClusterDecodeSplits);
}

TEST(CudaAttention, BadShapesAreRefusedBeforeLaunch) {
    TDM_SKIP_WITHOUT_GPU();
    std::vector<float> one(1, 0.0f);
    DeviceBuffer b = upload(one);
    AttentionArgs a{.q = b.as<float>(), .k_cache = b.as<uint16_t>(), .v_cache = b.as<uint16_t>(),
                    .out = b.as<float>(), .lse = nullptr, .n_new = 1, .pos0 = 0, .capacity = 4,
                    .heads = 4, .kv_heads = 2, .head_dim = 300, .window = 0, .scale = 1.0f};
    try {
        attention_prefill(a, nullptr);
        FAIL() << "head_dim 300 accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TDM_ERR_UNSUPPORTED);
        EXPECT_NE(std::string(e.what()).find("head_dim 300"), std::string::npos) << e.what();
    }
    a.head_dim = 64;
    a.heads = 3;  // not a multiple of 2 KV heads
    EXPECT_THROW(attention_prefill(a, nullptr), Error);
    a.heads = 4;
    a.pos0 = 4;  // past the capacity
    EXPECT_THROW(attention_prefill(a, nullptr), Error);
    a.pos0 = 0;
    a.n_new = 2;  // decode takes one row
    std::vector<float> scratch_host(1024, 0.0f);
    DeviceBuffer scratch = upload(scratch_host);
    EXPECT_THROW(attention_decode(a, 1, scratch.as<float>(), nullptr), Error);
}

// The tensor-core prefill rounds the pre-scaled Q and the probabilities P to bf16 (8
// significant bits: each operand off by up to 2^-9 ~ 2e-3 relative, randomly signed) and
// accumulates in f32. With |q|, |k| <= 2 and scale 1/sqrt(D), a score moves by a few 1e-3 and
// so does each probability, relatively; every such error is carried by a term p_j v_j of the
// row's output, so a row's error scales with the row itself: its norm-wise relative error stays
// near 2^-9-ish (measured ~3e-3). Hence norm-wise bounds, per row and overall, not max |err| over
// rms(ref): a long-context row averages many V rows and is ~1/sqrt(keys) smaller than a
// short-context row, whose absolute bf16 error alone then reaches 2-4e-2 of the overall rms.
// An indexing or masking bug gives errors of order 1.
constexpr double kFlashTol = 1e-2;     // ||out - ref|| / ||ref|| over the whole output
constexpr double kFlashRowTol = 3e-2;  // the same per (query, head) row
constexpr double kFlashLseTol = 1e-2;  // |lse - ref| / (1 + |ref|)

struct NormErrors {
    double overall = 0, worst_row = 0;
};

NormErrors norm_errors(const std::vector<float>& got, const std::vector<float>& ref,
                       int64_t row_len) {
    NormErrors e;
    double num = 0, den = 0;
    for (size_t r0 = 0; r0 < ref.size(); r0 += size_t(row_len)) {
        double rn = 0, rd = 0;
        for (size_t i = r0; i < r0 + size_t(row_len); ++i) {
            if (!std::isfinite(got[i])) return {INFINITY, INFINITY};
            const double d = double(got[i]) - ref[i];
            rn += d * d;
            rd += double(ref[i]) * ref[i];
        }
        num += rn;
        den += rd;
        e.worst_row = std::max(e.worst_row, std::sqrt(rn / std::max(rd, 1e-30)));
    }
    e.overall = std::sqrt(num / std::max(den, 1e-30));
    return e;
}

// An f32 output of `n` floats, 16-byte aligned as the tensor-core kernel needs (GuardedOutput's
// is not), poisoned, with kAlignedGuard floats of poison on either side.
class AlignedGuardedOutput {
public:
    static constexpr int64_t kAlignedGuard = 64;
    explicit AlignedGuardedOutput(int64_t n)
        : n_(n), buffer_(upload(std::vector<float>(size_t(n + 2 * kAlignedGuard), poison()))) {}
    float* data() const { return buffer_.as<float>() + kAlignedGuard; }
    ::testing::AssertionResult written_exactly() const {
        const auto all = download<float>(buffer_.data(), size_t(n_ + 2 * kAlignedGuard));
        for (size_t i = 0; i < all.size(); ++i) {
            const bool inside = int64_t(i) >= kAlignedGuard && int64_t(i) < kAlignedGuard + n_;
            if (inside && !std::isfinite(all[i]))
                return ::testing::AssertionFailure()
                       << "element " << i - kAlignedGuard << " not written: " << all[i];
            if (!inside && !is_poison(all[i]))
                return ::testing::AssertionFailure() << "guard float " << i << " overwritten";
        }
        return ::testing::AssertionSuccess();
    }
    std::vector<float> values() const {
        return download<float>(buffer_.as<float>() + kAlignedGuard, size_t(n_));
    }

private:
    int64_t n_;
    DeviceBuffer buffer_;
};

TEST(CudaAttention, FlashPrefillMatchesReference) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(24);
    // Ragged row counts around the 128-row query tile and the 64-key (D = 64) and 32-key
    // (D = 128) tiles, pos0 > 0 (aligned and not), GQA groups 1, 2, 4 and 8, windows narrower
    // than a tile, spanning several tiles, and off.
    const Case cases[] = {
        {1, 0, 4, 1, 64, 0},       {37, 11, 8, 2, 64, 0},     {70, 0, 4, 1, 128, 0},
        {130, 5, 8, 1, 128, 0},    {200, 77, 4, 4, 64, 0},    {65, 0, 2, 2, 128, 0},
        {300, 0, 8, 1, 64, 50},    {77, 500, 4, 1, 128, 64},  {129, 300, 8, 8, 128, 100},
        {150, 0, 16, 2, 128, 0},   {63, 1000, 8, 8, 64, 0},   {100, 20, 4, 4, 64, 7},
        {700, 900, 4, 1, 128, 0},  {513, 0, 8, 1, 64, 200},   {128, 128, 4, 2, 128, 0},
        {255, 0, 2, 1, 128, 31},   {1000, 3000, 4, 2, 128, 0}, {383, 64, 4, 1, 64, 0},
        {1200, 37, 4, 1, 128, 0},  {900, 200, 8, 2, 64, 0},  {256, 0, 2, 2, 64, 0},
    };
    // Both tensor-core loops: mma.sync everywhere, the Hopper wgmma loop where it applies (no
    // window); attention_prefill's automatic choice must give the chosen loop's bits.
    struct Worst {
        double overall = 0, row = 0, lse = 0;
        int cases = 0;
    } worst[2];
    const char* names[2] = {"mma.sync", "wgmma"};
    for (const Case& c : cases) {
        SCOPED_TRACE(describe(c));
        const Inputs in = make_inputs(c, rng);
        std::vector<float> auto_expected;
        for (const FlashLoop loop : {FlashLoop::kMmaSync, FlashLoop::kWgmma}) {
            const int w = loop == FlashLoop::kWgmma ? 1 : 0;
            SCOPED_TRACE(names[w]);
            AlignedGuardedOutput out(c.n_new * c.heads * c.D), lse(c.n_new * c.heads);
            const AttentionArgs a = args_for(c, in, out.data(), lse.data());
            ASSERT_TRUE(flash_prefill_supports(a));
            if (loop == FlashLoop::kWgmma && !wgmma_prefill_supports(a)) {
                ASSERT_GT(c.window, 0) << "only windowed layers are outside the wgmma loop here";
                EXPECT_THROW(attention_prefill_flash(a, nullptr, loop), Error);
                continue;
            }
            attention_prefill_flash(a, nullptr, loop);
            ASSERT_TRUE(out.written_exactly());
            ASSERT_TRUE(lse.written_exactly());
            const NormErrors error = norm_errors(out.values(), in.ref_out, c.D);
            worst[w].overall = std::max(worst[w].overall, error.overall);
            worst[w].row = std::max(worst[w].row, error.worst_row);
            ++worst[w].cases;
            EXPECT_LE(error.overall, kFlashTol);
            EXPECT_LE(error.worst_row, kFlashRowTol);
            const auto got = lse.values();
            for (size_t i = 0; i < got.size(); ++i) {
                const double e =
                    std::fabs(got[i] - in.ref_lse[i]) / (1.0 + std::fabs(in.ref_lse[i]));
                worst[w].lse = std::max(worst[w].lse, e);
                ASSERT_LE(e, kFlashLseTol) << "row " << i << ": " << got[i] << " vs "
                                           << in.ref_lse[i];
            }
            auto_expected = out.values();  // the wgmma result where it applies, else mma.sync's
        }

        // attention_prefill dispatches here: the same inputs give the same bits (no lse too).
        AlignedGuardedOutput again(c.n_new * c.heads * c.D);
        attention_prefill(args_for(c, in, again.data(), nullptr), nullptr);
        ASSERT_TRUE(again.written_exactly());
        EXPECT_EQ(again.values(), auto_expected);
    }
    for (int w = 0; w < 2; ++w) {
        RecordProperty(std::string(names[w]) + "_worst_relative_error", sci(worst[w].overall));
        RecordProperty(std::string(names[w]) + "_worst_row_relative_error", sci(worst[w].row));
        RecordProperty(std::string(names[w]) + "_worst_lse_error", sci(worst[w].lse));
        std::printf("flash prefill (%s, %d cases) vs reference: ||err||/||ref|| %.2e, worst row "
                    "%.2e, lse %.2e\n",
                    names[w], worst[w].cases, worst[w].overall, worst[w].row, worst[w].lse);
    }
    EXPECT_GE(worst[1].cases, 10);
}

TEST(CudaAttention, FlashPrefillRefusesWhatItCannotRun) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(25);
    const Case c{10, 0, 4, 2, 80, 0};
    const Inputs in = make_inputs(c, rng);
    AlignedGuardedOutput out(c.n_new * c.heads * c.D);
    AttentionArgs a = args_for(c, in, out.data(), nullptr);
    EXPECT_FALSE(flash_prefill_supports(a));
    try {
        attention_prefill_flash(a, nullptr);
        FAIL() << "head_dim 80 accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TDM_ERR_UNSUPPORTED);
    }
    a.head_dim = 64;  // supported, but an output that is not 16-byte aligned is not
    a.out = out.data() + 1;
    EXPECT_FALSE(flash_prefill_supports(a));
    EXPECT_THROW(attention_prefill_flash(a, nullptr), Error);
}

}  // namespace
}  // namespace tdm::cuda

#endif  // TANDEM_HAVE_CUDA
