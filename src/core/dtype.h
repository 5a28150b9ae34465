// Element types and the scalar conversions between them.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace tllm {

enum class DType : uint8_t {
  F32,
  F16,
  BF16,
  F64,
  I8,
  U8,
  I16,
  I32,
  I64,
  U32,
  BOOL,
  // Two 4-bit values per byte, low nibble first. Shapes count elements, not bytes.
  I4,
  // 8-bit floats as safetensors stores them (torch's float8_e4m3fn / float8_e5m2): storage of
  // FP8 checkpoints, decoded on load (fp8_to_f32), never computed in.
  F8E4M3,
  F8E5M2,
};

// Bytes per element; 0 for sub-byte types (use dtype_nbytes).
size_t dtype_size(DType t);
// Bytes that `numel` elements of `t` occupy (rounds packed types up).
size_t dtype_nbytes(DType t, int64_t numel);
const char* dtype_name(DType t);  // "f32", "bf16", ...
// Parses safetensors spellings ("F32", "BF16", "I64", ...); throws naming the value.
DType dtype_from_safetensors(std::string_view s);
// Parses user / config spellings: "float32", "bfloat16", "float16", "f32", "bf16", "f16".
DType dtype_from_name(std::string_view s);
bool dtype_is_float(DType t);
inline bool dtype_is_fp8(DType t) { return t == DType::F8E4M3 || t == DType::F8E5M2; }

// bf16 <-> f32. f32 -> bf16 rounds to nearest even; NaN stays NaN (quiet).
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// One FP8 code as f32, exactly. E4M3 ("fn": bias 7, no infinities, S.1111.111 = NaN, max
// 448); E5M2 (bias 15, IEEE-like: exponent 31 holds infinities and NaNs).
float fp8_e4m3_to_f32(uint8_t v);
float fp8_e5m2_to_f32(uint8_t v);
// f32 -> the nearest e4m3 code, ties to the even code; beyond +-448 saturates to +-448 (as
// torch's float8_e4m3fn casts after a clamp), NaN to 0x7f. For --quantization fp8, which
// runs it over every weight of a model (inline, so that its loop is not a call per weight).
inline uint8_t f32_to_fp8_e4m3(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return 0x7f;          // NaN
  if (a >= 0x43e00000u) return sign | 0x7e;  // |x| >= 448 (and infinities): saturate
  if (a < 0x3c800000u)                       // below 2^-6: subnormal steps of 2^-9 (8 of them
    return sign | static_cast<uint8_t>(std::nearbyint(std::bit_cast<float>(a) * 512.0f));  // reach code 0x08)
  // Normal: keep 3 of f32's 23 mantissa bits, rounding to nearest even (a carry moves into the
  // exponent), then rebias the exponent from 127 to 7.
  const uint32_t code = ((a + 0x7ffffu + ((a >> 20) & 1u)) >> 20) - ((127u - 7u) << 3);
  return sign | static_cast<uint8_t>(code > 0x7e ? 0x7e : code);
}
// Whether the code is a NaN or an infinity (not a finite weight).
inline bool fp8_is_finite(DType t, uint8_t v) {
  return t == DType::F8E4M3 ? (v & 0x7f) != 0x7f : (v & 0x7c) != 0x7c;
}
// The index of the first of n codes of FP8 type t that is not finite, or -1. Loading an FP8
// model checks each of its codes: this takes them eight at a time.
int64_t fp8_first_non_finite(DType t, const uint8_t* codes, int64_t n);

// IEEE binary16 <-> f32, exact (f32 -> f16 rounds to nearest even, handles subnormals).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace tllm
