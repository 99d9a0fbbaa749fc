// The routing rules of R-Stitch and EAD (ALGORITHMS.md sections 6 and 7) and the callback path, on
// hand-made statistics: no model needed.
#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <limits>
#include <numbers>
#include <random>

#include "core/error.h"
#include "decode/routing.h"

namespace {

using tdm::Router;

constexpr float kInf = std::numeric_limits<float>::infinity();

tdm_route_info proposal(tdm_pair_model active, float entropy_bits, uint32_t since_switch,
                        float max_prob = 0.5f, float eu = 0.5f) {
    tdm_route_info info{};
    info.struct_size = sizeof(info);
    info.active = active;
    info.token = 7;
    info.position = 10;
    info.tokens_since_switch = since_switch;
    info.stats.entropy_bits = entropy_bits;
    info.stats.entropy = entropy_bits * std::numbers::ln2_v<float>;
    info.stats.entropy_normalized = entropy_bits / 9.0f;  // as if V = 512
    info.stats.max_prob = max_prob;
    info.stats.eu = eu;
    return info;
}

tdm_status status_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const tdm::Error& e) {
        return e.status();
    }
    return TDM_OK;
}

TEST(RollingWindow, MeanOfThoseAvailableThenOfTheLastW) {
    std::mt19937 gen(4);
    std::uniform_real_distribution<float> u(0.0f, 8.0f);
    for (uint32_t w : {1u, 2u, 5u, 13u}) {
        tdm::RollingWindow window(w);
        std::deque<float> reference;
        EXPECT_EQ(window.mean(), 0.0f);
        for (int i = 0; i < 40; ++i) {
            const float v = u(gen);
            // mean_with(v) must equal the mean after pushing v, computed here from scratch.
            std::deque<float> next = reference;
            next.push_back(v);
            if (next.size() > w) next.pop_front();
            double sum = 0.0;
            for (float x : next) sum += x;
            const float expected = float(sum / double(next.size()));
            EXPECT_NEAR(window.mean_with(v), expected, 1e-5f) << "w " << w << " step " << i;
            window.push(v);
            reference = next;
            EXPECT_NEAR(window.mean(), expected, 1e-5f);
            EXPECT_EQ(window.size(), std::min<uint32_t>(w, uint32_t(i + 1)));
        }
    }
}

TEST(RouteSignal, DirectionAndValues) {
    tdm_token_stats s{};
    s.entropy_normalized = 0.25f;
    s.max_prob = 0.75f;
    s.eu = 0.125f;
    s.entropy_bits = 2.5f;
    EXPECT_EQ(tdm::route_signal_value(TDM_SIGNAL_ENTROPY_NORMALIZED, s), 0.25f);
    EXPECT_EQ(tdm::route_signal_value(TDM_SIGNAL_MAX_PROB, s), 0.75f);
    EXPECT_EQ(tdm::route_signal_value(TDM_SIGNAL_EU, s), 0.125f);
    EXPECT_EQ(tdm::route_signal_value(TDM_SIGNAL_ENTROPY_BITS, s), 2.5f);
    EXPECT_TRUE(tdm::route_uncertain(TDM_SIGNAL_ENTROPY_NORMALIZED, 0.4f, 0.3f));
    EXPECT_FALSE(tdm::route_uncertain(TDM_SIGNAL_ENTROPY_NORMALIZED, 0.3f, 0.3f));
    EXPECT_TRUE(tdm::route_uncertain(TDM_SIGNAL_MAX_PROB, 0.2f, 0.3f));   // low confidence
    EXPECT_FALSE(tdm::route_uncertain(TDM_SIGNAL_MAX_PROB, 0.3f, 0.3f));
    EXPECT_FALSE(tdm::route_uncertain(TDM_SIGNAL_EU, 1.0f, kInf));
    EXPECT_TRUE(tdm::route_uncertain(TDM_SIGNAL_EU, 0.0f, -kInf));
}

TEST(RoutePolicy, DefaultsAndValidation) {
    const tdm_route_policy r = tdm::default_route_policy(TDM_MODE_RSTITCH);
    EXPECT_EQ(r.struct_size, sizeof(tdm_route_policy));
    EXPECT_EQ(r.signal, TDM_SIGNAL_ENTROPY_NORMALIZED);
    EXPECT_FLOAT_EQ(r.threshold, 0.3f);
    EXPECT_EQ(r.handback_after, 1u);
    const tdm_route_policy e = tdm::default_route_policy(TDM_MODE_EAD);
    EXPECT_EQ(e.signal, TDM_SIGNAL_ENTROPY_BITS);
    EXPECT_FLOAT_EQ(e.threshold, 1.5f);
    EXPECT_EQ(e.window, 5u);
    EXPECT_EQ(e.min_large_tokens, 1u);

    auto invalid = [](auto edit) {
        tdm_route_policy p = tdm::default_route_policy(TDM_MODE_EAD);
        edit(p);
        return status_of([&] { tdm::validate_route_policy(p); });
    };
    EXPECT_EQ(invalid([](tdm_route_policy&) {}), TDM_OK);
    EXPECT_EQ(invalid([](tdm_route_policy& p) { p.signal = 4; }), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(invalid([](tdm_route_policy& p) { p.threshold = NAN; }), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(invalid([](tdm_route_policy& p) { p.threshold = kInf; }), TDM_OK);
    EXPECT_EQ(invalid([](tdm_route_policy& p) { p.window = 0; }), TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(invalid([](tdm_route_policy& p) { p.window = tdm::kMaxRouteWindow + 1; }),
              TDM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(invalid([](tdm_route_policy& p) { p.handback_after = 0; }),
              TDM_ERR_INVALID_ARGUMENT);
}

TEST(RStitchRule, SmallDiscardsWhenUncertainLargeHandsBackAfterConfidentRun) {
    tdm_route_policy p = tdm::default_route_policy(TDM_MODE_RSTITCH);
    p.signal = TDM_SIGNAL_ENTROPY_BITS;
    p.threshold = 2.0f;
    p.handback_after = 2;
    Router r(TDM_MODE_RSTITCH, p, nullptr, nullptr);
    auto small = proposal(TDM_PAIR_SMALL, 1.0f, 0);
    EXPECT_EQ(r.decide(small, true), TDM_ROUTE_KEEP);
    small = proposal(TDM_PAIR_SMALL, 3.0f, 1);
    EXPECT_EQ(r.decide(small, true), TDM_ROUTE_DISCARD_AND_SWITCH);
    r.switched();
    // The large model: confident, uncertain (resets the run), confident, confident -> hand back.
    const float bits[] = {1.0f, 3.0f, 1.0f, 1.0f};
    const tdm_route_decision want[] = {TDM_ROUTE_KEEP, TDM_ROUTE_KEEP, TDM_ROUTE_KEEP,
                                       TDM_ROUTE_KEEP_AND_SWITCH};
    for (uint32_t i = 0; i < 4; ++i) {
        auto info = proposal(TDM_PAIR_LARGE, bits[i], i);
        EXPECT_EQ(r.decide(info, true), want[i]) << "large token " << i;
        r.committed(bits[i]);
    }
}

TEST(RStitchRule, MaxLargeSpanHandsBackRegardless) {
    tdm_route_policy p = tdm::default_route_policy(TDM_MODE_RSTITCH);
    p.threshold = -kInf;  // never confident
    p.max_large_span = 3;
    Router r(TDM_MODE_RSTITCH, p, nullptr, nullptr);
    for (uint32_t i = 0; i < 3; ++i) {
        auto info = proposal(TDM_PAIR_LARGE, 5.0f, i);
        EXPECT_EQ(r.decide(info, true), i < 2 ? TDM_ROUTE_KEEP : TDM_ROUTE_KEEP_AND_SWITCH);
    }
    p.max_large_span = 0;  // never
    Router never(TDM_MODE_RSTITCH, p, nullptr, nullptr);
    for (uint32_t i = 0; i < 50; ++i) {
        auto info = proposal(TDM_PAIR_LARGE, 0.0f, i);
        EXPECT_EQ(never.decide(info, true), TDM_ROUTE_KEEP);
    }
}

TEST(RStitchRule, MaxProbSignalIsUncertainBelowTheThreshold) {
    tdm_route_policy p = tdm::default_route_policy(TDM_MODE_RSTITCH);
    p.signal = TDM_SIGNAL_MAX_PROB;
    p.threshold = 0.6f;
    Router r(TDM_MODE_RSTITCH, p, nullptr, nullptr);
    auto sure = proposal(TDM_PAIR_SMALL, 9.0f, 0, /*max_prob=*/0.9f);
    EXPECT_EQ(r.decide(sure, true), TDM_ROUTE_KEEP);
    auto unsure = proposal(TDM_PAIR_SMALL, 0.0f, 0, /*max_prob=*/0.2f);
    EXPECT_EQ(r.decide(unsure, true), TDM_ROUTE_DISCARD_AND_SWITCH);
}

TEST(EadRule, WindowMeanSwitchesAndMinLargeTokensHolds) {
    tdm_route_policy p = tdm::default_route_policy(TDM_MODE_EAD);
    p.threshold = 2.0f;
    p.window = 3;
    p.min_large_tokens = 3;
    Router r(TDM_MODE_EAD, p, nullptr, nullptr);
    // Small: 1, 1 (mean 1), then 5: window {1, 1, 5} mean 7/3 > 2 -> switch, token kept.
    for (float h : {1.0f, 1.0f}) {
        auto info = proposal(TDM_PAIR_SMALL, h, 0);
        EXPECT_EQ(r.decide(info, true), TDM_ROUTE_KEEP);
        EXPECT_FLOAT_EQ(info.window_mean_bits, 1.0f);
        r.committed(h);
    }
    auto trigger = proposal(TDM_PAIR_SMALL, 5.0f, 2);
    EXPECT_EQ(r.decide(trigger, true), TDM_ROUTE_KEEP_AND_SWITCH);
    EXPECT_FLOAT_EQ(trigger.window_mean_bits, 7.0f / 3.0f);
    r.committed(5.0f);
    r.switched();
    // Large writes 0-bit tokens: the mean is at most 2 from the first one on, but it must write
    // 3 tokens before it may hand back.
    for (uint32_t i = 0; i < 3; ++i) {
        auto info = proposal(TDM_PAIR_LARGE, 0.0f, i);
        EXPECT_EQ(r.decide(info, true), i < 2 ? TDM_ROUTE_KEEP : TDM_ROUTE_KEEP_AND_SWITCH)
            << "large token " << i << ", mean " << info.window_mean_bits;
        r.committed(0.0f);
    }
}

TEST(EadRule, RegenerateOnSwitchDiscardsTheTrigger) {
    tdm_route_policy p = tdm::default_route_policy(TDM_MODE_EAD);
    p.threshold = 1.0f;
    p.regenerate_on_switch = 1;
    Router r(TDM_MODE_EAD, p, nullptr, nullptr);
    auto info = proposal(TDM_PAIR_SMALL, 4.0f, 0);
    EXPECT_EQ(r.decide(info, true), TDM_ROUTE_DISCARD_AND_SWITCH);
    // The replacement may not discard again: the rule falls back to keeping and switching.
    EXPECT_EQ(r.decide(info, false), TDM_ROUTE_KEEP_AND_SWITCH);
}

TEST(EadRule, InfiniteThresholdsNeverAndAlwaysRoute) {
    std::mt19937 gen(8);
    std::uniform_real_distribution<float> bits(0.0f, 9.0f);
    tdm_route_policy p = tdm::default_route_policy(TDM_MODE_EAD);
    p.threshold = kInf;
    Router never(TDM_MODE_EAD, p, nullptr, nullptr);
    p.threshold = -kInf;
    Router always(TDM_MODE_EAD, p, nullptr, nullptr);
    for (int i = 0; i < 100; ++i) {
        auto s = proposal(TDM_PAIR_SMALL, bits(gen), uint32_t(i));
        EXPECT_EQ(never.decide(s, true), TDM_ROUTE_KEEP);
        auto l = proposal(TDM_PAIR_LARGE, bits(gen), uint32_t(i));
        EXPECT_EQ(always.decide(l, true), TDM_ROUTE_KEEP);
        never.committed(s.stats.entropy_bits);
        always.committed(l.stats.entropy_bits);
    }
}

struct CallbackLog {
    int calls = 0;
    int32_t answer = TDM_ROUTE_KEEP;
    float last_mean = 0.0f;
};

int32_t logging_callback(const tdm_route_info* info, void* user) {
    auto* log = static_cast<CallbackLog*>(user);
    ++log->calls;
    log->last_mean = info->window_mean_bits;
    return log->answer;
}

TEST(RouterCallback, ReplacesTheRuleAndSeesTheWindow) {
    CallbackLog log;
    tdm_route_policy p = tdm::default_route_policy(TDM_MODE_EAD);
    p.window = 2;
    Router r(TDM_MODE_EAD, p, logging_callback, &log);
    r.committed(1.0f);
    r.committed(3.0f);
    auto info = proposal(TDM_PAIR_SMALL, 5.0f, 0);
    log.answer = TDM_ROUTE_KEEP_AND_SWITCH;
    EXPECT_EQ(r.decide(info, true), TDM_ROUTE_KEEP_AND_SWITCH);
    EXPECT_EQ(log.calls, 1);
    EXPECT_FLOAT_EQ(log.last_mean, 4.0f);  // {3, 5}

    log.answer = -1;  // the caller caught an exception
    EXPECT_EQ(status_of([&] { r.decide(info, true); }), TDM_ERR_CALLBACK);
    log.answer = 3;  // not a decision
    EXPECT_EQ(status_of([&] { r.decide(info, true); }), TDM_ERR_CALLBACK);
    log.answer = TDM_ROUTE_DISCARD_AND_SWITCH;
    EXPECT_EQ(status_of([&] { r.decide(info, false); }), TDM_ERR_CALLBACK);
    EXPECT_EQ(r.decide(info, true), TDM_ROUTE_DISCARD_AND_SWITCH);
}

}  // namespace
