// Device helpers and host dispatch shared by the quantized-weight kernels (quant_gemm.cu:
// GEMM, dequantize, embedding; quant_gemv.cu: the T <= 16 decode path). Arithmetic of the
// codes as MMA operands: quant_ops.h; layout: kernels/quant_layout.h.
#pragma once

#include <cuda_fp16.h>

#include <string>
#include <type_traits>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/quant_ops.h"

namespace tllm::cuda::qk {

// The kernels' BITS template parameter: 4 or 8 for unsigned integer codes, kE4M3 for FP8 e4m3
// bytes (8 bits a code in the 8-bit layout; W = scale x e4m3(q), no offset term, so C = 0 and
// no x sums are needed).
constexpr int kE4M3 = 0xE4;
__host__ __device__ constexpr bool is_fp8(int B) { return B == kE4M3; }

constexpr uint32_t kMagicLo = 0x43004300u;  // bf16x2 (128, 128): | q gives 128 + q for q < 16
constexpr uint32_t kMagicHi = 0x45004500u;  // bf16x2 (2048, 2048): | h gives 2048 + 16 h
constexpr uint32_t kOnes = 0x3f803f80u;     // bf16x2 (1, 1)
// f16 operands of 8-bit codes (the x-staged decode kernel, whose x is staged as f16): a
// 10-bit mantissa holds a whole byte, f16 0x64qq = 1024 + q.
constexpr uint32_t kF16Bytes = 0x64646464u;  // prmt source of the 0x64 high bytes

// d += a b, m16n8k16, f32 accumulators; operands bf16 (or f16: F16). Not volatile: a pure
// function of its operands, so the compiler may schedule it among the (volatile, ordered)
// weight loads.
template <bool F16 = false>
__device__ __forceinline__ void mma16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
#define TLLM_MMA16816(AB)                                                                                   \
  asm("mma.sync.aligned.m16n8k16.row.col.f32" AB ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};" \
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])                                                      \
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1))
  if constexpr (F16) TLLM_MMA16816(".f16.f16");
  else TLLM_MMA16816(".bf16.bf16");
#undef TLLM_MMA16816
}

// Bytes of {b, a} picked by SEL (prmt: a is bytes 0-3, b bytes 4-7; SEL's nibbles, lowest
// first, choose d's bytes 0-3).
template <uint32_t SEL>
__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b) {
  uint32_t r;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "n"(SEL));
  return r;
}

// ((v >> SHIFT) & 0x000f000f) | magic as one lop3 (0xea = (a & b) | c). Written as C++ the
// and / or became two LOP3s with immediate operands (one immediate per LOP3): 32 of the
// ~221 instructions per 1 KB tile of the int4 decode GEMV (ncu SASS counts, H200 run 38).
template <int SHIFT>
__device__ __forceinline__ uint32_t nib(uint32_t v, uint32_t magic) {
  uint32_t r;
  asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(r) : "r"(SHIFT ? v >> SHIFT : v), "n"(0x000f000f), "r"(magic));
  return r;
}

__device__ __forceinline__ uint32_t word_of(const uint4& v, int w) {
  return w == 0 ? v.x : w == 1 ? v.y : w == 2 ? v.z : v.w;
}

// Two e4m3 bytes of w (bytes I and J; I and J are 0-3) as exact bf16x2 (byte I low) / f16x2.
// bf16: the byte's sign and magnitude bits placed at the top of each half give the value
// times 2^-120 (bf16's exponent bias 127 against e4m3's 7; subnormal codes land on bf16
// subnormals and scale the same way), and one bf16x2 multiply by 2^120 restores it exactly.
// f16: the same at the f16 positions times 2^8, or the sm_89 conversion instruction.
template <int I, int J>
__device__ __forceinline__ uint32_t e4m3x2_bf16(uint32_t w) {
  const uint32_t u = prmt<0x0404 | (I << 4) | (J << 12)>(w, 0u);  // byte I at bits 8-15, J at 24-31
  const uint32_t v = (u & 0x80008000u) | ((u >> 4) & 0x07f007f0u);
  uint32_t r;  // fma with -0: the exact product (sm_80 has no bf16x2 mul)
  asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(v), "r"(0x7b807b80u), "r"(0x80008000u));
  return r;
}

template <int I, int J>
__device__ __forceinline__ uint32_t e4m3x2_f16(uint32_t w) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  const uint32_t u = prmt<0x4400 | I | (J << 4)>(w, 0u);  // bytes I, J as the low 16 bits
  uint32_t r;
  asm("{ .reg .b16 lo, hi;\n mov.b32 {lo, hi}, %1;\n cvt.rn.f16x2.e4m3x2 %0, lo; }" : "=r"(r) : "r"(u));
  return r;
#else
  const uint32_t u = prmt<0x0404 | (I << 4) | (J << 12)>(w, 0u);
  const uint32_t v = (u & 0x80008000u) | ((u >> 1) & 0x3f803f80u);
  uint32_t r;
  asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(v), "r"(0x5c005c00u));
  return r;
#endif
}

// acc += (codes of k step m + C) x b. lo / hi: the lane's 16 bytes of rows g / g + 8.
template <int BITS>
__device__ __forceinline__ void mma_codes(float (&acc)[4], const uint4& lo, const uint4& hi, int m, uint32_t b0,
                                          uint32_t b1) {
  if constexpr (BITS == 4) {
    const uint32_t wl = word_of(lo, m >> 1), wh = word_of(hi, m >> 1);
    if (m & 1) {
      mma16816(acc, nib<8>(wl, kMagicLo), nib<8>(wh, kMagicLo), nib<12>(wl, kMagicLo), nib<12>(wh, kMagicLo), b0, b1);
    } else {
      mma16816(acc, nib<0>(wl, kMagicLo), nib<0>(wh, kMagicLo), nib<4>(wl, kMagicLo), nib<4>(wh, kMagicLo), b0, b1);
    }
  } else if constexpr (is_fp8(BITS)) {  // bytes 0, 2: columns 2c, 2c + 1; bytes 1, 3: 2c + 8, 2c + 9
    const uint32_t wl = word_of(lo, m), wh = word_of(hi, m);
    mma16816(acc, e4m3x2_bf16<0, 2>(wl), e4m3x2_bf16<0, 2>(wh), e4m3x2_bf16<1, 3>(wl), e4m3x2_bf16<1, 3>(wh), b0, b1);
  } else {
    const uint32_t wl = word_of(lo, m), wh = word_of(hi, m);
    mma16816(acc, nib<0>(wl, kMagicLo), nib<0>(wh, kMagicLo), nib<8>(wl, kMagicLo), nib<8>(wh, kMagicLo), b0, b1);
    mma16816(acc, nib<4>(wl, kMagicHi), nib<4>(wh, kMagicHi), nib<12>(wl, kMagicHi), nib<12>(wh, kMagicHi), b0, b1);
  }
}

// acc += (8-bit codes of k step m + 1024) x b as f16 operands: bytes 0, 2 of the lane's word
// are columns 2c, 2c + 1 and bytes 1, 3 columns 2c + 8, 2c + 9 (as mma_codes reads them); a
// byte becomes 1024 + q in one prmt, so a step is 4 prmt and one MMA where the bf16 form
// (whose 7-bit mantissa holds a nibble, not a byte) takes 14 shift / lop3 and two MMAs. The
// x-staged decode kernel takes it with x staged as f16. (The 4-bit form saves less: the high
// nibble of a byte is 1024 + 16 q by masking alone against x / 16, 5 instead of 7 operations
// per word; measured level to 0.5% slower end to end, H200 runs 137-139, not kept.)
// FP8 (kE4M3): the bytes as their f16 values, C = 0.
template <int BITS = 8>
__device__ __forceinline__ void mma_codes_f16(float (&acc)[4], const uint4& lo, const uint4& hi, int m, uint32_t b0,
                                              uint32_t b1) {
  const uint32_t wl = word_of(lo, m), wh = word_of(hi, m);
  if constexpr (is_fp8(BITS)) {
    mma16816<true>(acc, e4m3x2_f16<0, 2>(wl), e4m3x2_f16<0, 2>(wh), e4m3x2_f16<1, 3>(wl), e4m3x2_f16<1, 3>(wh), b0,
                   b1);
  } else {
    mma16816<true>(acc, prmt<0x4240>(wl, kF16Bytes), prmt<0x4240>(wh, kF16Bytes), prmt<0x4341>(wl, kF16Bytes),
                   prmt<0x4341>(wh, kF16Bytes), b0, b1);
  }
}

// Scale or offset i of a panel's [groups][16] block of f16 or f32, staged in shared memory
// (the quantized MoE decode kernels, the decoder stack's quantized GEMV).
__device__ __forceinline__ float staged(const unsigned char* base, bool f16, int i) {
  return f16 ? __half2float(reinterpret_cast<const __half*>(base)[i]) : reinterpret_cast<const float*>(base)[i];
}

// The constant C of the codes' MMA operands (q + C; f16: the x-staged 8-bit form).
__host__ __device__ constexpr float code_bias(int BITS, bool f16) {
  return is_fp8(BITS) ? 0.0f : f16 ? 1024.0f : BITS == 4 ? 128.0f : 2176.0f;
}

// An e4m3 byte as f32 (finite codes; dequantization and embedding rows): its bits moved into
// f32's fields give the value times 2^-120 (subnormal codes as f32 subnormals; these kernels
// are built without flush-to-zero), times 2^120 exactly.
__device__ __forceinline__ float e4m3_to_f32(uint32_t b) {
  return __uint_as_float(((b & 0x80u) << 24) | ((b & 0x7fu) << 20)) * 0x1p120f;
}

template <bool F16S>
__device__ __forceinline__ float load_scale(const void* p, int64_t i) {
  if constexpr (F16S) {
    return __half2float(__ldg(static_cast<const __half*>(p) + i));
  } else {
    return __ldg(static_cast<const float*>(p) + i);
  }
}

template <typename OutT>
__device__ __forceinline__ void store_val(OutT* p, float v);
template <> __device__ __forceinline__ void store_val<float>(float* p, float v) { *p = v; }
template <> __device__ __forceinline__ void store_val<bf16>(bf16* p, float v) { *p = __float2bfloat16_rn(v); }

__device__ __forceinline__ float bias_at(const QuantGemmParams& p, int n) {
  if (!p.bias) return 0.0f;
  return p.bias_dtype == DType::F32 ? static_cast<const float*>(p.bias)[n]
                                    : __bfloat162float(static_cast<const bf16*>(p.bias)[n]);
}

// --- host ------------------------------------------------------------------------------

inline int k_tile(int bits) { return bits == 4 ? 128 : 64; }

// MMAs (16-wide k steps) per scale segment: a group, or the tile when groups are longer.
inline int segment_mmas(const QuantGemmParams& p) {
  const int tile = k_tile(p.bits);
  const int seg = p.groups == 1 ? tile : std::min(p.group_size, tile);
  return seg / 16;
}

// f(bits, segm, f16 scales, OutT* tag) with compile-time constants for the supported
// combinations; anything else throws naming what is supported.
template <typename F>
void dispatch(const QuantGemmParams& p, F&& f) {
  const int segm = segment_mmas(p);
  auto by_out = [&](auto bits, auto seg, auto f16) {
    if (p.out_dtype == DType::BF16) f(bits, seg, f16, static_cast<bf16*>(nullptr));
    else if (p.out_dtype == DType::F32) f(bits, seg, f16, static_cast<float*>(nullptr));
    else TLLM_THROW("quantized linear: output dtype ", dtype_name(p.out_dtype), " unsupported (bf16, f32)");
  };
  auto by_scale = [&](auto bits, auto seg) {
    if (p.scales_f16) by_out(bits, seg, std::true_type{});
    else by_out(bits, seg, std::false_type{});
  };
  using I2 = std::integral_constant<int, 2>;
  using I4 = std::integral_constant<int, 4>;
  using I8 = std::integral_constant<int, 8>;
  using E = std::integral_constant<int, kE4M3>;
  TLLM_CHECK(!p.fp8 || p.bits == 8, "quantized linear: FP8 codes are 8 bits, not ", p.bits);
  if (p.fp8) {
    if (segm == 2) by_scale(E{}, I2{});
    else if (segm == 4) by_scale(E{}, I4{});
    else TLLM_THROW("quantized linear: unsupported segment of ", segm * 16, " columns");
  } else if (p.bits == 4) {
    if (segm == 2) by_scale(I4{}, I2{});
    else if (segm == 4) by_scale(I4{}, I4{});
    else if (segm == 8) by_scale(I4{}, I8{});
    else TLLM_THROW("quantized linear: unsupported segment of ", segm * 16, " columns");
  } else if (p.bits == 8) {
    if (segm == 2) by_scale(I8{}, I2{});
    else if (segm == 4) by_scale(I8{}, I4{});
    else TLLM_THROW("quantized linear: unsupported segment of ", segm * 16, " columns");
  } else {
    TLLM_THROW("quantized linear: ", p.bits, "-bit codes unsupported (4, 8)");
  }
}

inline void check_params(const QuantGemmParams& p, const char* op) {
  const std::string why = quant_unsupported_reason(p.bits, p.K, p.group_size, p.groups);
  TLLM_CHECK(why.empty(), op, ": ", why);
  TLLM_CHECK(p.N > 0 && p.T >= 0 && p.ktiles == (p.K + k_tile(p.bits) - 1) / k_tile(p.bits), op,
             ": inconsistent shape N=", p.N, " K=", p.K, " ktiles=", p.ktiles);
  TLLM_CHECK(reinterpret_cast<uintptr_t>(p.codes) % 16 == 0 && reinterpret_cast<uintptr_t>(p.x) % 16 == 0, op,
             ": codes and x must be 16-byte aligned");
}

}  // namespace tllm::cuda::qk
