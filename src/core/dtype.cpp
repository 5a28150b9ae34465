#include "core/dtype.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace tllm {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: case DType::U32: return 4;
    case DType::F16: case DType::BF16: case DType::I16: return 2;
    case DType::I8: case DType::U8: case DType::BOOL: case DType::F8E4M3: case DType::F8E5M2: return 1;
    case DType::I4: return 0;
  }
  TLLM_THROW("unknown dtype ", static_cast<int>(t));
}

size_t dtype_nbytes(DType t, int64_t numel) {
  if (t == DType::I4) return static_cast<size_t>((numel + 1) / 2);
  return dtype_size(t) * static_cast<size_t>(numel);
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::F64: return "f64";
    case DType::I8: return "i8";
    case DType::U8: return "u8";
    case DType::I16: return "i16";
    case DType::I32: return "i32";
    case DType::I64: return "i64";
    case DType::U32: return "u32";
    case DType::BOOL: return "bool";
    case DType::I4: return "i4";
    case DType::F8E4M3: return "f8e4m3";
    case DType::F8E5M2: return "f8e5m2";
  }
  return "?";
}

DType dtype_from_safetensors(std::string_view s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "F64") return DType::F64;
  if (s == "I8") return DType::I8;
  if (s == "U8") return DType::U8;
  if (s == "I16") return DType::I16;
  if (s == "I32") return DType::I32;
  if (s == "I64") return DType::I64;
  if (s == "U32") return DType::U32;
  if (s == "BOOL") return DType::BOOL;
  if (s == "F8_E4M3") return DType::F8E4M3;
  if (s == "F8_E5M2") return DType::F8E5M2;
  TLLM_THROW("unsupported safetensors dtype \"", s,
             "\" (supported: F32, F16, BF16, F64, I8, U8, I16, I32, I64, U32, BOOL, F8_E4M3, F8_E5M2)");
}

DType dtype_from_name(std::string_view s) {
  if (s == "float32" || s == "f32" || s == "float") return DType::F32;
  if (s == "bfloat16" || s == "bf16") return DType::BF16;
  if (s == "float16" || s == "f16" || s == "half") return DType::F16;
  TLLM_CHECK_ARG(false, "unsupported dtype \"", s, "\" (supported: float32, bfloat16, float16)");
  return DType::F32;
}

bool dtype_is_float(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64;
}

// An FP8 code with `mbits` mantissa bits and exponent bias `bias` as f32 (exact: every code
// is a float32 value). Normal: 2^(e - bias) * (1 + m / 2^mbits); subnormal (e = 0):
// 2^(1 - bias) * m / 2^mbits. The callers handle the non-finite codes.
static float fp8_value(uint8_t v, int mbits, int bias) {
  const int e = (v & 0x7f) >> mbits;
  const int m = v & ((1 << mbits) - 1);
  const float mag = e == 0 ? std::ldexp(static_cast<float>(m), 1 - bias - mbits)
                           : std::ldexp(static_cast<float>((1 << mbits) + m), e - bias - mbits);
  return (v & 0x80) ? -mag : mag;
}

float fp8_e4m3_to_f32(uint8_t v) {
  if ((v & 0x7f) == 0x7f) return std::numeric_limits<float>::quiet_NaN();
  return fp8_value(v, 3, 7);
}

int64_t fp8_first_non_finite(DType t, const uint8_t* codes, int64_t n) {
  // A byte whose non-finite bits (e4m3 0x7f, e5m2 0x7c) are all set carries into its top bit
  // when 1 is added at the lowest of them; no other byte does, and no carry leaves a byte.
  const uint64_t mask = (t == DType::F8E4M3 ? 0x7f : 0x7c) * 0x0101010101010101ull;
  const uint64_t low = (t == DType::F8E4M3 ? 0x01 : 0x04) * 0x0101010101010101ull;
  for (int64_t i = 0; i < n; i += 8) {
    uint64_t w = 0;
    std::memcpy(&w, codes + i, static_cast<size_t>(std::min<int64_t>(8, n - i)));
    if ((((w & mask) + low) & 0x8080808080808080ull) == 0) continue;
    for (int64_t j = i; j < std::min(i + 8, n); ++j)
      if (!fp8_is_finite(t, codes[j])) return j;
  }
  return -1;
}

float fp8_e5m2_to_f32(uint8_t v) {
  if ((v & 0x7c) == 0x7c) {
    if (v & 0x03) return std::numeric_limits<float>::quiet_NaN();
    return (v & 0x80) ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  }
  return fp8_value(v, 2, 15);
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while ((mant & 0x400u) == 0);
      u = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;            // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;           // overflow (rounds to inf) or inf
  if (abs < 0x38800000u) {                                 // subnormal or zero in f16
    if (abs < 0x33000000u) return sign;                    // below half the smallest subnormal
    const int e = static_cast<int>(abs >> 23);             // biased f32 exponent
    const uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    const int shift = 126 - e;                             // 14 + (113 - e) - ... see below
    // value = m * 2^(e-150); f16 subnormal unit = 2^-24 -> q = m >> (126 - e)
    const uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    uint32_t r = q + ((rem > half || (rem == half && (q & 1))) ? 1 : 0);
    return sign | static_cast<uint16_t>(r);
  }
  // normal: rebias exponent, round mantissa 23 -> 10 bits to nearest even
  uint32_t v = abs - ((127 - 15) << 23);
  v += 0xfffu + ((v >> 13) & 1u);
  return sign | static_cast<uint16_t>(v >> 13);
}

}  // namespace tllm
