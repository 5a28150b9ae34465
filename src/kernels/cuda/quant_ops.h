// Quantized-weight kernels of the CUDA backend (W4A16 / W8A16; weights in the CUDA layout of
// kernels/quant_layout.h, activations bf16, f32 accumulation).
//
// FP8 weights (QuantScheme::Fp8E4M3, p.fp8) are e4m3 bytes in the 8-bit layout; they become
// exact bf16 (or f16) operands of their own value (quant_common.cuh, e4m3x2_bf16), C = 0 and
// no offset term.
// The codes go into mma.m16n8k16 as exact bf16 integers: a 4-bit code q becomes 128 + q
// (0x4300 | q), an 8-bit code q = 16 h + l two operands 128 + l and 2048 + 16 h, so that an
// MMA over a 16-wide k step sums (q + C) x with C = 128 or 2176. Per segment of k (a group,
// or a layout tile when groups are longer) the f32 partial sums are scaled:
//   out += scale * acc + (offset - C * scale) * X,   X = sum of x over the segment
// (X from an MMA with an all-ones A in the skinny kernel, from shared memory in the GEMM).
// The x-staged decode kernel takes 8-bit codes as f16 operands instead (f16 0x64qq = 1024 + q,
// one MMA per k step), with x staged as f16 x 2^-E per segment and C = 1024.
//   quant_gemv:  T <= 16 tokens (the decode path, quant_gemv.cu); streams the packed weights
//                once: a block of 8 warps takes 1, 2, 4 or 8 panels, the warps of a panel
//                split its k tiles, each lane keeps 4 tiles of codes (128 bytes) in flight,
//                scales and offsets are staged in shared memory per warp (a K too long for
//                that, in small groups, falls back to quant_gemm).
//   quant_gemm:  any T; 64 rows x 64 tokens per block, codes and activations staged in shared
//                memory with cp.async (double buffered), activations through ldmatrix.
//   quant_dequantize: rows of W to bf16 [rows, K] (prefill: dequantize + cuBLASLt).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "kernels/cuda/cuda_ops.h"

namespace tllm {
struct LinearWeight;
}

namespace tllm::cuda {

struct QuantGemmParams {
  const uint8_t* codes = nullptr;  // [panels][ktiles][1024]
  const void* scales = nullptr;    // [panels][groups][16], f16 or f32
  const void* offsets = nullptr;
  bool scales_f16 = false;
  int bits = 4;
  bool fp8 = false;                // codes are e4m3 bytes (bits 8): W = scale x e4m3(q), offsets unused
  int N = 0;                       // out_features
  int K = 0;                       // in_features (multiple of 8)
  int groups = 1;
  int group_size = 0;              // >= K when groups == 1
  int ktiles = 0;                  // padded K / tile
  const __nv_bfloat16* x = nullptr;  // [T, K]
  int T = 0;
  void* out = nullptr;             // [T, N] bf16 or f32
  DType out_dtype = DType::BF16;
  const void* bias = nullptr;      // [N] f32 or bf16, or null
  DType bias_dtype = DType::F32;
  // quant_gemv only: 16-row panels per block of 8 warps (1, 2, 4 or 8; the other warps
  // split each panel's k tiles); 0 lets the launcher choose from N and the SM count.
  int gemv_panels_per_block = 0;
  // quant_gemv only: which kernel (tests and benchmarks force one; GemvKernel::Auto picks).
  // XStaged: x staged in shared memory, 3 blocks per SM (80 registers, 3 tiles in flight);
  // XStagedDeep (8-bit codes): the same at 2 blocks per SM (128 registers, 4 tiles). With
  // 8-bit codes both stage x as f16 (x 2^-E per scale segment) and take the codes as f16
  // operands.
  enum class GemvKernel : uint8_t { Auto, XFromL1, XStaged, XStagedDeep } gemv_kernel = GemvKernel::Auto;
  // quant_gemv epilogues (bf16 out; the bits of the unfused ops):
  // silu (T <= 8): the rows are [gate (I) | up (I)], I = N / 2 a multiple of 16, and out is
  //   act [T, I] = silu(gate) * up (as quant_gemv + silu_mul);
  // norm (counter set, T <= kGemvNormMaxTokens, rms_norm_threads(N) <= 256): out [T, N]
  //   followed by norm's residual add + RMSNorm (as quant_gemv + add_rms_norm).
  // rope_kv (T <= 8, 2 panels per block): the rows are q|k|v heads (rope: p.N = (n_q + 2 n_kv)
  //   head_dim, head_dim 32, 64, 128 or 256, rotary_dim = head_dim, split-half, no q/k norms), and out
  //   is qkv with q and k rotated, k and v written to their cache slots (as quant_gemv +
  //   qk_norm_rope_kv_write; rope.qkv is not read, out is the output). A block of a q or k
  //   head pairs its panel of dims [16 j, 16 j + 16) with the partner panel D/2 later, so
  //   both halves of every rotated pair end in one block (as the SiLU epilogue pairs gate and
  //   up panels); v heads' panels go two per block in order.
  bool silu = false;
  GemvNorm norm{};
  bool rope_kv = false;
  QkNormRopeParams rope{};
};

// What quant_gemv launches for p: panels per block and the kernel (x read from L1, or staged
// in shared memory at T = 1); gemm: a very long K in small groups whose scales do not fit
// shared memory goes to quant_gemm instead.
struct QuantGemvChoice {
  int panels_per_block = 1;
  QuantGemmParams::GemvKernel kernel = QuantGemmParams::GemvKernel::XFromL1;  // never Auto
  bool gemm = false;
};

constexpr int kQuantGemvMaxTokens = 16;

// Empty when the CUDA kernels take this shape, else why not (K % 8, group size vs tile).
std::string quant_unsupported_reason(int bits, int64_t K, int64_t group_size, int64_t groups);

void quant_gemv(const QuantGemmParams& p, cudaStream_t stream);
QuantGemvChoice quant_gemv_choice(const QuantGemmParams& p);
// Whether quant_gemv takes the norm epilogue for T tokens of N outputs.
bool quant_gemv_norm_supported(int T, int N);
// Whether quant_gemv takes the rope_kv epilogue for T tokens of these heads (rotary_dim =
// head_dim, split-half, no q/k norms; the caller checks those).
bool quant_gemv_rope_supported(int T, int n_q_heads, int n_kv_heads, int head_dim);
void quant_gemm(const QuantGemmParams& p, cudaStream_t stream);
// The grouped MoE forms of quant_gemm (moe_quant_experts_prefill, moe_ops.h) take their
// blocks from moe_align's tile list (MoeMeta): tile y is <= 64 positions of one expert.
struct QuantMoeTiles {
  const int32_t* offsets = nullptr;      // [E + 1]
  const int32_t* tile_expert = nullptr;  // [max_tiles]
  const int32_t* tile_start = nullptr;   // [max_tiles]
  const int32_t* counts = nullptr;       // [2]: counts[1] tiles are routed
  const int32_t* sorted_pair = nullptr;  // [P] position -> pair (token = pair / top_k)
  int top_k = 1;
  int I = 0;  // the experts' intermediate size (gate|up rows per expert: 2 I)
};
// The weight fields of QuantGemmParams for a quantized weight packed by CudaBackend, and the
// check that it is one (CUDA tensors in the CUDA layout; throws naming `op`).
QuantGemmParams quant_params(const LinearWeight& w);
void check_quant_packed(const LinearWeight& w, const char* op);
// w[r, k] (bf16, row stride K) for rows [0, N) of the weight.
void quant_dequantize(const QuantGemmParams& p, __nv_bfloat16* w, cudaStream_t stream);
// out[t, :] = dequantized row tokens[t] (bf16 or f32 out).
void quant_embedding(const QuantGemmParams& table, const int32_t* tokens, int T, void* out, DType out_dtype,
                     cudaStream_t stream);

}  // namespace tllm::cuda
