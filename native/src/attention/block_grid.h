// The geometry of one prefill call on the absolute-position block grid of block_plan.h: which
// query blocks the call computes, how many key blocks they can see, and how many causal
// (query block, key block) pairs that makes (the denominator of the attention density).
//
// The call's queries are positions pos0 .. pos0 + n_new - 1; its keys are 0 .. pos0 + n_new - 1
// (everything already in the cache plus the call's own). Query block r holds the call's queries
// in [r*B, (r+1)*B); key block c holds keys [c*B, min((c+1)*B, keys)). Plain arithmetic only, so
// the CUDA twins include it as it is.
#pragma once

#include <algorithm>
#include <cstdint>

namespace tdm {

struct BlockGrid {
    int64_t pos0 = 0;            // position of the call's first query
    int64_t n_new = 0;           // queries in the call
    int32_t block_size = 0;      // B
    int32_t first_q_block = 0;   // pos0 / B
    int32_t q_blocks = 0;        // query blocks the call touches
    int32_t k_blocks = 0;        // key blocks up to the last query: last query block + 1

    static BlockGrid of(int64_t pos0, int64_t n_new, int32_t block_size) {
        BlockGrid g;
        g.pos0 = pos0;
        g.n_new = n_new;
        g.block_size = block_size;
        g.first_q_block = static_cast<int32_t>(pos0 / block_size);
        const int32_t last = static_cast<int32_t>((pos0 + n_new - 1) / block_size);
        g.q_blocks = n_new > 0 ? last - g.first_q_block + 1 : 0;
        g.k_blocks = n_new > 0 ? last + 1 : 0;
        return g;
    }

    int64_t keys() const { return pos0 + n_new; }
    // Absolute block of the call's query block row `i` (0 .. q_blocks-1).
    int32_t q_block(int32_t i) const { return first_q_block + i; }
    // The call's query rows (0-based within the call) of absolute query block r: [lo, hi).
    int64_t q_row_lo(int32_t r) const { return std::max<int64_t>(int64_t(r) * block_size, pos0) - pos0; }
    int64_t q_row_hi(int32_t r) const {
        return std::min<int64_t>(int64_t(r + 1) * block_size, pos0 + n_new) - pos0;
    }
    // Keys of key block c: [lo, hi).
    int64_t key_lo(int32_t c) const { return int64_t(c) * block_size; }
    int64_t key_hi(int32_t c) const { return std::min<int64_t>(int64_t(c + 1) * block_size, keys()); }
    // Causal (query block, key block) pairs of the call: sum over its query blocks r of r + 1.
    int64_t causal_pairs() const {
        const int64_t a = first_q_block + 1, b = first_q_block + q_blocks;
        return (a + b) * q_blocks / 2;
    }
};

}  // namespace tdm
