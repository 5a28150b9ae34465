// AVX-512 kernels of the quantized linear (quant_ops.h). A tile is one panel of 16 weight
// rows (one zmm lane per row) times MR tokens: per block of 32 columns the int32 dot
// products accumulate with vpdpbusd (u8 codes x s8 activations; AVX-512 BW
// vpmaddubsw + vpmaddwd where VNNI is missing, same integers), then one f32 fma per token
// applies scale * d; offsets are added once per group. The weight panel is read once per
// MR tokens, so prefill reuses it from L1/L2 while decode streams it at memory speed.
// GCC 12 flags the _mm512_undefined_* inside its own intrinsic headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "kernels/cpu/quant_ops.h"

namespace tllm::cpu::avx512 {

namespace {

constexpr int kRows = 16;
// Decode of 4-bit codes: prefetch this far ahead of the loads (past the end of a panel
// lands in the next one, which follows it in memory); measured a little faster on Zen 5
// for 4-bit codes, not for 8-bit ones.
constexpr int kPrefetch = 2048;

inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <bool F16>
inline __m512 load_scales(const void* base, int64_t i) {
  if constexpr (F16) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + i)));
  } else {
    return _mm512_loadu_ps(static_cast<const float*>(base) + i);
  }
}

// acc (16 x i32) += per row the sum of 4 products of w (u8) and the broadcast x (4 x s8).
// Codes below 16 (4-bit, or nibbles of 8-bit codes) never saturate vpmaddubsw.
template <bool VNNI>
inline __m512i dot4(__m512i acc, __m512i w, __m512i xb) {
  if constexpr (VNNI) {
    return _mm512_dpbusd_epi32(acc, w, xb);
  } else {
    const __m512i p = _mm512_madd_epi16(_mm512_maddubs_epi16(w, xb), _mm512_set1_epi16(1));
    return _mm512_add_epi32(acc, p);
  }
}

template <bool VNNI>
inline __m512i dot4_u8(__m512i acc, __m512i w, __m512i xb, __m512i m4) {
  if constexpr (VNNI) {
    return _mm512_dpbusd_epi32(acc, w, xb);
  } else {
    const __m512i ones = _mm512_set1_epi16(1);
    const __m512i lo = _mm512_and_si512(w, m4), hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), m4);
    const __m512i pl = _mm512_madd_epi16(_mm512_maddubs_epi16(lo, xb), ones);
    const __m512i ph = _mm512_madd_epi16(_mm512_maddubs_epi16(hi, xb), ones);
    return _mm512_add_epi32(acc, _mm512_add_epi32(pl, _mm512_slli_epi32(ph, 4)));
  }
}

// out[t0 + i, 16 rows of panel p] = acc[i] (+ bias), the rows past N left alone.
template <int M>
inline void store_rows(const QuantTask& t, int64_t p, int64_t t0, const __m512 (&acc)[M]) {
  const int64_t row0 = p * kRows;
  const int rows = static_cast<int>(std::min<int64_t>(kRows, t.N - row0));
  const __mmask16 mask = static_cast<__mmask16>(rows >= 16 ? 0xffffu : (1u << rows) - 1u);
  const __m512 b = t.bias ? _mm512_maskz_loadu_ps(mask, t.bias + row0) : _mm512_setzero_ps();
  for (int i = 0; i < M; ++i) {
    const __m512 v = t.bias ? _mm512_add_ps(acc[i], b) : acc[i];
    _mm512_mask_storeu_ps(t.out + (t0 + i) * t.N + row0, mask, v);
  }
}

template <int MR, int BITS, bool F16, bool VNNI>
void tile(const QuantTask& t, int64_t p, int64_t t0) {
  const uint8_t* panel = t.codes + p * t.panel_bytes;
  const int64_t G = t.groups;
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const int8_t* xr[MR];
  const float* dr[MR];
  __m512 acc[MR];
  for (int i = 0; i < MR; ++i) {
    xr[i] = t.xq + (t0 + i) * t.kp;
    dr[i] = t.d + (t0 + i) * t.nblocks;
    acc[i] = _mm512_setzero_ps();
  }
  for (int64_t g = 0; g < G; ++g) {
    if constexpr (MR <= 2) {  // small groups: the scale and offset streams ahead, as the codes'
      constexpr int64_t kAhead = 16 * kRows * (F16 ? 2 : 4);  // 16 groups
      const int64_t at = (p * G + g) * kRows * (F16 ? 2 : 4) + kAhead;
      _mm_prefetch(static_cast<const char*>(t.scales) + at, _MM_HINT_T0);
      _mm_prefetch(static_cast<const char*>(t.offsets) + at, _MM_HINT_T0);
    }
    const __m512 s = load_scales<F16>(t.scales, (p * G + g) * kRows);
    const int64_t jb = g * t.blocks_per_group, je = std::min(t.nblocks, jb + t.blocks_per_group);
    for (int64_t j = jb; j < je; ++j) {
      // Few tokens: two independent dot-product chains per token hide the vpdpbusd latency.
      constexpr int CH = MR <= 2 ? 2 : 1;
      __m512i ia[MR][CH];
      for (int i = 0; i < MR; ++i)
        for (int ch = 0; ch < CH; ++ch) ia[i][ch] = _mm512_setzero_si512();
      if constexpr (BITS == 8) {
        const uint8_t* wb = panel + j * 8 * 64;
#pragma GCC unroll 8
        for (int st = 0; st < 8; ++st) {
          // Groups of a few blocks (GGUF's q8_0 / q5 / q6_K: 32 columns) stream their scales and
          // offsets beside the codes; the codes' own prefetch then pays (run on one q4_0 file's
          // q8_0 lm_head: -10 to -18%), where per-channel codes lose with it (int8 layers +12%).
          if constexpr (MR <= 2)
            if (G > 1) _mm_prefetch(reinterpret_cast<const char*>(wb + st * 64 + kPrefetch), _MM_HINT_T0);
          const __m512i w = _mm512_loadu_si512(wb + st * 64);
          for (int i = 0; i < MR; ++i)
            ia[i][st % CH] =
                dot4_u8<VNNI>(ia[i][st % CH], w, _mm512_set1_epi32(load_i32(xr[i] + j * 32 + 4 * st)), m4);
        }
      } else {
        const uint8_t* wb = panel + j * 4 * 64;
#pragma GCC unroll 4
        for (int st = 0; st < 4; ++st) {
          if constexpr (MR <= 2) _mm_prefetch(reinterpret_cast<const char*>(wb + st * 64 + kPrefetch), _MM_HINT_T0);
          const __m512i v = _mm512_loadu_si512(wb + st * 64);
          const __m512i lo = _mm512_and_si512(v, m4);
          const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
          for (int i = 0; i < MR; ++i) {
            const int cl = (2 * st) % CH, chh = (2 * st + 1) % CH;
            ia[i][cl] = dot4<VNNI>(ia[i][cl], lo, _mm512_set1_epi32(load_i32(xr[i] + j * 32 + 8 * st)));
            ia[i][chh] = dot4<VNNI>(ia[i][chh], hi, _mm512_set1_epi32(load_i32(xr[i] + j * 32 + 8 * st + 4)));
          }
        }
      }
      for (int i = 0; i < MR; ++i) {
        __m512i sum = ia[i][0];
        for (int ch = 1; ch < CH; ++ch) sum = _mm512_add_epi32(sum, ia[i][ch]);
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(s, _mm512_set1_ps(dr[i][j])), acc[i]);
      }
    }
    const __m512 o = load_scales<F16>(t.offsets, (p * G + g) * kRows);
    for (int i = 0; i < MR; ++i) acc[i] = _mm512_fmadd_ps(o, _mm512_set1_ps(t.xsum[(t0 + i) * G + g]), acc[i]);
  }
  store_rows(t, p, t0, acc);
}

// Tokens [t0, T) of panel p, 8 at a time.
template <int BITS, bool F16, bool VNNI>
void tokens_from(const QuantTask& t, int64_t p, int64_t t0) {
  for (; t0 + 8 <= t.T; t0 += 8) tile<8, BITS, F16, VNNI>(t, p, t0);
  switch (t.T - t0) {
    case 1: tile<1, BITS, F16, VNNI>(t, p, t0); break;
    case 2: tile<2, BITS, F16, VNNI>(t, p, t0); break;
    case 3: tile<3, BITS, F16, VNNI>(t, p, t0); break;
    case 4: tile<4, BITS, F16, VNNI>(t, p, t0); break;
    case 5: tile<5, BITS, F16, VNNI>(t, p, t0); break;
    case 6: tile<6, BITS, F16, VNNI>(t, p, t0); break;
    case 7: tile<7, BITS, F16, VNNI>(t, p, t0); break;
    default: break;
  }
}

template <int BITS, bool F16, bool VNNI>
void panels(const QuantTask& t, int64_t pb, int64_t pe) {
  for (int64_t p = pb; p < pe; ++p) tokens_from<BITS, F16, VNNI>(t, p, 0);
}

// ---- AMX (Sapphire Rapids and later) ----------------------------------------------------------
// The same integers as tile<> with 16 tokens at once: per block of 32 columns one TDPBSUD
// multiplies the tokens' int8 activations (tile 1: 16 tokens x 32 bytes, straight from xq)
// with the panel's codes (tile 2: 8 rows of 16 weight rows x 4 codes, which is the panel's
// own byte order for 8-bit codes; 4-bit panels are split into bytes once per panel, for all
// its token tiles) into 16 x 16 int32 sums (tile 0), which then take the f32 steps of tile<>
// in the same order: so the bits are those of the AVX-512 kernels.
struct alignas(64) AmxConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// codes: the panel's 8-bit codes in the VNNI byte order (block j at j * 512 bytes). Two sets
// of tiles take the blocks in turn (sums 0 / 3, activations 1 / 4, codes 2 / 5) and two
// buffers their stored sums, so that the tile unit multiplies block j + 1 while the vector
// units scale block j - 1's sums. cbuf: 2 x 16 x 16 int32.
template <bool F16>
__attribute__((target("amx-tile,amx-int8"))) void tile_amx(const QuantTask& t, int64_t p, int64_t t0,
                                                           const uint8_t* codes, int32_t* cbuf) {
  const int64_t G = t.groups, nb = t.nblocks, kp = t.kp;
  const int8_t* xt = t.xq + t0 * kp;
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
  int64_t g = 0, gend = std::min(nb, t.blocks_per_group);
  __m512 s = load_scales<F16>(t.scales, p * G * kRows);
  // Block jj's sums (in cb) scaled into acc, in block order; after a group's last block its
  // offsets, then the next group's scales.
  auto scale_block = [&](int64_t jj, const int32_t* cb) {
    for (int i = 0; i < 16; ++i) {
      const __m512i sum = _mm512_load_si512(cb + 16 * i);
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(s, _mm512_set1_ps(t.d[(t0 + i) * nb + jj])), acc[i]);
    }
    if (jj + 1 == gend) {
      const __m512 o = load_scales<F16>(t.offsets, (p * G + g) * kRows);
      for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(o, _mm512_set1_ps(t.xsum[(t0 + i) * G + g]), acc[i]);
      if (++g < G) {
        s = load_scales<F16>(t.scales, (p * G + g) * kRows);
        gend = std::min(nb, gend + t.blocks_per_group);
      }
    }
  };
  // Three stages in flight: block j + 1 multiplied, block j's sums stored, block j - 1's
  // (stored one iteration earlier) scaled.
  _tile_zero(0);
  _tile_loadd(1, xt, kp);
  _tile_loadd(2, codes, 64);
  _tile_dpbsud(0, 1, 2);
  for (int64_t j = 0; j < nb; ++j) {
    const bool odd = j & 1;
    if (j + 1 < nb) {
      if (odd) {
        _tile_zero(0);
        _tile_loadd(1, xt + (j + 1) * 32, kp);
        _tile_loadd(2, codes + (j + 1) * 512, 64);
        _tile_dpbsud(0, 1, 2);
      } else {
        _tile_zero(3);
        _tile_loadd(4, xt + (j + 1) * 32, kp);
        _tile_loadd(5, codes + (j + 1) * 512, 64);
        _tile_dpbsud(3, 4, 5);
      }
    }
    if (odd) _tile_stored(3, cbuf + 256, 64);
    else _tile_stored(0, cbuf, 64);
    if (j > 0) scale_block(j - 1, odd ? cbuf : cbuf + 256);
  }
  scale_block(nb - 1, (nb - 1) & 1 ? cbuf + 256 : cbuf);
  store_rows(t, p, t0, acc);
}

// 4-bit codes: a panel's nibbles split into bytes once (low nibbles of a 4-column step give
// the first 4 columns, high ones the next 4), then shared by every 16-token tile.
inline void unpack_panel4(const uint8_t* panel, int64_t nblocks, uint8_t* out) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  for (int64_t st = 0; st < nblocks * 4; ++st) {
    const __m512i v = _mm512_loadu_si512(panel + st * 64);
    _mm512_store_si512(out + (2 * st) * 64, _mm512_and_si512(v, m4));
    _mm512_store_si512(out + (2 * st + 1) * 64, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
  }
}

template <int BITS, bool F16>
__attribute__((target("amx-tile,amx-int8"))) void panels_amx(const QuantTask& t, int64_t pb, int64_t pe) {
  AmxConfig cfg;
  cfg.rows[0] = 16;  // sums: 16 tokens x 16 int32
  cfg.colsb[0] = 64;
  cfg.rows[1] = 16;  // activations: 16 tokens x 32 int8
  cfg.colsb[1] = 32;
  cfg.rows[2] = 8;   // codes: 8 steps of 4 columns x 16 rows x 4 bytes
  cfg.colsb[2] = 64;
  for (int i = 3; i < 6; ++i) {  // the second set
    cfg.rows[i] = cfg.rows[i - 3];
    cfg.colsb[i] = cfg.colsb[i - 3];
  }
  _tile_loadconfig(&cfg);
  alignas(64) int32_t cbuf[2 * 16 * 16];  // two blocks' sums
  std::unique_ptr<uint8_t[]> unpacked;
  uint8_t* u = nullptr;
  if constexpr (BITS == 4) {
    unpacked.reset(new uint8_t[t.nblocks * 512 + 64]);
    u = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(unpacked.get()) + 63) / 64 * 64);
  }
  for (int64_t p = pb; p < pe; ++p) {
    const uint8_t* panel = t.codes + p * t.panel_bytes;
    if constexpr (BITS == 4) unpack_panel4(panel, t.nblocks, u);
    const uint8_t* codes = BITS == 4 ? u : panel;
    int64_t t0 = 0;
    for (; t0 + 16 <= t.T; t0 += 16) tile_amx<F16>(t, p, t0, codes, cbuf);
    tokens_from<BITS, F16, true>(t, p, t0);
  }
  _tile_release();
}

template <int BITS, bool F16>
void panels_isa(const QuantTask& t, int64_t pb, int64_t pe) {
  if (t.amx && t.T >= 16) panels_amx<BITS, F16>(t, pb, pe);  // t.amx implies t.vnni (quant_linear)
  else if (t.vnni) panels<BITS, F16, true>(t, pb, pe);
  else panels<BITS, F16, false>(t, pb, pe);
}

}  // namespace

void quant_prepare_acts(const float* x, int64_t K, int64_t kp, int8_t* xq, float* d, int32_t* bsum) {
  for (int64_t j = 0; j < kp / 32; ++j) {
    const int64_t k0 = j * 32;
    const int n = static_cast<int>(std::clamp<int64_t>(K - k0, 0, 32));
    const __mmask16 m0 = static_cast<__mmask16>(n >= 16 ? 0xffffu : (1u << n) - 1u);
    const __mmask16 m1 = static_cast<__mmask16>(n >= 32 ? 0xffffu : n <= 16 ? 0u : (1u << (n - 16)) - 1u);
    const __m512 a = _mm512_maskz_loadu_ps(m0, x + k0);
    const __m512 b = _mm512_maskz_loadu_ps(m1, x + k0 + 16);
    // x - x is 0 for a finite x, NaN for an infinity or a NaN.
    const __m512 zero = _mm512_setzero_ps();
    if (_mm512_cmp_ps_mask(_mm512_sub_ps(a, a), zero, _CMP_NEQ_UQ) |
        _mm512_cmp_ps_mask(_mm512_sub_ps(b, b), zero, _CMP_NEQ_UQ)) {
      poison_block(xq + k0, d + j, bsum + j);
      continue;
    }
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    d[j] = amax / 127.0f;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, vid));
    const __m512i qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, vid));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + k0), _mm512_cvtepi32_epi8(qa));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + k0 + 16), _mm512_cvtepi32_epi8(qb));
    bsum[j] = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
  }
}

void quant_panels(const QuantTask& t, int64_t pb, int64_t pe) {
  if (t.bits == 8) {
    if (t.scales_f16) panels_isa<8, true>(t, pb, pe);
    else panels_isa<8, false>(t, pb, pe);
  } else {
    if (t.scales_f16) panels_isa<4, true>(t, pb, pe);
    else panels_isa<4, false>(t, pb, pe);
  }
}

void quant_panels_f32(const QuantTask& t, int64_t pb, int64_t pe, float* ws) {
  const int64_t G = t.groups, kp = t.kp;
  uint8_t* codes = reinterpret_cast<uint8_t*>(ws + kRows * kp);  // [16][kp] unpacked codes
  const int64_t gcols = t.blocks_per_group * 32;
  for (int64_t p = pb; p < pe; ++p) {
    const uint8_t* panel = t.codes + p * t.panel_bytes;
    const int rows = static_cast<int>(std::min<int64_t>(kRows, t.N - p * kRows));
    if (t.bits == 8) {
      for (int64_t st = 0; st < kp / 4; ++st)
        for (int r = 0; r < kRows; ++r) std::memcpy(codes + r * kp + 4 * st, panel + st * 64 + r * 4, 4);
    } else {
      for (int64_t st = 0; st < kp / 8; ++st)
        for (int r = 0; r < kRows; ++r)
          for (int j = 0; j < 4; ++j) {
            const uint8_t b = panel[st * 64 + r * 4 + j];
            codes[r * kp + 8 * st + j] = b & 15;
            codes[r * kp + 8 * st + 4 + j] = b >> 4;
          }
    }
    for (int r = 0; r < rows; ++r) {
      float* wr = ws + r * kp;
      for (int64_t g = 0; g < G; ++g) {
        const int64_t i = (p * G + g) * kRows + r;
        const float sv = t.scales_f16 ? _cvtsh_ss(static_cast<const uint16_t*>(t.scales)[i]) : static_cast<const float*>(t.scales)[i];
        const float ov = t.scales_f16 ? _cvtsh_ss(static_cast<const uint16_t*>(t.offsets)[i]) : static_cast<const float*>(t.offsets)[i];
        const __m512 s = _mm512_set1_ps(sv), o = _mm512_set1_ps(ov);
        const int64_t kb = g * gcols, ke = std::min(kp, kb + gcols);
        for (int64_t k = kb; k < ke; k += 16) {
          const __m512 q = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + r * kp + k))));
          _mm512_storeu_ps(wr + k, _mm512_add_ps(_mm512_mul_ps(s, q), o));
        }
      }
    }
    for (int64_t tok = 0; tok < t.T; ++tok) {
      const float* x = t.x + tok * t.K;
      for (int r = 0; r < rows; ++r) {
        const float* wr = ws + r * kp;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        int64_t k = 0;
        for (; k + 32 <= t.K; k += 32) {
          a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k), _mm512_loadu_ps(wr + k), a0);
          a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(wr + k + 16), a1);
        }
        for (; k < t.K; k += 16) {
          const int n = static_cast<int>(std::min<int64_t>(16, t.K - k));
          const __mmask16 m = static_cast<__mmask16>(n >= 16 ? 0xffffu : (1u << n) - 1u);
          a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + k), _mm512_maskz_loadu_ps(m, wr + k), a0);
        }
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        const int64_t row = p * kRows + r;
        if (t.bias) sum += t.bias[row];
        t.out[tok * t.N + row] = sum;
      }
    }
  }
}

}  // namespace tllm::cpu::avx512
