// What the two-model decoding loops cost (issue 5): a small and a large random-weight Llama decode
// together, and each method's tokens/s is set beside the large model alone and beside what a cost
// model predicts from the measured per-token costs. Random weights make the routing decisions
// meaningless, so the routed methods run at FIXED switch rates (a route callback), and speculative
// decoding is reported greedy (random models almost never agree on an argmax, so acceptance ~ 0:
// the row measures the price of a wasted draft) and sampled at temperature 1 (near-uniform random
// distributions overlap a lot, so acceptance is high: the row measures the loop at work).
//
//   tandem_pair_bench [--small SHAPE] [--large SHAPE] [--dtype bf16|f16|f32] [--device cpu|cuda]
//                     [--threads N] [--prompt 64] [--gen 64] [--reps 3] [--every 4,16]
//                     [--dir DIR] [--small-dir HF_FOLDER --large-dir HF_FOLDER]
//
// SHAPE is a preset (tiny, mini, 125m, 1b, 8b; 1b and 8b are the Llama-3.2-1B / Llama-3.1-8B
// shapes of the CUDA benchmark, same seed and folder names, so their weights are shared) or
// dim:layers:heads:kv_heads:head_dim:ffn with the vocabulary of --vocab (default 32000; the
// 1b/8b presets use 128256). Both models must have the same vocabulary.
//
// Columns: tok/s of generated tokens (prompt prefill excluded), median of --reps runs; speedup =
// tok/s / large-alone tok/s; predicted speedup from the measured per-token costs t_s (small alone)
// and t_l (large alone), c = t_s / t_l. Each row is set beside the models alone at its own
// temperature: sampled speculative decoding against the large model sampling at T = 1 (what it
// reproduces, draw for draw in distribution, and what a user would otherwise run), the greedy and
// routed rows against greedy decoding:
//   speculative  (1 - a^(g+1)) / ((1 - a)(g c + 1)) with a the acceptance rate of the drafts that
//                were tested: accepted / (accepted + rejections) (drafts after a rejection are never
//                tested, so accepted / drafted would understate it) (ALGORITHMS 2);
//   R-Stitch     every k-th small proposal is discarded and the large model writes that position
//                and hands back: t_l / (t_s + t_l / k) (large share 1/k);
//   EAD blocks   the models alternate every k tokens: 2 t_l / (t_s + t_l) (large share 1/2).
// The predictions charge one decode-token cost per verification or catch-up pass, so measured /
// predicted differs from 1 by what a pass over several tokens costs beside a one-token pass (more
// where the pass is compute-bound, less where catch-up batches what decode would do one by one),
// plus the loops' own overhead.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "decode/pair_decoder.h"
#include "model/model.h"
#include "random_model_writer.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, sep);)
        if (!item.empty()) out.push_back(item);
    return out;
}

tdm::bench::LlamaShape parse_shape(const std::string& spec, int64_t vocab) {
    tdm::bench::LlamaShape s;
    s.vocab = vocab;
    s.context = 4096;
    if (spec == "tiny") {
        s.dim = 64; s.layers = 2; s.heads = 4; s.kv_heads = 2; s.head_dim = 16; s.ffn = 128;
    } else if (spec == "mini") {
        s.dim = 256; s.layers = 6; s.heads = 8; s.kv_heads = 4; s.head_dim = 32; s.ffn = 768;
    } else if (spec == "125m") {
        // LlamaShape's defaults: the CPU benchmark's 125M shape
    } else if (spec == "1b") {
        s.dim = 2048; s.layers = 16; s.heads = 32; s.kv_heads = 8; s.head_dim = 64; s.ffn = 8192;
        s.vocab = 128256; s.context = 131072; s.tied_embeddings = true; s.rope_theta = 500000.0;
    } else if (spec == "8b") {
        s.dim = 4096; s.layers = 32; s.heads = 32; s.kv_heads = 8; s.head_dim = 128;
        s.ffn = 14336; s.vocab = 128256; s.context = 131072; s.rope_theta = 500000.0;
    } else {
        const auto f = split(spec, ':');
        TDM_REQUIRE(f.size() == 6, TDM_ERR_INVALID_ARGUMENT,
                    "shape '" + spec + "' is neither a preset (tiny, mini, 125m, 1b, 8b) nor "
                    "dim:layers:heads:kv_heads:head_dim:ffn");
        s.dim = std::atoll(f[0].c_str()); s.layers = std::atoll(f[1].c_str());
        s.heads = std::atoll(f[2].c_str()); s.kv_heads = std::atoll(f[3].c_str());
        s.head_dim = std::atoll(f[4].c_str()); s.ffn = std::atoll(f[5].c_str());
    }
    return s;
}

// A shape's folder name: the presets shared with the CUDA benchmark keep its names.
std::string folder_for(const std::string& dir, const std::string& spec, const char* dtype,
                       int64_t vocab) {
    std::string key = spec;
    std::replace(key.begin(), key.end(), ':', 'x');
    const bool preset_vocab = spec == "1b" || spec == "8b";
    return dir + "/random-llama-" + key + "-" + dtype +
           (preset_vocab ? "" : "-v" + std::to_string(vocab));
}

struct Method {
    std::string name, setting;
    tdm_pair_options options;
    tdm_route_policy policy;
    int every = 0;  // routed methods: the fixed switch period k
};

// R-Stitch at a fixed rate: every k-th proposal of the small model is discarded, the large model
// writes that position and hands back at once.
struct FixedRate {
    int every = 4;
    uint64_t small_proposals = 0;
    uint64_t written = 0;  // EAD blocks: tokens of the active model since it became active
};

int32_t rstitch_every(const tdm_route_info* info, void* user) {
    auto* r = static_cast<FixedRate*>(user);
    if (info->active == TDM_PAIR_LARGE) return TDM_ROUTE_KEEP_AND_SWITCH;
    return ++r->small_proposals % uint64_t(r->every) == 0 ? TDM_ROUTE_DISCARD_AND_SWITCH
                                                          : TDM_ROUTE_KEEP;
}

// EAD-like blocks: each model writes k tokens, then the other takes over.
int32_t blocks_every(const tdm_route_info* info, void* user) {
    auto* r = static_cast<FixedRate*>(user);
    return info->tokens_since_switch + 1 >= uint32_t(r->every) ? TDM_ROUTE_KEEP_AND_SWITCH
                                                              : TDM_ROUTE_KEEP;
}

struct Measured {
    double tps = 0.0;
    tdm_pair_stats stats{};
    uint64_t corrected = 0;  // speculative rounds that ended in a rejection (last run)
};

Measured measure(tdm::PairDecoder& d, const std::vector<int32_t>& prompt, Method m, int reps) {
    std::vector<double> tps;
    Measured out;
    std::vector<tdm_token_record> step;
    for (int r = 0; r < reps; ++r) {
        FixedRate rate;
        rate.every = m.every;
        if (m.every > 0) m.options.route_user_data = &rate;
        d.start(prompt.data(), int64_t(prompt.size()), m.options, m.policy);
        out.corrected = 0;
        const auto t0 = Clock::now();
        for (bool finished = false; !finished;) {
            finished = d.step(step);
            for (const auto& rec : step) out.corrected += rec.outcome == TDM_OUTCOME_CORRECTED;
        }
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        out.stats = d.stats();
        const double generated = double(out.stats.tokens_small + out.stats.tokens_large);
        tps.push_back(generated / s);
    }
    out.tps = median(tps);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::string small_spec = "tiny", large_spec = "mini", dtype_arg = "bf16", device = "cpu";
    std::string dir = "build/bench-models", small_dir, large_dir, every_arg = "4,16";
    int threads = 2, prompt_len = 64, gen = 64, reps = 3;
    int64_t vocab = 32000;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", a.c_str()); std::exit(2); }
            return argv[++i];
        };
        if (a == "--small") small_spec = next();
        else if (a == "--large") large_spec = next();
        else if (a == "--dtype") dtype_arg = next();
        else if (a == "--device") device = next();
        else if (a == "--threads") threads = std::atoi(next().c_str());
        else if (a == "--prompt") prompt_len = std::atoi(next().c_str());
        else if (a == "--gen") gen = std::atoi(next().c_str());
        else if (a == "--reps") reps = std::atoi(next().c_str());
        else if (a == "--every") every_arg = next();
        else if (a == "--vocab") vocab = std::atoll(next().c_str());
        else if (a == "--dir") dir = next();
        else if (a == "--small-dir") small_dir = next();
        else if (a == "--large-dir") large_dir = next();
        else { std::fprintf(stderr, "unknown argument %s\n", a.c_str()); return 2; }
    }
    if (device != "cpu" && device != "cuda") {
        std::fprintf(stderr, "--device must be cpu or cuda\n");
        return 2;
    }
    if (prompt_len < 1 || gen < 2 || reps < 1) {
        std::fprintf(stderr, "--prompt must be >= 1, --gen >= 2, --reps >= 1\n");
        return 2;
    }
    try {
        tdm::DType dtype = tdm::DType::BF16;
        if (dtype_arg == "f32") dtype = tdm::DType::F32;
        else if (dtype_arg == "f16") dtype = tdm::DType::F16;
        else if (dtype_arg != "bf16") throw std::runtime_error("--dtype must be bf16, f16 or f32");
        if (small_dir.empty() != large_dir.empty())
            throw std::runtime_error("--small-dir and --large-dir go together");
        if (small_dir.empty()) {
            const auto ss = parse_shape(small_spec, vocab), ls = parse_shape(large_spec, vocab);
            if (ss.vocab != ls.vocab)
                throw std::runtime_error("the small and large shapes have different vocabularies");
            small_dir = folder_for(dir, small_spec, dtype_arg.c_str(), ss.vocab);
            large_dir = folder_for(dir, large_spec, dtype_arg.c_str(), ls.vocab);
            for (const auto& [folder, shape] : {std::pair{small_dir, ss}, std::pair{large_dir, ls}}) {
                std::printf("writing/reusing %s\n", folder.c_str());
                std::fflush(stdout);
                tdm::bench::write_random_llama(folder, shape, dtype, 20261127,
                                               tdm::bench::RandomStream::Blocked);
            }
        }
        tdm::LoadOptions lo;
        lo.device = device == "cuda" ? TDM_DEVICE_CUDA : TDM_DEVICE_CPU;
        lo.threads = threads;
        auto small = tdm::Model::load(small_dir, lo);
        auto large = tdm::Model::load(large_dir, lo);
        tdm::SessionConfig sc;
        sc.threads = threads;
        sc.kv_capacity = prompt_len + gen + 16;
        tdm::PairDecoder d(small, large, sc);

        std::mt19937 rng(1234);
        std::uniform_int_distribution<int32_t> tok(3, int32_t(small->config().vocab_size) - 1);
        std::vector<int32_t> prompt(static_cast<size_t>(prompt_len));
        for (auto& t : prompt) t = tok(rng);

        auto base = [&](int32_t mode, float temperature) {
            Method m;
            m.options = tdm::default_pair_options();
            m.options.mode = mode;
            m.options.max_new_tokens = uint32_t(gen);
            m.options.stop_at_eos = 0;
            m.options.temperature = temperature;
            m.options.seed = 7;
            m.policy = tdm::default_route_policy(mode);
            return m;
        };
        std::printf("\nsmall %s (%.3f B parameters), large %s (%.3f B), %s on %s, %d threads; "
                    "prompt %d, %d generated tokens, median of %d\n\n",
                    small_dir.c_str(), double(small->parameter_count()) / 1e9, large_dir.c_str(),
                    double(large->parameter_count()) / 1e9, dtype_arg.c_str(), device.c_str(),
                    threads, prompt_len, gen, reps);

        // Warm-up (page faults, allocations, GPU clocks), not reported.
        measure(d, prompt, base(TDM_MODE_SPECULATIVE, 0.0f), 1);

        // The models alone at each temperature the rows use (index 0: greedy, 1: T = 1).
        const float temperatures[2] = {0.0f, 1.0f};
        Measured large_alone[2], small_alone[2];
        double t_l[2], t_s[2], c[2];
        for (int k = 0; k < 2; ++k) {
            large_alone[k] = measure(d, prompt, base(TDM_MODE_LARGE, temperatures[k]), reps);
            small_alone[k] = measure(d, prompt, base(TDM_MODE_SMALL, temperatures[k]), reps);
            t_l[k] = 1.0 / large_alone[k].tps;
            t_s[k] = 1.0 / small_alone[k].tps;
            c[k] = t_s[k] / t_l[k];
        }
        std::printf("| method | setting | tok/s | speedup vs large | predicted | measured/predicted "
                    "| large share | acceptance (tested drafts) | mean accepted |\n");
        std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
        // k: the temperature index of the row's baseline.
        auto row = [&](const std::string& name, const std::string& setting, const Measured& m,
                       double predicted, double acceptance, int k = 0) {
            const double total = double(m.stats.tokens_small + m.stats.tokens_large);
            const double speedup = m.tps / large_alone[k].tps;
            std::printf("| %s | %s | %.1f | %.2f | ", name.c_str(), setting.c_str(), m.tps, speedup);
            if (predicted > 0) std::printf("%.2f | %.2f | ", predicted, speedup / predicted);
            else std::printf("- | - | ");
            std::printf("%.2f | ", double(m.stats.tokens_large) / total);
            if (acceptance >= 0)
                std::printf("%.3f | %.2f |\n", acceptance, m.stats.mean_accepted);
            else std::printf("- | - |\n");
            std::fflush(stdout);
        };
        for (int k = 0; k < 2; ++k) {
            const std::string setting = k == 0 ? "alone, greedy" : "alone, T=1";
            row("large", setting, large_alone[k], 1.0, -1, k);
            row("small", setting, small_alone[k], 1.0 / c[k], -1, k);
        }
        std::printf("\ncost ratio c = t_small / t_large = %.3f greedy, %.3f at T=1\n\n", c[0], c[1]);

        for (int k = 0; k < 2; ++k) {
            for (uint32_t g : {2u, 4u, 8u}) {
                Method m = base(TDM_MODE_SPECULATIVE, temperatures[k]);
                m.options.draft_length = g;
                const Measured r = measure(d, prompt, m, reps);
                const double tested = double(r.stats.accepted + r.corrected);
                const double a = tested > 0 ? double(r.stats.accepted) / tested : 0.0;
                const double predicted =
                    a < 1.0 ? (1.0 - std::pow(a, g + 1)) / ((1.0 - a) * (g * c[k] + 1.0))
                            : (g + 1.0) / (g * c[k] + 1.0);
                row(k == 0 ? "speculative greedy" : "speculative T=1",
                    "gamma " + std::to_string(g), r, predicted, a, k);
            }
        }
        for (const auto& k : split(every_arg, ',')) {
            const int every = std::atoi(k.c_str());
            if (every < 1) throw std::runtime_error("--every values must be >= 1");
            Method rs = base(TDM_MODE_RSTITCH, 0.0f);
            rs.every = every;
            rs.options.route = rstitch_every;
            row("R-Stitch (fixed rate)", "large every " + std::to_string(every), measure(d, prompt, rs, reps),
                t_l[0] / (t_s[0] + t_l[0] / every), -1);
            Method ead = base(TDM_MODE_EAD, 0.0f);
            ead.every = every;
            ead.options.route = blocks_every;
            row("EAD blocks (fixed rate)", "switch every " + std::to_string(every),
                measure(d, prompt, ead, reps), 2.0 * t_l[0] / (t_s[0] + t_l[0]), -1);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tandem_pair_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
