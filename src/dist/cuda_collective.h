// Collectives between CUDA ranks (one GPU each, driven by the threads of one process): NCCL,
// opened at run time (libnccl.so.2), so tinyllm runs without NCCL until tensor parallelism
// over GPUs asks for it; and, for messages of up to `p2p_bytes`, our own one-kernel all-reduce
// over peer access (kernels/cuda/all_reduce_p2p.h).
#pragma once

#include <memory>
#include <vector>

#include "kernels/collective.h"

namespace tllm {

class Backend;

// One Collective per rank: rank r runs on GPU devices[r]. The sums run on each rank's stream
// (capturable into its CUDA graphs), in the tensor's dtype (f32, bf16 or f16) through NCCL as
// vLLM's all-reduce does, or in f32 over the ranks' bf16 / f32 values through the p2p kernel.
// nccl false: the p2p kernel takes every message (p2p_bytes must hold the largest; tests put
// two ranks on one GPU, which NCCL refuses).
std::vector<std::unique_ptr<Collective>> make_cuda_collectives(const std::vector<int>& devices, bool nccl,
                                                               size_t p2p_bytes);
// GPUs visible to this process (0 without CUDA or a GPU).
int visible_gpu_count();
// Attaches rank r's backend (its stream) once it exists; before that all_reduce_sum throws.
void bind_cuda_backend(Collective& c, Backend& backend);

}  // namespace tllm
