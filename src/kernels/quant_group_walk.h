// Where a warp's scale groups end as it walks its k range one 16-wide MMA step at a time,
// without an integer division per step. The quantized MoE decode kernel (cuda/moe_quant.cu)
// takes the group size at run time; `(k + 16) % group_size` and `k / group_size` at every
// step were ~90 division sequences per 4 k tiles, most of the kernel's instructions (ncu,
// run 223). Shared by host and device so that the CPU tests check it against the divisions.
#pragma once

#if defined(__CUDACC__)
#define TLLM_HOST_DEVICE __host__ __device__
#else
#define TLLM_HOST_DEVICE
#endif

namespace tllm::quant {

struct GroupWalk {
  int group;  // the group of the next step (k / group_size; not clamped to the row's groups)
  int left;   // steps from the next one to its group's last, that one included
  int steps;  // steps per group (group_size / 16)

  // From the step at k0 (a multiple of 16); group_size is a multiple of 16.
  TLLM_HOST_DEVICE GroupWalk(int k0, int group_size)
      : group(k0 / group_size), left((group_size - k0 % group_size) / 16), steps(group_size / 16) {}

  // Passes one step; true when it was its group's last ((k + 16) % group_size == 0).
  TLLM_HOST_DEVICE bool step() {
    if (--left > 0) return false;
    ++group;
    left = steps;
    return true;
  }
};

}  // namespace tllm::quant
