// The fixture models on the CUDA device, against Hugging Face transformers' golden logits and the
// CPU engine: whole prompts, greedy continuations, the cache invariants (prefill-then-decode,
// truncate-then-redo), a long prompt prefilled whole and then decoded with split attention, and the
// weight upload itself.
//
// Weights become bf16 on the GPU (and the matrix products round activations to bf16), so every
// fixture, f32 ones included, is held to the bf16 tolerances of model_golden_test.cpp:
// log-probabilities within 2e-2 of transformers'; between two passes of this engine over the same
// tokens (prefill vs decode, batches of other sizes) logits within 5e-3 (1 + |logit|).
#include <gtest/gtest.h>

#if !defined(TANDEM_HAVE_CUDA)

TEST(CudaModel, SkippedInABuildWithoutCuda) {
    GTEST_SKIP() << "this build has no CUDA backend (nvcc was not found): CUDA models untested";
}

#else

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "cuda_test_support.h"
#include "fixtures.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/session.h"

namespace tdm {
namespace {

using tdm::testing::fixture_dir;
using tdm::testing::read_json;

constexpr double kLogProbTol = 2e-2;
constexpr float kSelfTol = 5e-3f;

std::shared_ptr<const Model> load_on(const std::string& name, tdm_device device) {
    LoadOptions options;
    options.device = device;
    options.threads = 2;
    return Model::load(fixture_dir(name), options);
}

std::vector<int32_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

// Largest |log_softmax(a) - log_softmax(b)| over `rows` rows of V logits.
double logprob_gap(const float* a, const float* b, int64_t rows, int64_t V) {
    double worst = 0;
    for (int64_t r = 0; r < rows; ++r) {
        const auto la = tdm::testing::log_softmax(a + r * V, size_t(V));
        const auto lb = tdm::testing::log_softmax(b + r * V, size_t(V));
        for (int64_t i = 0; i < V; ++i) {
            if (!std::isfinite(la[size_t(i)])) return INFINITY;
            worst = std::max(worst, std::fabs(la[size_t(i)] - lb[size_t(i)]));
        }
    }
    return worst;
}

class CudaGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaGoldenTest, PromptLogitsMatchTransformersAndTheCpuEngine) {
    TDM_SKIP_WITHOUT_GPU();
    const std::string name = GetParam();
    auto gpu = load_on(name, TDM_DEVICE_CUDA);
    auto cpu = load_on(name, TDM_DEVICE_CPU);
    ASSERT_EQ(gpu->device(), TDM_DEVICE_CUDA);
    const auto golden = read_json(fixture_dir(name) + "/golden.json");
    const auto logits = SafetensorsFile::open(fixture_dir(name) + "/golden.safetensors");
    const int64_t V = gpu->config().vocab_size;
    double worst_gold = 0, worst_cpu = 0;
    for (const auto& prompt : golden.at("prompts")) {
        const auto ids = ids_of(prompt.at("ids"));
        const int64_t n = int64_t(ids.size());
        const TensorEntry& gold = logits.get(prompt.at("logits").get<std::string>());
        Session on_gpu(gpu, SessionConfig{});
        on_gpu.prefill(ids.data(), n, /*all_logits=*/true);
        Session on_cpu(cpu, SessionConfig{});
        on_cpu.prefill(ids.data(), n, true);
        const std::string what = name + " " + prompt.at("logits").get<std::string>();
        const double vs_gold =
            logprob_gap(on_gpu.logits(0), static_cast<const float*>(gold.data), n, V);
        const double vs_cpu = logprob_gap(on_gpu.logits(0), on_cpu.logits(0), n, V);
        EXPECT_LE(vs_gold, kLogProbTol) << what << " vs transformers";
        EXPECT_LE(vs_cpu, kLogProbTol) << what << " vs the CPU engine";
        worst_gold = std::max(worst_gold, vs_gold);
        worst_cpu = std::max(worst_cpu, vs_cpu);
    }
    RecordProperty("worst_logprob_gap_vs_transformers", cuda::testing::sci(worst_gold));
    RecordProperty("worst_logprob_gap_vs_cpu", cuda::testing::sci(worst_cpu));
}

TEST_P(CudaGoldenTest, GreedyContinuationMatchesTransformers) {
    TDM_SKIP_WITHOUT_GPU();
    const std::string name = GetParam();
    auto model = load_on(name, TDM_DEVICE_CUDA);
    const auto golden = read_json(fixture_dir(name) + "/golden.json");
    const auto& g = golden.at("greedy");
    const auto prompt = ids_of(g.at("prompt_ids"));
    const auto expected = ids_of(g.at("tokens"));
    const auto margins = g.at("margins").get<std::vector<double>>();
    Session s(model, SessionConfig{});
    s.prefill(prompt.data(), int64_t(prompt.size()), false);
    const int64_t V = s.vocab();
    // Identical up to the first near-tie (golden top-2 margin within the tolerance).
    int checked = 0;
    for (size_t step = 0; step < expected.size() && margins[step] >= kLogProbTol; ++step) {
        const float* z = s.logits(0);
        const int32_t best = int32_t(std::max_element(z, z + V) - z);
        ASSERT_EQ(best, expected[step]) << name << " step " << step;
        s.decode(best);
        ++checked;
    }
    RecordProperty("greedy_steps_checked", checked);
}

TEST_P(CudaGoldenTest, PrefillThenDecodeEqualsOneLongPrefill) {
    TDM_SKIP_WITHOUT_GPU();
    const std::string name = GetParam();
    auto model = load_on(name, TDM_DEVICE_CUDA);
    const auto golden = read_json(fixture_dir(name) + "/golden.json");
    const auto ids = ids_of(golden.at("prompts").at(1).at("ids"));
    ASSERT_GE(ids.size(), 4u);
    const int64_t V = model->config().vocab_size;
    Session whole(model, SessionConfig{});
    whole.prefill(ids.data(), int64_t(ids.size()), true);
    Session parts(model, SessionConfig{});
    const int64_t head = int64_t(ids.size()) / 2;
    parts.prefill(ids.data(), head, false);
    double worst = 0;
    for (size_t i = size_t(head); i < ids.size(); ++i) {
        parts.decode(ids[i]);
        const float* a = parts.logits(0);
        const float* b = whole.logits(int64_t(i));
        for (int64_t j = 0; j < V; ++j) {
            ASSERT_NEAR(a[j], b[j], kSelfTol * (1.0f + std::fabs(b[j]))) << name << " pos " << i;
            worst = std::max(worst, std::fabs(double(a[j]) - b[j]) / (1.0 + std::fabs(b[j])));
        }
    }
    RecordProperty("worst_scaled_logit_gap", cuda::testing::sci(worst));
}

TEST_P(CudaGoldenTest, TruncateThenRedoEqualsOriginal) {
    TDM_SKIP_WITHOUT_GPU();
    const std::string name = GetParam();
    auto model = load_on(name, TDM_DEVICE_CUDA);
    const auto golden = read_json(fixture_dir(name) + "/golden.json");
    const auto ids = ids_of(golden.at("prompts").at(2).at("ids"));
    const int64_t n = int64_t(ids.size());
    const int64_t V = model->config().vocab_size;
    Session s(model, SessionConfig{});
    s.prefill(ids.data(), n, false);
    const std::vector<float> original(s.logits(0), s.logits(0) + V);
    // Diverge with other tokens first, so that stale cache entries would show.
    const int64_t keep = n / 2;
    s.truncate(keep);
    const std::vector<int32_t> other(size_t(n - keep), int32_t(V - 1));
    s.prefill(other.data(), int64_t(other.size()), false);
    s.truncate(keep);
    s.prefill(ids.data() + keep, n - keep, false);
    ASSERT_EQ(s.length(), n);
    for (int64_t j = 0; j < V; ++j) {
        const float want = original[size_t(j)];
        ASSERT_NEAR(s.logits(0)[j], want, kSelfTol * (1.0f + std::fabs(want))) << name << " " << j;
    }
}

// Prefill passes of 2..16 rows (SessionConfig::prefill_chunk; the multi-row passes of speculative
// verification and catch-ups) run every projection on the GEMV kernels - the tensor-core tiles
// kernel from 3 rows - while one whole-prompt pass (17+ rows) runs on cuBLAS: every row's logits
// agree with the whole pass to the engine's self tolerance and with the CPU engine's to the
// log-probability tolerance.
TEST_P(CudaGoldenTest, PrefillInPassesOfTwoToSixteenRowsEqualsOnePassAndTheCpu) {
    TDM_SKIP_WITHOUT_GPU();
    const std::string name = GetParam();
    auto gpu = load_on(name, TDM_DEVICE_CUDA);
    auto cpu = load_on(name, TDM_DEVICE_CPU);
    const auto golden = read_json(fixture_dir(name) + "/golden.json");
    const auto ids = ids_of(golden.at("prompts").at(1).at("ids"));
    const int64_t n = int64_t(ids.size()), V = gpu->config().vocab_size;
    ASSERT_GT(n, 16) << "the whole pass must not take the GEMV itself";
    Session whole(gpu, SessionConfig{});
    whole.prefill(ids.data(), n, true);
    Session on_cpu(cpu, SessionConfig{});
    on_cpu.prefill(ids.data(), n, true);
    double worst = 0, worst_cpu = 0;
    for (int64_t chunk = 2; chunk <= 16; ++chunk) {
        SessionConfig config;
        config.prefill_chunk = chunk;
        Session passes(gpu, config);
        passes.prefill(ids.data(), n, true);
        ASSERT_EQ(passes.prefill_chunk_rows(), chunk);
        for (int64_t r = 0; r < n; ++r) {
            const float* a = passes.logits(r);
            const float* b = whole.logits(r);
            for (int64_t j = 0; j < V; ++j) {
                ASSERT_NEAR(a[j], b[j], kSelfTol * (1.0f + std::fabs(b[j])))
                    << name << " passes of " << chunk << " rows, row " << r;
                worst = std::max(worst, std::fabs(double(a[j]) - b[j]) / (1.0 + std::fabs(b[j])));
            }
        }
        const double vs_cpu = logprob_gap(passes.logits(0), on_cpu.logits(0), n, V);
        EXPECT_LE(vs_cpu, kLogProbTol) << name << " passes of " << chunk << " rows vs the CPU";
        worst_cpu = std::max(worst_cpu, vs_cpu);
    }
    RecordProperty("worst_scaled_logit_gap", cuda::testing::sci(worst));
    RecordProperty("worst_logprob_gap_vs_cpu", cuda::testing::sci(worst_cpu));
}

// Decode steps replayed from the recorded CUDA graph against the same steps run eagerly
// (TANDEM_CUDA_GRAPH=0): the same kernels with the same arguments, so bit for bit the same logits,
// across cache growth (a new recording) and after a truncate (replays at earlier positions).
TEST_P(CudaGoldenTest, DecodeGraphReplaysBitForBitWhatEagerStepsCompute) {
    TDM_SKIP_WITHOUT_GPU();
    const std::string name = GetParam();
    auto model = load_on(name, TDM_DEVICE_CUDA);
    const auto golden = read_json(fixture_dir(name) + "/golden.json");
    const auto ids = ids_of(golden.at("prompts").at(0).at("ids"));
    const int64_t V = model->config().vocab_size;
    ASSERT_EQ(setenv("TANDEM_CUDA_GRAPH", "0", 1), 0);
    Session eager(model, SessionConfig{});
    ASSERT_EQ(unsetenv("TANDEM_CUDA_GRAPH"), 0);
    Session graphed(model, SessionConfig{});
    eager.prefill(ids.data(), int64_t(ids.size()), false);
    graphed.prefill(ids.data(), int64_t(ids.size()), false);
    const int64_t steps = std::min<int64_t>(70, eager.capacity() - int64_t(ids.size()));
    auto decode_both = [&](int64_t count) {
        for (int64_t i = 0; i < count; ++i) {
            const float* z = eager.logits(0);
            const int32_t next = int32_t(std::max_element(z, z + V) - z);
            eager.decode(next);
            graphed.decode(next);
            ASSERT_EQ(0, std::memcmp(eager.logits(0), graphed.logits(0), size_t(V) * sizeof(float)))
                << name << " at position " << eager.length() - 1;
        }
    };
    decode_both(steps);
    const int64_t after_first = graphed.backend().graph_replays();
    EXPECT_EQ(eager.backend().graph_replays(), 0);
    EXPECT_GT(after_first, steps / 2) << "the graph path did not run";
    eager.truncate(int64_t(ids.size()) + steps / 3);
    graphed.truncate(int64_t(ids.size()) + steps / 3);
    eager.decode(ids[0]);
    graphed.decode(ids[0]);
    decode_both(steps / 3);
    EXPECT_GT(graphed.backend().graph_replays(), after_first);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaGoldenTest,
                         ::testing::ValuesIn(tdm::testing::fixture_names()),
                         [](const auto& test_param) {
                             std::string n = test_param.param;
                             std::replace(n.begin(), n.end(), '-', '_');
                             return n;
                         });

// 1500+ tokens in one prefill (one chunk on the GPU, whose prefill chunks hold thousands of rows;
// prefills at pos0 > 0 are covered by the stepwise half below and by cuda_sparse_model_test), then
// decode steps whose attention is split.
TEST(CudaModel, LongPromptTailAndDecodeMatchTransformers) {
    TDM_SKIP_WITHOUT_GPU();
    auto model = load_on("long-llama-bf16", TDM_DEVICE_CUDA);
    const auto golden = read_json(fixture_dir("long-llama-bf16") + "/golden.json");
    const auto logits = SafetensorsFile::open(fixture_dir("long-llama-bf16") + "/golden.safetensors");
    const auto ids = ids_of(golden.at("long").at("ids"));
    ASSERT_GE(ids.size(), 1500u);
    const TensorEntry& gold = logits.get(golden.at("long").at("logits_tail").get<std::string>());
    const int64_t tail = gold.shape.at(0), V = gold.shape.at(1);
    const int64_t n = int64_t(ids.size());
    Session whole(model, SessionConfig{});
    whole.prefill(ids.data(), n, true);
    EXPECT_LE(logprob_gap(whole.logits(n - tail), static_cast<const float*>(gold.data), tail, V),
              kLogProbTol);
    // The same tail by decode steps after a prefill of the rest.
    Session stepwise(model, SessionConfig{});
    stepwise.prefill(ids.data(), n - tail, false);
    for (int64_t i = n - tail; i < n; ++i) {
        stepwise.decode(ids[size_t(i)]);
        EXPECT_LE(logprob_gap(stepwise.logits(0),
                              static_cast<const float*>(gold.data) + (i - (n - tail)) * V, 1, V),
                  kLogProbTol)
            << "decode at position " << i;
    }
}

TEST(CudaModel, WeightsAreUploadedOnceAsBf16) {
    TDM_SKIP_WITHOUT_GPU();
    for (const char* name : {"llama-f32", "llama-bf16", "qwen2-tied-f32"}) {
        SCOPED_TRACE(name);
        auto model = load_on(name, TDM_DEVICE_CUDA);
        const ModelWeights& dev = model->weights();
        const ModelWeights& host = model->host_weights();
        EXPECT_EQ(dev.embed.dtype, DType::BF16);
        EXPECT_EQ(dev.layers.at(0).wq.dtype, DType::BF16);
        EXPECT_EQ(dev.final_norm.dtype, DType::BF16);
        EXPECT_NE(dev.embed.data, host.embed.data);
        cudaPointerAttributes attributes{};
        TDM_CUDA_CHECK(cudaPointerGetAttributes(&attributes, dev.layers.at(0).w_down.data));
        EXPECT_EQ(attributes.type, cudaMemoryTypeDevice);
        // A tied lm_head is the embedding itself on the device too.
        EXPECT_EQ(dev.lm_head.data == dev.embed.data, host.lm_head.data == host.embed.data);
        // Bit-exact round to nearest even of whatever the file holds.
        const MatrixView& h = host.layers.at(0).wq;
        const auto got = cuda::testing::download<uint16_t>(dev.layers.at(0).wq.data,
                                                           size_t(h.rows * h.cols));
        for (int64_t i = 0; i < h.rows * h.cols; ++i)
            ASSERT_EQ(got[size_t(i)], f32_to_bf16(load_as_f32(h.data, size_t(i), h.dtype))) << i;
    }
}

TEST(CudaModel, LoadReportsProgressAndCanBeCancelled) {
    TDM_SKIP_WITHOUT_GPU();
    struct Seen { uint64_t last_done = 0, total = 0; int calls = 0; int cancel_after = -1; };
    auto callback = [](uint64_t done, uint64_t total, void* user) -> int32_t {
        auto* seen = static_cast<Seen*>(user);
        EXPECT_GE(done, seen->last_done);
        seen->last_done = done;
        seen->total = total;
        ++seen->calls;
        return seen->cancel_after >= 0 && seen->calls > seen->cancel_after ? 1 : 0;
    };
    Seen seen;
    LoadOptions options;
    options.device = TDM_DEVICE_CUDA;
    options.progress = callback;
    options.progress_user_data = &seen;
    auto model = Model::load(fixture_dir("llama-f32"), options);
    EXPECT_GT(seen.calls, 0);
    EXPECT_GT(seen.total, 0u);
    EXPECT_EQ(seen.last_done, seen.total);

    Seen cancelling;
    cancelling.cancel_after = 1;
    options.progress_user_data = &cancelling;
    try {
        Model::load(fixture_dir("llama-f32"), options);
        FAIL() << "the load was not cancelled";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TDM_ERR_CANCELLED);
    }
}

TEST(CudaModel, MissingDeviceIsRefusedClearly) {
    TDM_SKIP_WITHOUT_GPU();
    LoadOptions options;
    options.device = TDM_DEVICE_CUDA;
    options.device_index = 99;
    try {
        Model::load(fixture_dir("llama-f32"), options);
        FAIL() << "device 99 accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TDM_ERR_BACKEND_UNAVAILABLE);
        EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
    }
    const cuda::DeviceInfo info = cuda::require_supported_device(0);
    EXPECT_EQ(info.major, 9) << info.name;
    EXPECT_TRUE(cuda::supported_device_present());
}

}  // namespace
}  // namespace tdm

#endif  // TANDEM_HAVE_CUDA
