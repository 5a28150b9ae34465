// TEMPORARY: forwards to the scalar variants until the SIMD kernels land.
#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu::avx2 {
void to_f32(float* out, const void* src, DType d, int64_t n) { scalar::to_f32(out, src, d, n); }
void from_f32(void* dst, DType d, const float* src, int64_t n) { scalar::from_f32(dst, d, src, n); }
void rms_norm_row(float* out, const float* x, const float* w, int64_t n, float eps) { scalar::rms_norm_row(out, x, w, n, eps); }
void add_rms_norm_row(float* r, const float* x, float* out, const float* w, int64_t n, float eps) { scalar::add_rms_norm_row(r, x, out, w, n, eps); }
void silu_mul_row(float* out, const float* g, const float* u, int64_t n) { scalar::silu_mul_row(out, g, u, n); }
float max_row(const float* x, int64_t n) { return scalar::max_row(x, n); }
double sum_exp_row(const float* x, int64_t n, float s) { return scalar::sum_exp_row(x, n, s); }
int64_t linear_padded_k(int64_t K) { return scalar::linear_padded_k(K); }
void linear_prepare_x(const float* x, int64_t K, float* xp, int64_t kp, DType d) { scalar::linear_prepare_x(x, K, xp, kp, d); }
void linear_block(const LinearTask& t, int64_t b, int64_t e) { scalar::linear_block(t, b, e); }
void attention_item(const AttentionParams& p, const AttentionItem& it, float* ws) { scalar::attention_item(p, it, ws); }
}  // namespace tllm::cpu::avx2
