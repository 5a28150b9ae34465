// Free functions of the CPU mixture-of-experts ops (see Backend::moe_route / moe_experts in
// backend.h). CpuBackend::moe_experts (cpu/moe.cpp) groups tokens per expert and runs the
// experts through the backend's own linear, so every weight format linear accepts works.
#pragma once

#include <cstdint>

#include "kernels/cpu/cpu_ops.h"

namespace tllm::cpu {

// Router of T rows of E logits (f32): softmax in f32, the k largest probabilities (ties to
// the lower id, NaN first as torch orders it), optional renormalisation by their sum.
// ids [T, k], weights [T, k].
void moe_route(const float* logits, int64_t T, int64_t E, int64_t k, bool renormalize, int32_t* ids,
               float* weights, const Exec& ex);

// One row of the router: probabilities p[E] of the logits, and the top-k of them.
void moe_route_row(const float* logits, int64_t E, int64_t k, bool renormalize, float* p, int32_t* ids,
                   float* weights);

}  // namespace tllm::cpu
