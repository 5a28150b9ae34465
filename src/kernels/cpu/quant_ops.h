// Quantized-weight ops of the CPU backend (weights packed in the CPU layout of
// kernels/quant_layout.h; arithmetic in LinearWeight, backend.h).
//
// Fast path (default): each token's activations are rounded to int8 per block of 32
// (x ~ d_j * xq, d_j = max|x| / 127 over the block), so that
//   out[t, n] = sum_g ( sum_{j in g} fl(fl(isum_j) * scale[n, g] * d_j) + offset[n, g] * X[t, g] )
// with isum_j = sum_{k in block j} q[n, k] * xq[t, k] exact in int32 (VNNI vpdpbusd on
// AVX-512, AMX TDPBSUD for 16-token tiles where the CPU has AMX-INT8, vpmaddubsw on AVX2)
// and X[t, g] = sum_{j in g} d_j * sum_k xq[t, k]: the exact
// product of the dequantized weights with the rounded activations, up to f32 rounding in a
// fixed order, so every instruction set gives bit-identical results.
// Exact path (LinearWeight::f32_activations): dequantized weight rows times f32 activations.
#pragma once

#include <cstdint>
#include <limits>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_ops.h"

namespace tllm::cpu {

// out[T, N] = x[T, K] @ W^T (+ bias[N]) for a quantized W in the CPU layout.
// use_vnni = false forces the AVX-512 kernels onto their non-VNNI instructions, use_amx =
// false keeps them off the AMX tiles (tests: every path gives the same bits).
void quant_linear(float* out, const float* x, int64_t T, const LinearWeight& w, const float* bias,
                  const Exec& ex, bool use_vnni = true, bool use_amx = true);
// out[t, :] = row tokens[t] of a quantized table [vocab, hidden], dequantized to f32.
void quant_embedding(float* out, const LinearWeight& table, const int32_t* tokens, int64_t T, const Exec& ex);

// One quant_linear call, as the instruction-set kernels see it.
struct QuantTask {
  const uint8_t* codes = nullptr;  // panels of 16 rows
  int64_t panel_bytes = 0;         // 16 * row bytes
  int bits = 8;
  bool vnni = false;               // AVX-512: the machine has AVX512-VNNI
  bool amx = false;                // AVX-512: 16-token tiles on AMX (TDPBSUD), the same integers; implies vnni
  const void* scales = nullptr;    // [panels][groups][16]
  const void* offsets = nullptr;
  bool scales_f16 = false;
  int64_t groups = 1;
  int64_t blocks_per_group = 0;    // blocks of 32 columns per group
  int64_t nblocks = 0;             // padded columns / 32
  int64_t kp = 0;                  // padded columns
  // fast path
  const int8_t* xq = nullptr;      // [T, kp]
  const float* d = nullptr;        // [T, nblocks]
  const float* xsum = nullptr;     // [T, groups]
  const int32_t* bsum = nullptr;   // [T, nblocks]: sum of each block's xq
  // exact path
  const float* x = nullptr;        // [T, K]
  int64_t K = 0;
  const float* bias = nullptr;     // [N] or null
  float* out = nullptr;            // [T, N]
  int64_t T = 0;
  int64_t N = 0;
};

// A block of 32 activations holding an infinity or a NaN has no int8 form: its xq and bsum
// are 0 and its d NaN, so every output that reads it is NaN, as the f32 product would be.
// (Rounding such a block converted NaN to int32's "indefinite" INT_MIN, whose sum overflowed:
// undefined behaviour, and outputs that were numbers.)
inline void poison_block(int8_t* xq, float* d, int32_t* bsum) {
  for (int k = 0; k < 32; ++k) xq[k] = 0;
  *d = std::numeric_limits<float>::quiet_NaN();
  *bsum = 0;
}

#define TLLM_CPU_QUANT_KERNELS                                                                    \
  /* xq[kp] = round(x * 127 / max|x|) per block of 32 (zero beyond K), d[kp / 32] = max / 127,  \
     bsum[kp / 32] = sum of the block's xq; a block with a non-finite x: poison_block */         \
  void quant_prepare_acts(const float* x, int64_t K, int64_t kp, int8_t* xq, float* d, int32_t* bsum); \
  /* fast path: output rows of panels [p_begin, p_end) for every token */                        \
  void quant_panels(const QuantTask& t, int64_t p_begin, int64_t p_end);                        \
  /* exact path; ws holds 20 * kp floats */                                                      \
  void quant_panels_f32(const QuantTask& t, int64_t p_begin, int64_t p_end, float* ws);

namespace scalar {
TLLM_CPU_QUANT_KERNELS
}
namespace avx2 {
TLLM_CPU_QUANT_KERNELS
}
namespace avx512 {
TLLM_CPU_QUANT_KERNELS
}

}  // namespace tllm::cpu
