// Tensor parallelism: one model over n devices of one machine, one thread per rank.
//
// Rank r holds its share of every layer (model/qwen2.cpp: the heads, the MLPs' inner
// dimension) and its own KV cache with its share of the KV heads; the o and down projections
// end in an all-reduce (NCCL between GPUs, host memory between CPU ranks). Every rank runs
// the same forward on the same batch; rank 0's backend is the engine's (sampling, logits), and
// the model returned here looks like one CausalLM to the engine.
//
// One process with a thread per rank, not vLLM's process per GPU: the ranks share the
// tokenizer, scheduler and checkpoint mapping, a forward is one function call per rank, and
// NCCL drives the GPUs of one process as well as of many.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "model/model.h"

namespace tllm {

// Makes the backend of a rank >= 1 on the rank's own thread (so its CUDA device is current
// there): for GPU `device` (rank r's is r unless TLLM_TP_DEVICES says otherwise; CPU ranks
// ignore it).
using RankBackendFactory = std::function<std::unique_ptr<Backend>(int device)>;

// `cfg` is the whole model's config; rank 0 runs on `rank0` (a CUDA backend on device 0, or a
// CPU backend), ranks 1..n-1 on backends from `make_backend`. Throws naming the config field
// that n does not divide, or the format that cannot be sharded.
std::unique_ptr<CausalLM> load_tensor_parallel(const std::string& dir, const ModelConfig& cfg, Backend& rank0,
                                               const ModelLoadOptions& opts, int n,
                                               const RankBackendFactory& make_backend);

}  // namespace tllm
