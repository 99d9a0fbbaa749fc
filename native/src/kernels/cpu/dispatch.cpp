#include "kernels/cpu/dispatch.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "core/error.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/kernels.h"

namespace tdm::cpu {
namespace {

IsaLevel detect() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    // F16C has no __builtin_cpu_supports name in GCC 12; every CPU with AVX2 and FMA has it
    // (Haswell, Piledriver and later), so AVX2+FMA stands for all three.
    bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl");
    bool bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
    if (bf16) return IsaLevel::Avx512Bf16;
    if (avx512) return IsaLevel::Avx512;
    if (avx2) return IsaLevel::Avx2;
#endif
    return IsaLevel::Portable;
}

// The cap from TANDEM_CPU_LEVEL, read once; an unknown name is an error rather than a silent
// fallback, because a test run that meant to cap the level must not quietly run another.
IsaLevel env_cap() {
    const char* s = std::getenv("TANDEM_CPU_LEVEL");
    if (s == nullptr || *s == '\0') return IsaLevel::Avx512Bf16;
    IsaLevel level;
    TDM_REQUIRE(
        parse_isa_level(s, &level), TDM_ERR_INVALID_ARGUMENT,
        std::string("TANDEM_CPU_LEVEL=") + s + " is not one of portable, avx2, avx512, avx512bf16");
    return level;
}

struct State {
    IsaLevel detected = detect();
    std::atomic<int> active{static_cast<int>(std::min(detected, env_cap()))};
};

State& state() {
    static State s;
    return s;
}

const KernelTable& table_for(IsaLevel level) {
    switch (level) {
        case IsaLevel::Avx512Bf16:
            return avx512bf16_kernels();
        case IsaLevel::Avx512:
            return avx512_kernels();
        case IsaLevel::Avx2:
            return avx2_kernels();
        case IsaLevel::Portable:
            break;
    }
    return portable_kernels();
}

}  // namespace

IsaLevel detected_isa_level() { return state().detected; }

IsaLevel active_isa_level() {
    return static_cast<IsaLevel>(state().active.load(std::memory_order_relaxed));
}

IsaLevel set_isa_level(IsaLevel cap) {
    IsaLevel level = std::min(cap, state().detected);
    state().active.store(static_cast<int>(level), std::memory_order_relaxed);
    return level;
}

const char* isa_level_name(IsaLevel level) {
    switch (level) {
        case IsaLevel::Portable:
            return "portable";
        case IsaLevel::Avx2:
            return "avx2";
        case IsaLevel::Avx512:
            return "avx512";
        case IsaLevel::Avx512Bf16:
            return "avx512bf16";
    }
    return "unknown";
}

bool parse_isa_level(const std::string& name, IsaLevel* level) {
    for (IsaLevel l :
         {IsaLevel::Portable, IsaLevel::Avx2, IsaLevel::Avx512, IsaLevel::Avx512Bf16}) {
        if (name == isa_level_name(l)) {
            *level = l;
            return true;
        }
    }
    return false;
}

const KernelTable& active_kernels() { return table_for(active_isa_level()); }

const char* cpu_features() { return active_kernels().features; }

}  // namespace tdm::cpu
