// Collectives between CUDA ranks (one GPU each, driven by the threads of one process) through
// NCCL. libnccl.so.2 is opened at run time, so tinyllm runs without NCCL until tensor
// parallelism over GPUs is asked for; then a missing library is a clear error.
#pragma once

#include <memory>
#include <vector>

#include "kernels/collective.h"

namespace tllm {

class Backend;

// One Collective per rank: rank r runs on GPU devices[r]. The sums run on each rank's stream
// (capturable into its CUDA graphs), in the tensor's dtype (f32, bf16 or f16), as vLLM's
// all-reduce does.
std::vector<std::unique_ptr<Collective>> make_nccl_collectives(const std::vector<int>& devices);
// GPUs visible to this process (0 without CUDA or a GPU).
int visible_gpu_count();
// Attaches rank r's backend (its stream) once it exists; before that all_reduce_sum throws.
void bind_nccl_backend(Collective& c, Backend& backend);

}  // namespace tllm
