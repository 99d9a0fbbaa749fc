#include "attention/host_block_plan.h"

#include <algorithm>

namespace tdm {

BlockPlanView HostBlockPlan::view() const {
    BlockPlanView v;
    v.heads = heads;
    v.block_size = grid.block_size;
    v.first_q_block = grid.first_q_block;
    v.q_blocks = grid.q_blocks;
    v.k_blocks = grid.k_blocks;
    v.row_ptr = row_ptr.data();
    v.cols = cols.data();
    return v;
}

bool HostBlockPlan::contains(int32_t h, int32_t r, int32_t c) const {
    const int64_t i = row(h, r);
    return std::binary_search(cols.begin() + row_ptr[i], cols.begin() + row_ptr[i + 1], c);
}

double HostBlockPlan::density(int32_t h) const {
    const int64_t first = row(h, grid.first_q_block);
    const int64_t active = row_ptr[first + grid.q_blocks] - row_ptr[first];
    const int64_t causal = grid.causal_pairs();
    return causal > 0 ? double(active) / double(causal) : 1.0;
}

HostBlockPlan plan_from_mask(const uint8_t* mask, int32_t heads, const BlockGrid& grid) {
    HostBlockPlan p;
    p.heads = heads;
    p.grid = grid;
    p.row_ptr.assign(1, 0);
    p.row_ptr.reserve(size_t(heads) * grid.q_blocks + 1);
    for (int32_t h = 0; h < heads; ++h) {
        for (int32_t i = 0; i < grid.q_blocks; ++i) {
            const int32_t r = grid.q_block(i);
            const uint8_t* m = mask + (int64_t(h) * grid.q_blocks + i) * grid.k_blocks;
            for (int32_t c = 0; c <= r; ++c)
                if (c == 0 || c == r || m[c]) p.cols.push_back(c);
            p.row_ptr.push_back(int32_t(p.cols.size()));
        }
    }
    return p;
}

HostBlockPlan full_plan(int32_t heads, const BlockGrid& grid) {
    std::vector<uint8_t> mask(size_t(heads) * grid.q_blocks * grid.k_blocks, 1);
    return plan_from_mask(mask.data(), heads, grid);
}

std::string plan_violation(const HostBlockPlan& p) {
    if (p.row_ptr.size() != size_t(p.rows() + 1)) return "row_ptr has the wrong length";
    if (p.row_ptr.front() != 0 || size_t(p.row_ptr.back()) != p.cols.size())
        return "row_ptr does not span cols";
    for (int32_t h = 0; h < p.heads; ++h) {
        for (int32_t i = 0; i < p.grid.q_blocks; ++i) {
            const int32_t r = p.grid.q_block(i);
            const int64_t row = p.row(h, r);
            const int32_t b = p.row_ptr[row], e = p.row_ptr[row + 1];
            const std::string where =
                "head " + std::to_string(h) + " query block " + std::to_string(r) + ": ";
            if (e <= b) return where + "empty row";
            for (int32_t k = b + 1; k < e; ++k)
                if (p.cols[k] <= p.cols[k - 1]) return where + "columns not strictly ascending";
            if (p.cols[b] != 0) return where + "no sink block 0";
            if (p.cols[e - 1] != r)
                return where + (p.cols[e - 1] > r ? "a block above the diagonal" : "no diagonal block");
        }
    }
    return "";
}

}  // namespace tdm
