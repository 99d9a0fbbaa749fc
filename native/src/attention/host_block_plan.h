// A block-sparse plan (block_plan.h) that owns its arrays in host memory: what the CPU estimators
// produce and what the tests compare a device plan with (copy its row_ptr/cols to the host).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/block_grid.h"
#include "attention/block_plan.h"

namespace tdm {

struct HostBlockPlan {
    int32_t heads = 0;
    BlockGrid grid;
    std::vector<int32_t> row_ptr;  // [heads * q_blocks + 1]
    std::vector<int32_t> cols;     // active key blocks per row, ascending

    BlockPlanView view() const;

    int64_t rows() const { return int64_t(heads) * grid.q_blocks; }
    // Row of (query head h, absolute query block r).
    int64_t row(int32_t h, int32_t r) const { return int64_t(h) * grid.q_blocks + (r - grid.first_q_block); }
    bool contains(int32_t h, int32_t r, int32_t c) const;

    // Fraction of the call's causal (query block, key block) pairs that head h computes, in (0, 1].
    double density(int32_t h) const;
};

// Builds the CSR plan from a dense block mask mask[h][i][c] (i = query block row of the call,
// c < grid.k_blocks; nonzero = active), row-major [heads, q_blocks, k_blocks]. Blocks above the
// diagonal are dropped and the sink (0) and the diagonal are always added, so every row obeys
// block_plan.h whatever the mask says.
HostBlockPlan plan_from_mask(const uint8_t* mask, int32_t heads, const BlockGrid& grid);

// Every causal block of every row: dense attention as a plan.
HostBlockPlan full_plan(int32_t heads, const BlockGrid& grid);

// "" if `plan` obeys block_plan.h (row_ptr monotone, columns ascending and unique, each row holds
// 0 and its diagonal and nothing above it), otherwise what is wrong with it (tests and checks).
std::string plan_violation(const HostBlockPlan& plan);

}  // namespace tdm
