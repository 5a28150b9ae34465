// Collective operations between the ranks of a tensor-parallel group (one Backend per rank,
// each rank on its own thread). The model forward calls them; src/dist implements them (host
// memory for CPU ranks, NCCL for CUDA ranks) and runs the ranks.
#pragma once

#include "core/tensor.h"

namespace tllm {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // t = the sum of every rank's t (same shape and dtype on every rank), in place, on this
  // rank's backend (asynchronous on CUDA, on its stream; capturable into a CUDA graph).
  // Every rank calls the same collectives in the same order.
  virtual void all_reduce_sum(Tensor& t) = 0;
};

}  // namespace tllm
