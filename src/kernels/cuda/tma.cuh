// The Tensor Memory Accelerator (sm_90): tensor maps of row-major bf16 matrices read in
// boxes of [box_rows x 64 columns] in the 128-byte swizzle that wgmma's K-major shared-memory
// descriptors read (wgmma.cuh), and the 2-D tile copy that fills a box on an mbarrier. Facts
// from the PTX ISA (cp.async.bulk.tensor) and the driver API (cuTensorMapEncodeTiled): rows
// and columns past the matrix arrive as zeros, and the copy always completes the whole box's
// bytes as transactions; the row pitch must be a multiple of 16 bytes.
#pragma once

#include <cuda.h>

#include <cstdint>

namespace tllm::cuda {

// [rows, cols] bf16 at base (16-byte aligned, cols % 8 == 0), boxes of box_rows (<= 256) x 64
// columns. Host only; the driver entry point is looked up on the first call (call it once
// outside graph capture, e.g. from an op's init).
CUtensorMap tma_map_bf16(const void* base, int64_t rows, int64_t cols, int box_rows, const char* who);
// Looks the driver's encoder up now (an op's init, before any graph capture may need it).
void tma_init();

#ifdef __CUDACC__
// The box at (column c0, row c1) into shared memory at dst (1024-aligned for the swizzle),
// completing on mbarrier `bar`.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, int c0, int c1, uint32_t bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::"r"(
          dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
#endif
}
#endif

}  // namespace tllm::cuda
