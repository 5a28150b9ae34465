// Index maps of the grouped MoE GEMM (moe_gemm.cu), kept in plain C++ so that a host test
// (tests/kernels/test_moe_gemm_layout.cpp) can replay a whole tile through a model of
// cp.async, ldmatrix and mma.m16n8k16 as the PTX ISA defines them, without a GPU.
//
// Tile: BM = 64 rows (positions of one expert's pairs) x BN = 128 weight rows, BK = 32 per
// stage, 4 warps in a 2 (M) x 2 (N) grid, each warp 32 x 64 = 2 m16 x 8 n8 MMA tiles.
// Shared memory rows are BK + 8 bf16 (80 bytes): 16-byte aligned for cp.async/ldmatrix, and
// the 8 row addresses of one ldmatrix phase fall in distinct 16-byte bank groups.
// Gated (gate|up) tiles: smem B rows 0..63 are gate rows n0..n0+63 of the expert, rows
// 64..127 the matching up rows; warp_n owns features [32 warp_n, 32 warp_n + 32), its n8
// tiles 0..3 gate and 4..7 up, so each thread holds gate and up of the same output element
// and applies SiLU in registers.
#pragma once

#ifdef __CUDACC__
#define TLLM_HD __host__ __device__ __forceinline__
#else
#define TLLM_HD inline
#endif

namespace tllm::cuda::moe_gemm {

constexpr int BM = 64, BN = 128, BK = 32, STAGES = 4, THREADS = 128;
constexpr int LDS = BK + 8;  // smem row stride in bf16
constexpr int A_CHUNKS = BM * BK / 8 / THREADS;  // 16-byte chunks per thread per stage: 2
constexpr int B_CHUNKS = BN * BK / 8 / THREADS;  // 4
constexpr int SMEM_BYTES = STAGES * (BM + BN) * LDS * 2;

// Output features per block column: gated tiles produce BN / 2 SiLU outputs.
TLLM_HD int cols_per_block(bool gated) { return gated ? BN / 2 : BN; }

// Thread t's i-th 16-byte chunk of a stage: smem row and k offset (elements).
TLLM_HD int load_row(int t, int i) { return (t >> 2) + (THREADS / 4) * i; }
TLLM_HD int load_k(int t) { return (t & 3) * 8; }

// Expert weight row of smem B row j (0..BN-1) for a block whose first output column is n0;
// -1 when past N (the chunk is zero-filled).
TLLM_HD int b_weight_row(bool gated, int j, int n0, int N, int up_offset) {
  if (gated) {
    const int f = n0 + (j & (BN / 2 - 1));
    if (f >= N) return -1;
    return j < BN / 2 ? f : up_offset + f;
  }
  const int n = n0 + j;
  return n < N ? n : -1;
}

// ldmatrix.x4 row address supplied by `lane` for the A fragment of m16 tile mt at k step kk:
// matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15)
// = registers a0, a1, a2, a3 of mma.m16n8k16.
TLLM_HD int a_frag_row(int warp_m, int mt, int lane) { return warp_m * 32 + mt * 16 + (lane & 15); }
TLLM_HD int a_frag_col(int kk, int lane) { return kk + (lane >> 4) * 8; }

// First smem B row of the warp's n8 tile j (0..7).
TLLM_HD int b_tile_row(bool gated, int warp_n, int j) {
  return gated ? (j >> 2) * (BN / 2) + warp_n * 32 + (j & 3) * 8 : warp_n * 64 + j * 8;
}
// ldmatrix.x4 row address for n8 tiles 2jp and 2jp+1: matrices (tile 2jp, k 0-7),
// (tile 2jp, k 8-15), (tile 2jp+1, k 0-7), (tile 2jp+1, k 8-15) = b0, b1 of each tile.
TLLM_HD int b_frag_row(bool gated, int warp_n, int jp, int lane) {
  return b_tile_row(gated, warp_n, 2 * jp + (lane >> 4)) + (lane & 7);
}
TLLM_HD int b_frag_col(int kk, int lane) { return kk + ((lane >> 3) & 1) * 8; }

// Accumulator element c (0..3) of (mt, j) held by `lane`: its tile row, and its column
// relative to n0 (gated: the output feature; only j < 4 are written, j + 4 holds its up).
TLLM_HD int c_row(int warp_m, int mt, int lane, int c) { return warp_m * 32 + mt * 16 + (lane >> 2) + (c >> 1) * 8; }
TLLM_HD int c_col(bool gated, int warp_n, int j, int lane, int c) {
  return (gated ? warp_n * 32 + (j & 3) * 8 : warp_n * 64 + j * 8) + 2 * (lane & 3) + (c & 1);
}

}  // namespace tllm::cuda::moe_gemm
