// AVX2 kernels of the quantized linear (quant_ops.h): the AVX-512 tiles with each 16-row
// panel in two ymm halves (rows 0-7 are bytes 0-31 of every 64-byte step, rows 8-15 bytes
// 32-63). Dot products are vpmaddubsw + vpmaddwd, whose 16-bit pair sums must not saturate:
// 4-bit codes go in as they are; an 8-bit code c goes in as |c - 128| (vpabsb of c ^ 0x80:
// 0..128 as an unsigned byte) against x carrying the sign of c - 128 (vpsignb), so a pair
// sums at most 2 x 128 x 127 = 32,512, and 128 x (the block's sum of x) is added back per
// block. Either way the int32 sums equal the VNNI ones exactly. (The 8-bit codes were two
// nibbles before: twice the multiplies per byte; 0.5B int8 prefill on a Zen 3 VM was then
// only level with llama.cpp's Q8_0, docs/performance.md.)
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/quant_ops.h"

namespace tllm::cpu::avx2 {

namespace {

constexpr int kRows = 16;

inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <bool F16>
inline __m256 load8(const void* base, int64_t i) {
  if constexpr (F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i)));
  } else {
    return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  }
}

// Per 32-bit lane: sum of the 4 products of w (u8) and x (s8); no pair of products may
// leave int16 (vpmaddubsw saturates).
inline __m256i dot4(__m256i w, __m256i xb) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, xb), _mm256_set1_epi16(1));
}

template <int MR, int BITS, bool F16>
void tile(const QuantTask& t, int64_t p, int64_t t0) {
  const uint8_t* panel = t.codes + p * t.panel_bytes;
  const int64_t G = t.groups;
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    const int64_t si = (p * G + g) * kRows;
    const __m256 s0 = load8<F16>(t.scales, si), s1 = load8<F16>(t.scales, si + 8);
    const int64_t jb = g * t.blocks_per_group, je = std::min(t.nblocks, jb + t.blocks_per_group);
    for (int64_t j = jb; j < je; ++j) {
      __m256i ia[MR][2];
      for (int i = 0; i < MR; ++i) ia[i][0] = ia[i][1] = _mm256_setzero_si256();
      if constexpr (BITS == 8) {
        const uint8_t* wb = panel + j * 8 * 64;
        const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
        for (int st = 0; st < 8; ++st) {
          for (int h = 0; h < 2; ++h) {
            const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + st * 64 + h * 32));
            const __m256i ws = _mm256_xor_si256(w, flip);  // c - 128 as a signed byte
            const __m256i wa = _mm256_abs_epi8(ws);         // |c - 128|, 128 stays 0x80 = 128 unsigned
            for (int i = 0; i < MR; ++i) {
              const __m256i xb = _mm256_set1_epi32(load_i32(t.xq + (t0 + i) * t.kp + j * 32 + 4 * st));
              ia[i][h] = _mm256_add_epi32(ia[i][h], dot4(wa, _mm256_sign_epi8(xb, ws)));
            }
          }
        }
        for (int i = 0; i < MR; ++i) {  // + 128 x the block's sum of x: sum c x exactly
          const __m256i b = _mm256_set1_epi32(128 * t.bsum[(t0 + i) * t.nblocks + j]);
          ia[i][0] = _mm256_add_epi32(ia[i][0], b);
          ia[i][1] = _mm256_add_epi32(ia[i][1], b);
        }
      } else {
        // A 4-bit pair sum is at most 2 x 15 x 127 = 3,810, so the block's 8 of them per lane
        // add up in int16 (<= 30,480) and widen once (vpmaddwd) per block.
        const uint8_t* wb = panel + j * 4 * 64;
        __m256i s16[MR][2];
        for (int i = 0; i < MR; ++i) s16[i][0] = s16[i][1] = _mm256_setzero_si256();
        for (int st = 0; st < 4; ++st) {
          for (int h = 0; h < 2; ++h) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + st * 64 + h * 32));
            const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            for (int i = 0; i < MR; ++i) {
              const int8_t* xr = t.xq + (t0 + i) * t.kp + j * 32 + 8 * st;
              const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(load_i32(xr))),
                                                 _mm256_maddubs_epi16(hi, _mm256_set1_epi32(load_i32(xr + 4))));
              s16[i][h] = _mm256_add_epi16(s16[i][h], p);
            }
          }
        }
        const __m256i ones = _mm256_set1_epi16(1);
        for (int i = 0; i < MR; ++i)
          for (int h = 0; h < 2; ++h) ia[i][h] = _mm256_madd_epi16(s16[i][h], ones);
      }
      for (int i = 0; i < MR; ++i) {
        const __m256 dv = _mm256_set1_ps(t.d[(t0 + i) * t.nblocks + j]);
        acc[i][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[i][0]), _mm256_mul_ps(s0, dv), acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[i][1]), _mm256_mul_ps(s1, dv), acc[i][1]);
      }
    }
    const __m256 o0 = load8<F16>(t.offsets, si), o1 = load8<F16>(t.offsets, si + 8);
    for (int i = 0; i < MR; ++i) {
      const __m256 xs = _mm256_set1_ps(t.xsum[(t0 + i) * G + g]);
      acc[i][0] = _mm256_fmadd_ps(o0, xs, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(o1, xs, acc[i][1]);
    }
  }
  const int64_t row0 = p * kRows;
  const int rows = static_cast<int>(std::min<int64_t>(kRows, t.N - row0));
  for (int i = 0; i < MR; ++i) {
    alignas(32) float buf[16];
    _mm256_store_ps(buf, acc[i][0]);
    _mm256_store_ps(buf + 8, acc[i][1]);
    float* o = t.out + (t0 + i) * t.N + row0;
    for (int r = 0; r < rows; ++r) o[r] = t.bias ? buf[r] + t.bias[row0 + r] : buf[r];
  }
}

template <int BITS, bool F16>
void panels(const QuantTask& t, int64_t pb, int64_t pe) {
  for (int64_t p = pb; p < pe; ++p) {
    int64_t t0 = 0;
    for (; t0 + 2 <= t.T; t0 += 2) tile<2, BITS, F16>(t, p, t0);
    if (t0 < t.T) tile<1, BITS, F16>(t, p, t0);
  }
}

}  // namespace

void quant_prepare_acts(const float* x, int64_t K, int64_t kp, int8_t* xq, float* d, int32_t* bsum) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t j = 0; j < kp / 32; ++j) {
    const int64_t k0 = j * 32;
    alignas(32) float buf[32];
    const int64_t n = std::clamp<int64_t>(K - k0, 0, 32);
    std::memcpy(buf, x + k0, static_cast<size_t>(n) * sizeof(float));
    for (int64_t k = n; k < 32; ++k) buf[k] = 0.0f;
    int nonfinite = 0;  // x - x is 0 for a finite x, NaN for an infinity or a NaN
    for (int q = 0; q < 4; ++q) {
      const __m256 v = _mm256_load_ps(buf + 8 * q);
      nonfinite |= _mm256_movemask_ps(_mm256_cmp_ps(_mm256_sub_ps(v, v), _mm256_setzero_ps(), _CMP_NEQ_UQ));
    }
    if (nonfinite) {
      poison_block(xq + k0, d + j, bsum + j);
      continue;
    }
    __m256 m = _mm256_setzero_ps();
    for (int q = 0; q < 4; ++q) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_load_ps(buf + 8 * q)));
    __m128 m2 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m2 = _mm_max_ps(m2, _mm_movehl_ps(m2, m2));
    m2 = _mm_max_ss(m2, _mm_movehdup_ps(m2));
    const float amax = _mm_cvtss_f32(m2);
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    d[j] = amax / 127.0f;
    const __m256 vid = _mm256_set1_ps(id);
    __m256i sum = _mm256_setzero_si256();
    for (int q = 0; q < 4; ++q) {
      const __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_load_ps(buf + 8 * q), vid));
      sum = _mm256_add_epi32(sum, v);
      alignas(32) int32_t iv[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(iv), v);
      for (int e = 0; e < 8; ++e) xq[k0 + 8 * q + e] = static_cast<int8_t>(iv[e]);
    }
    alignas(32) int32_t sv[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sv), sum);
    bsum[j] = sv[0] + sv[1] + sv[2] + sv[3] + sv[4] + sv[5] + sv[6] + sv[7];
  }
}

void quant_panels(const QuantTask& t, int64_t pb, int64_t pe) {
  if (t.bits == 8) {
    if (t.scales_f16) panels<8, true>(t, pb, pe);
    else panels<8, false>(t, pb, pe);
  } else {
    if (t.scales_f16) panels<4, true>(t, pb, pe);
    else panels<4, false>(t, pb, pe);
  }
}

void quant_panels_f32(const QuantTask& t, int64_t pb, int64_t pe, float* ws) {
  // The exact path is for parity checks; the scalar version is fast enough on AVX2 hosts.
  scalar::quant_panels_f32(t, pb, pe, ws);
}

}  // namespace tllm::cpu::avx2
