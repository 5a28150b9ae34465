// Naive references of the mixture-of-experts ops (Backend::moe_route, Backend::moe_experts),
// for tests only: host tensors, plain loops, double-precision arithmetic, one token at a
// time, every expert computed on its own (no grouping, no permutation).
#pragma once

#include "kernels/backend.h"

namespace tllm::ref {

// Softmax of each row of router_logits [T, E] (f32/bf16/f16) in double, the k largest
// (ties to the lower id, NaN above everything as in torch), optional renormalisation.
// topk_ids i32 [T, k], topk_weights f32 [T, k].
void moe_route(Tensor& topk_ids, Tensor& topk_weights, const Tensor& router_logits, bool renormalize);

// out[T, H] (f32/bf16) = sum_j w[t, j] * expert_{ids[t, j]}(x[t]) (+ the gated shared expert),
// ids outside [0, E) skipped. Weights dense f32/bf16/f16 (for quantized experts, pass their
// dequantized form).
void moe_experts(Tensor& out, const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                 const MoeExperts& w);

}  // namespace tllm::ref
