// Naive references of the quantized-weight ops, for tests only: written from the
// arithmetic of LinearWeight (backend.h) and the fast-path description of
// kernels/cpu/quant_ops.h, on host tensors in the checkpoint-independent QuantizedMatrix
// form (never the packed layouts), double-precision sums.
#pragma once

#include "kernels/backend.h"

namespace tllm::ref {

// W[r, c] = scales[r, g] * codes[r, c] + offsets[r, g] as f32 [rows, cols] (the product
// and the sum rounded to f32 in that order, as a dequantizing kernel does).
Tensor dequantize(const QuantizedMatrix& m);

// out[T, N] = x[T, K] @ dequantize(m)^T (+ bias), double sums rounded to f32 at the end.
// Also returns per output element sum_k |x * w| (for error bounds) when abs_out is given.
void quant_linear(Tensor& out, const Tensor& x, const QuantizedMatrix& m, const Tensor& bias,
                  Tensor* abs_out = nullptr);

// The activations the CPU fast path multiplies with: per block of 32 columns of each row,
// d = max|x| / 127 and x_hat = d * round_half_even(x * (127 / max|x|)) (0 for a zero block).
Tensor round_activations_int8(const Tensor& x);

}  // namespace tllm::ref
