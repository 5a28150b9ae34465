// 8 x f32 vector API of the AVX2 kernels (the shared *.inc kernels are written against
// it). Included inside namespace tllm::cpu::avx2 after <immintrin.h>.
#pragma once

constexpr int kLanes = 8;
using vf = __m256;
// Linear tile: 2 activation rows x 3 weight rows (6 accumulators + 6 weight vectors + 2
// activation vectors of the 16 registers).
constexpr int kTileM = 2;
constexpr int kTileN = 3;

static inline vf vzero() { return _mm256_setzero_ps(); }
static inline vf vset1(float x) { return _mm256_set1_ps(x); }
static inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
static inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, v); }
static inline __m256i lanes_mask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline vf vload_n(const float* p, int n) { return _mm256_maskload_ps(p, lanes_mask(n)); }
static inline void vstore_n(float* p, vf v, int n) { _mm256_maskstore_ps(p, lanes_mask(n), v); }
static inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline float vsum(vf v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
static inline float vhmax(vf v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
using vmask = __m256;
static inline vmask vge(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
static inline vmask vgt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vmask vmask_and(vmask a, vmask b) { return _mm256_and_ps(a, b); }
static inline unsigned vmask_bits(vmask m) { return static_cast<unsigned>(_mm256_movemask_ps(m)); }  // bit i: lane i
static inline vf vselect(vmask m, vf a, vf b) { return _mm256_blendv_ps(b, a, m); }

// exp(x) to about 1 ulp; 0 below -87.3 (also for -inf), +inf above 88.7.
static inline vf vexp(vf x) {
  const vf lo = _mm256_set1_ps(-87.33654f);
  const vf under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_min_ps(x, _mm256_set1_ps(88.0f));
  x = _mm256_max_ps(x, lo);
  const vf n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  vf r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  vf p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const vf r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n for n in [-126, 127]: the exponent field.
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// --- 16-bit floats ------------------------------------------------------------------
static inline __m128i load_u16x8_n(const uint16_t* p, int n) {
  alignas(16) uint16_t buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < n && i < 8; ++i) buf[i] = p[i];
  return _mm_load_si128(reinterpret_cast<const __m128i*>(buf));
}
static inline vf bf16_widen(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }
static inline vf vload_bf16(const uint16_t* p) { return bf16_widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
static inline vf vload_bf16_n(const uint16_t* p, int n) { return bf16_widen(load_u16x8_n(p, n)); }
static inline vf vload_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
static inline vf vload_f16_n(const uint16_t* p, int n) { return _mm256_cvtph_ps(load_u16x8_n(p, n)); }
static inline __m128i bf16_narrow(vf v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  r = _mm256_blendv_epi8(r, quiet, nan);
  // 32-bit lanes -> 16-bit (values fit in 16 bits, so unsigned saturation is exact)
  const __m256i packed = _mm256_packus_epi32(r, r);
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(packed, 0x08));
}
static inline void store_u16x8_n(uint16_t* p, __m128i h, int n) {
  alignas(16) uint16_t buf[8];
  _mm_store_si128(reinterpret_cast<__m128i*>(buf), h);
  for (int i = 0; i < n && i < 8; ++i) p[i] = buf[i];
}
static inline void vstore_bf16(uint16_t* p, vf v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), bf16_narrow(v)); }
static inline void vstore_bf16_n(uint16_t* p, vf v, int n) { store_u16x8_n(p, bf16_narrow(v), n); }
static inline void vstore_f16(uint16_t* p, vf v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
static inline void vstore_f16_n(uint16_t* p, vf v, int n) {
  store_u16x8_n(p, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), n);
}

// 16 bf16 weights as two vectors without a shuffle: low halves of the 32-bit lanes
// (elements 0, 2, 4, ...) and high halves (1, 3, 5, ...); see linear_prepare_x.
static inline void vload_bf16_pair(const uint16_t* p, vf& even, vf& odd) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  even = _mm256_castsi256_ps(_mm256_slli_epi32(raw, 16));
  odd = _mm256_castsi256_ps(_mm256_and_si256(raw, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
}
static inline void vload_bf16_pair_n(const uint16_t* p, int n, vf& even, vf& odd) {
  alignas(32) uint16_t buf[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < n && i < 16; ++i) buf[i] = p[i];
  vload_bf16_pair(buf, even, odd);
}

// Horizontal sums of 8 vectors at once: lane j of the result = sum of the lanes of a[j].
static inline vf vtranspose_sum(const vf* a) {
  vf t[4], u[2];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) t[i] = _mm256_add_ps(_mm256_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm256_unpackhi_ps(a[2 * i], a[2 * i + 1]));
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i) {
    const __m256d x = _mm256_castps_pd(t[2 * i]), y = _mm256_castps_pd(t[2 * i + 1]);
    u[i] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(x, y)), _mm256_castpd_ps(_mm256_unpackhi_pd(x, y)));
  }
  return _mm256_add_ps(_mm256_permute2f128_ps(u[0], u[1], 0x20), _mm256_permute2f128_ps(u[0], u[1], 0x31));
}
