// The instruction-set specific inner loops of the CPU ops. Every variant (scalar, avx2,
// avx512) implements the same list, declared once below; the op drivers (rms_norm.cpp,
// matmul.cpp, ...) handle checks, threading and scratch memory, and pick a variant with
// isa_kernel(). The scalar variants live next to their drivers; cpu/avx2 and cpu/avx512
// compile the SIMD ones with their -m flags (see kernels/CMakeLists.txt).
//
// Keep the SIMD translation units to raw loops over pointers: an inline function or
// template from a shared header instantiated there is compiled with AVX-512 and the
// linker may keep that copy for everyone.
#pragma once

#include <algorithm>

#include "kernels/cpu/cpu_ops.h"

namespace tllm::cpu {

// One linear call after its activations were laid out by linear_prepare_x.
struct LinearTask {
  const float* x = nullptr;  // [T, kp]: zero-padded to kp; for bf16 weights permuted per block
  int64_t kp = 0;
  const void* w = nullptr;  // [N, K]
  DType w_dtype = DType::F32;
  const float* bias = nullptr;  // [N] or null
  float* out = nullptr;         // [T, N]
  int64_t T = 0;
  int64_t N = 0;
  int64_t K = 0;
};

// A unit of attention work: queries [q_begin, q_begin + q_count) of sequence `seq` (0-based
// within the sequence) for every q head that reads kv head `kv_head`, over keys at positions
// [key_begin, key_end) (further limited per query by causality and the sliding window).
// Rows are ordered r = query * group + head_in_group.
struct AttentionItem {
  int seq = 0;
  int kv_head = 0;
  int q_begin = 0;
  int q_count = 0;
  int key_begin = 0;
  int key_end = 0;
  // Null: normalised rows go to p.out. Otherwise this item holds part of the keys: it
  // writes O / l to partial_out [rows, head_dim] and m + log(l) to partial_lse [rows]
  // (-inf where the row saw no key) for attention() to combine.
  float* partial_out = nullptr;
  float* partial_lse = nullptr;
};

// Floats of per-thread workspace attention_item needs for items of up to `rows` rows.
// SIMD variants work on chunks of at most 32 rows padded to whole vectors; the scalar one
// on all rows at once.
inline int64_t attention_workspace_floats(int64_t rows, int head_dim) {
  const int64_t dp = (head_dim + 15) / 16 * 16;
  const int64_t rp = (std::max<int64_t>(rows, 32) + 15) / 16 * 16;
  constexpr int64_t kt = 16;  // the widest key tile of any variant
  return 2 * rp * dp + 2 * kt * dp + rp * kt + 4 * rp + 64;
}

#define TLLM_CPU_ISA_KERNELS                                                                    \
  void to_f32(float* out, const void* src, DType src_dtype, int64_t n);                         \
  void from_f32(void* dst, DType dst_dtype, const float* src, int64_t n);                       \
  void rms_norm_row(float* out, const float* x, const float* w, int64_t n, float eps);          \
  void add_rms_norm_row(float* residual, const float* x, float* out, const float* w, int64_t n, \
                        float eps);                                                             \
  void silu_mul_row(float* out, const float* gate, const float* up, int64_t n);                 \
  float max_row(const float* x, int64_t n);                                                     \
  /* first i with x[i] >= v (n when none) */                                                    \
  int64_t first_at_least_row(const float* x, int64_t n, float v);                               \
  /* sum of exp(x[i] - shift) */                                                                \
  double sum_exp_row(const float* x, int64_t n, float shift);                                   \
  /* out[i] = exp(x[i] - shift); returns their sum */                                           \
  double exp_row(float* out, const float* x, int64_t n, float shift);                           \
  /* K rounded up to the block the linear kernel steps over */                                  \
  int64_t linear_padded_k(int64_t K);                                                           \
  void linear_prepare_x(const float* x, int64_t K, float* xp, int64_t kp, DType w_dtype);       \
  /* output columns [n_begin, n_end) for every row of the task */                               \
  void linear_block(const LinearTask& t, int64_t n_begin, int64_t n_end);                       \
  /* ws: attention_workspace_floats(rows, head_dim) floats, 64-byte aligned */                  \
  void attention_item(const AttentionParams& p, const AttentionItem& it, float* ws);

namespace scalar {
TLLM_CPU_ISA_KERNELS
}
namespace avx2 {
TLLM_CPU_ISA_KERNELS
}
namespace avx512 {
TLLM_CPU_ISA_KERNELS
}

// isa_kernel(isa, to_f32) is the variant of to_f32 for isa.
#define isa_kernel(isa, fn)                                                       \
  ((isa) == ::tllm::cpu::Isa::Avx512 ? &::tllm::cpu::avx512::fn                   \
   : (isa) == ::tllm::cpu::Isa::Avx2 ? &::tllm::cpu::avx2::fn                     \
                                     : &::tllm::cpu::scalar::fn)

}  // namespace tllm::cpu
