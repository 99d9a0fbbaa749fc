// Run-time choice of the instruction-set level the CPU kernels use.
//
// The library is compiled for baseline x86-64; the AVX2 and AVX-512 kernels live in their own
// translation units compiled with GCC target pragmas, and only a level this CPU supports is
// ever called. TANDEM_CPU_LEVEL=portable|avx2|avx512|avx512bf16 caps the level the process
// starts with (read once, at the first kernel call); tests step through every level the CPU
// has with set_isa_level.
#pragma once

#include <string>

namespace tdm::cpu {

enum class IsaLevel : int {
    Portable = 0,    // plain C++ (the compiler may still use SSE2)
    Avx2 = 1,        // AVX2 + FMA + F16C
    Avx512 = 2,      // AVX-512 F/BW/VL (+ AVX2, FMA, F16C)
    Avx512Bf16 = 3,  // the above + avx512_bf16 (vdpbf16ps)
};

// The best level this CPU supports (CPUID), ignoring any cap.
IsaLevel detected_isa_level();

// The level the kernels use now: min(detected, TANDEM_CPU_LEVEL) until set_isa_level is called.
IsaLevel active_isa_level();

// Selects a level (clamped to what the CPU supports, whatever TANDEM_CPU_LEVEL said) and returns
// the level now active. For tests and benchmarks; not meant to be changed while kernels run.
IsaLevel set_isa_level(IsaLevel cap);

// "portable", "avx2", "avx512", "avx512bf16".
const char* isa_level_name(IsaLevel level);

// Parses a name as isa_level_name writes it; false if it is none of them.
bool parse_isa_level(const std::string& name, IsaLevel* level);

}  // namespace tdm::cpu
