// Views of weights as the kernels see them. Memory is owned elsewhere (a memory-mapped
// safetensors file, or a buffer the model converted at load); a view only points into it.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace tdm {

// A row-major matrix [rows, cols] of any stored dtype. Hugging Face stores a Linear layer's
// weight as [out_features, in_features], so y = x W^T reads one row of W per output feature.
struct MatrixView {
    const void* data = nullptr;
    DType dtype = DType::F32;
    int64_t rows = 0;
    int64_t cols = 0;

    const uint8_t* row_ptr(int64_t r) const {
        return static_cast<const uint8_t*>(data) + static_cast<size_t>(r * cols) * dtype_size(dtype);
    }
    bool empty() const { return data == nullptr; }
};

// A vector of any stored dtype (norm weights, biases).
struct VectorView {
    const void* data = nullptr;
    DType dtype = DType::F32;
    int64_t size = 0;
    bool empty() const { return data == nullptr; }
};

// One output of a linear layer: y[m, :] = x[m, :] W^T + bias, y with row stride ldy. Several
// projections of the same input (q, k, v) go to a backend together, so that a GPU streams them
// in one launch.
struct Projection {
    MatrixView weight;
    VectorView bias;  // empty: none
    float* y = nullptr;
    int64_t ldy = 0;
};

// The input of a sub-layer's projections: the activations x [M, ldx], or - with `norm` set - the
// sub-layer's RMSNorm of them, rmsnorm(x) * norm, which a backend may compute on the fly (a GPU
// does, inside the decode GEMV); `scratch` [M, K] is where the default writes it.
struct LayerInput {
    const float* x = nullptr;
    int64_t M = 0, ldx = 0;
    VectorView norm;  // empty: x as it is
    float eps = 0.0f;
    float* scratch = nullptr;
};

}  // namespace tdm
