// A block-sparse attention plan: which key blocks each (query head, query block) attends to.
//
// Blocks live on the absolute-position grid of the sequence: key block c holds keys
// [c*B, (c+1)*B) and query block r holds the queries at positions [r*B, (r+1)*B) that this call
// computes (the call's queries are positions pos0 .. pos0+n-1, so its first and last query blocks
// may be partial). Query block r's diagonal block is key block r; causality inside it is masked
// per token. The plan is compressed sparse rows over (head, query block):
//   row index   = head * q_blocks + (r - first_q_block)
//   cols[row_ptr[row] .. row_ptr[row+1])  = active key blocks of that row, ascending,
//   always containing 0 (the attention sink) and r (the diagonal), never a block above r.
// XAttention and FlexPrefill differ only in how they fill it; one block-sparse attention kernel
// per backend consumes it. The pointers are memory of the backend that built the plan.
#pragma once

#include <cstdint>

namespace tdm {

struct BlockPlanView {
    int32_t heads = 0;          // query heads
    int32_t block_size = 0;     // B
    int32_t first_q_block = 0;  // pos0 / B
    int32_t q_blocks = 0;       // query blocks of this call
    int32_t k_blocks = 0;       // key blocks up to the last query: last_q_block + 1
    const int32_t* row_ptr = nullptr;  // [heads * q_blocks + 1]
    const int32_t* cols = nullptr;     // [row_ptr[heads * q_blocks]]
};

}  // namespace tdm
