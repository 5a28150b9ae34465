// 16 x f32 vector API of the AVX-512 kernels (the shared *.inc kernels are written
// against it). Included inside namespace tllm::cpu::avx512 after <immintrin.h>.
#pragma once

constexpr int kLanes = 16;
using vf = __m512;
// Linear tile: kTileM activation rows x kTileN weight rows (16 accumulators + 8 weight
// vectors + 2 activation vectors of the 32 registers).
constexpr int kTileM = 4;
constexpr int kTileN = 4;

static inline vf vzero() { return _mm512_setzero_ps(); }
static inline vf vset1(float x) { return _mm512_set1_ps(x); }
static inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
static inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
static inline __mmask16 lanes_mask(int n) { return static_cast<__mmask16>(n >= 16 ? 0xffffu : (1u << n) - 1u); }
static inline vf vload_n(const float* p, int n) { return _mm512_maskz_loadu_ps(lanes_mask(n), p); }
static inline void vstore_n(float* p, vf v, int n) { _mm512_mask_storeu_ps(p, lanes_mask(n), v); }
static inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline float vsum(vf v) { return _mm512_reduce_add_ps(v); }
static inline float vhmax(vf v) { return _mm512_reduce_max_ps(v); }
// Lanes where a >= b (ordered), as an all-ones / zero blend selector.
using vmask = __mmask16;
static inline vmask vge(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
static inline vmask vgt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline vmask vmask_and(vmask a, vmask b) { return static_cast<vmask>(a & b); }
static inline unsigned vmask_bits(vmask m) { return m; }  // bit i: lane i
// m ? a : b
static inline vf vselect(vmask m, vf a, vf b) { return _mm512_mask_blend_ps(m, b, a); }

// exp(x) to about 1 ulp; 0 below -87.3 (also for -inf), +inf above 88.7.
static inline vf vexp(vf x) {
  const vf lo = _mm512_set1_ps(-87.33654f);
  const __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  x = _mm512_min_ps(x, _mm512_set1_ps(88.72283f));
  x = _mm512_max_ps(x, lo);
  const vf n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  vf r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  vf p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const vf r2 = _mm512_mul_ps(r, r);
  p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_maskz_scalef_ps(static_cast<__mmask16>(~under), p, n);
}

// --- 16-bit floats ------------------------------------------------------------------
static inline vf bf16_widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
static inline vf vload_bf16(const uint16_t* p) { return bf16_widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
static inline vf vload_bf16_n(const uint16_t* p, int n) { return bf16_widen(_mm256_maskz_loadu_epi16(lanes_mask(n), p)); }
static inline vf vload_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
static inline vf vload_f16_n(const uint16_t* p, int n) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lanes_mask(n), p)); }
// Round to nearest even, NaN stays NaN: the same bits as the scalar f32_to_bf16.
static inline __m256i bf16_narrow(vf v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(r);
}
static inline void vstore_bf16(uint16_t* p, vf v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), bf16_narrow(v)); }
static inline void vstore_bf16_n(uint16_t* p, vf v, int n) { _mm256_mask_storeu_epi16(p, lanes_mask(n), bf16_narrow(v)); }
static inline void vstore_f16(uint16_t* p, vf v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
static inline void vstore_f16_n(uint16_t* p, vf v, int n) {
  _mm256_mask_storeu_epi16(p, lanes_mask(n), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// 32 bf16 weights as two vectors without a shuffle: the low halves of the 32-bit lanes
// (elements 0, 2, 4, ...) and the high halves (1, 3, 5, ...). The activations are laid
// out to match (linear_prepare_x).
static inline void vload_bf16_pair(const uint16_t* p, vf& even, vf& odd) {
  const __m512i raw = _mm512_loadu_si512(p);
  even = _mm512_castsi512_ps(_mm512_slli_epi32(raw, 16));
  odd = _mm512_castsi512_ps(_mm512_and_si512(raw, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
}
static inline void vload_bf16_pair_n(const uint16_t* p, int n, vf& even, vf& odd) {
  const __m512i raw = _mm512_maskz_loadu_epi16(n >= 32 ? ~0u : (1u << n) - 1u, p);
  even = _mm512_castsi512_ps(_mm512_slli_epi32(raw, 16));
  odd = _mm512_castsi512_ps(_mm512_and_si512(raw, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
}

// Horizontal sums of 16 vectors at once: lane j of the result = sum of the lanes of a[j].
static inline vf vtranspose_sum(const vf* a) {
  vf t[8], u[4], v[2];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) t[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    const __m512d x = _mm512_castps_pd(t[2 * i]), y = _mm512_castps_pd(t[2 * i + 1]);
    u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i)
    v[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0x88), _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0xdd));
  return _mm512_add_ps(_mm512_shuffle_f32x4(v[0], v[1], 0x88), _mm512_shuffle_f32x4(v[0], v[1], 0xdd));
}
