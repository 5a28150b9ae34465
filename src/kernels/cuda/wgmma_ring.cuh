// The consumer side of a TMA -> wgmma stage ring (gemm_silu_sm90.cu, moe_gemm_sm90.cu): one
// warpgroup's k loop over a tile. Stage s of the ring holds, from ring + s * STAGE_BYTES, the
// A rows [a_off, a_off + 64 x 128 B) and 256 B rows from b_off, each [rows x 64 bf16] in the
// 128-byte swizzle; "full" mbarrier s completes when the stage has landed. Only compiled into
// sm_90a device code (callers guard with __CUDA_ARCH_FEAT_SM90_ALL).
#pragma once

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace tllm::cuda {

// acc = A B^T over nk k steps of 64 (one wgmma.m64n256k16 per 16), taking stages it, it + 1,
// ... of the ring (it advances by nk). release(stage) runs on lane 0 of every warp once the
// MMAs that read the stage have retired (the previous step's after each commit, the last one
// at the end), so the producer may refill it.
template <int STAGES, int STAGE_BYTES, typename Release>
__device__ __forceinline__ void wgmma_ring_n256(float (&acc)[128], uint32_t ring, uint32_t full, uint32_t a_off,
                                                uint32_t b_off, int nk, int& it, Release&& release) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  const bool lane0 = threadIdx.x % 32 == 0;
  for (int kb = 0; kb < nk; ++kb, ++it) {
    const int s = it % STAGES;
    mbar_wait(full + 8 * s, (it / STAGES) & 1);
    const uint32_t a = ring + s * STAGE_BYTES + a_off, b = ring + s * STAGE_BYTES + b_off;
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
      wgmma_m64n256k16_ss(acc, wgmma_desc_sw128(a + 32 * kk, 16, 1024), wgmma_desc_sw128(b + 32 * kk, 16, 1024),
                          kb > 0 || kk > 0);
    wgmma_commit();
    wgmma_wait<1>();  // the previous k step's MMAs have retired: its stage is free
    if (kb > 0 && lane0) release((it - 1) % STAGES);
  }
  wgmma_wait<0>();
  if (lane0) release((it - 1) % STAGES);
#endif
}

}  // namespace tllm::cuda
