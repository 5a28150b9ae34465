// All-reduce of small messages between the GPUs of one process, without NCCL: each rank
// stages its tensor in a buffer of its own GPU, tells every peer through a flag in the peer's
// memory, waits for theirs, and sums all ranks' buffers, read over NVLink (peer access), in
// rank order, so every rank ends with the same bits. One kernel of one block per call; its
// epoch counter lives on the device, so the call replays inside CUDA graphs. For the decode
// steps' messages (a few KB per token), where NCCL's own protocol costs most of the time.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "core/tensor.h"

namespace tllm::cuda {

class P2pAllReduce {
 public:
  // One per rank; rank r's buffers on devices[r] (two ranks may share a GPU: tests). Each rank
  // takes messages of up to `capacity_bytes`. Throws naming the pair of GPUs without peer access.
  static std::vector<std::unique_ptr<P2pAllReduce>> create(const std::vector<int>& devices, size_t capacity_bytes);
  ~P2pAllReduce();
  bool fits(const Tensor& t) const;
  // t (f32 or bf16, on this rank's GPU) = the sum over the ranks, in place, on `stream`.
  void run(Tensor& t, cudaStream_t stream);

 private:
  struct Shared;
  P2pAllReduce(std::shared_ptr<Shared> s, int rank) : s_(std::move(s)), rank_(rank) {}
  std::shared_ptr<Shared> s_;
  int rank_;
};

}  // namespace tllm::cuda
