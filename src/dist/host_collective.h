// Collectives between CPU ranks: the threads of one process, through host memory.
#pragma once

#include <memory>
#include <vector>

#include "kernels/collective.h"

namespace tllm {

class Backend;

// One Collective per rank of an n-rank group. all_reduce_sum takes f32 tensors in host
// memory: rank r adds the r-th n-th of the elements over the ranks in rank order and writes the
// sum into every rank's tensor, so every rank ends with the same bits. Device tensors (GPU
// ranks without NCCL, TLLM_TP_COLLECTIVE=host) go through host memory: downloaded by the
// rank's bound backend, summed in f32, copied back in their dtype (synchronous: no CUDA
// graphs). abort() (any rank's) makes every waiting and later call throw, so that one rank's
// error cannot leave the others waiting forever.
class HostCollective : public Collective {
 public:
  virtual void abort() = 0;
  virtual void bind(Backend& backend) = 0;
};
std::vector<std::unique_ptr<HostCollective>> make_host_collectives(int n);

}  // namespace tllm
