#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

using namespace tllm;

namespace {
// Reference rounding: pick the nearest of the two bf16 neighbours in double, ties to even.
uint16_t bf16_reference(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint16_t lo = static_cast<uint16_t>(u >> 16);
  uint16_t hi = static_cast<uint16_t>(lo + 1);
  double dlo = bf16_to_f32(lo), dhi = bf16_to_f32(hi), x = f;
  if (std::isinf(dhi)) dhi = std::copysign(std::ldexp(1.0, 128), x);  // overflow boundary
  double elo = std::fabs(x - dlo), ehi = std::fabs(dhi - x);
  if (elo < ehi) return lo;
  if (ehi < elo) return hi;
  return (lo & 1) ? hi : lo;
}
}  // namespace

TEST(DType, Bf16RoundsToNearestEven) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = bits(rng);
    float f;
    std::memcpy(&f, &u, 4);
    if (std::isnan(f) || std::isinf(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), bf16_reference(f)) << "input bits " << std::hex << u;
  }
  // Exact ties: 1 + 2^-8 lies between bf16 1.0 and 1.0078125; ties to even -> 1.0.
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.00390625f)), 1.0f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.01171875f)), 1.015625f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(DType, F16RoundTripAndRounding) {
  // Every f16 value converts to f32 and back unchanged (NaNs stay NaN).
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h) << "f16 bits " << h;
  }
  // Rounding against the nearest representable neighbour, including subnormals.
  std::mt19937 rng(2);
  std::uniform_real_distribution<double> mag(-30, 17);
  for (int i = 0; i < 100000; ++i) {
    float f = static_cast<float>(std::exp2(mag(rng))) * (i % 2 ? -1.f : 1.f);
    uint16_t h = f32_to_f16(f);
    double got = f16_to_f32(h);
    double up = f16_to_f32(static_cast<uint16_t>(h + 1)), dn = f16_to_f32(static_cast<uint16_t>(h - 1));
    if ((h & 0x7fff) == 0x7c00 || (h & 0x7fff) == 0) continue;
    EXPECT_LE(std::fabs(got - f), std::fabs(up - f) + 0.0) << f;
    EXPECT_LE(std::fabs(got - f), std::fabs(dn - f) + 0.0) << f;
  }
  EXPECT_EQ(f16_to_f32(f32_to_f16(65504.f)), 65504.f);
  EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(65520.f))));
  EXPECT_EQ(f16_to_f32(f32_to_f16(5.9604645e-08f)), 5.9604645e-08f);  // smallest subnormal
}

TEST(DType, ParsesNamesAndRejectsUnknown) {
  EXPECT_EQ(dtype_from_safetensors("BF16"), DType::BF16);
  EXPECT_EQ(dtype_from_name("bfloat16"), DType::BF16);
  EXPECT_EQ(dtype_nbytes(DType::I4, 7), 4u);
  try {
    dtype_from_safetensors("F8_E8M0");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("F8_E8M0"), std::string::npos);
  }
  EXPECT_EQ(dtype_from_safetensors("F8_E4M3"), DType::F8E4M3);
  EXPECT_EQ(dtype_from_safetensors("F8_E5M2"), DType::F8E5M2);
  EXPECT_EQ(dtype_size(DType::F8E4M3), 1u);
}

// Every FP8 code against its float32 bit pattern built field by field (sign, exponent
// rebiased to 127, mantissa shifted to the top of f32's), subnormals as m / 2^k, and the
// values the formats' definitions name (torch.finfo: e4m3fn max 448, e5m2 max 57344).
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
float fp8_by_fields(uint8_t v, int mbits, int bias) {
  const uint32_t sign = (v & 0x80u) << 24;
  const uint32_t e = (v & 0x7fu) >> mbits, m = v & ((1u << mbits) - 1);
  if (e == 0) {
    const float mag = static_cast<float>(m) / static_cast<float>(1u << (mbits + bias - 1));
    return (v & 0x80) ? -mag : mag;
  }
  return from_bits(sign | ((e - bias + 127) << 23) | (m << (23 - mbits)));
}

TEST(DType, Fp8CodesDecodeExactly) {
  int e4m3_nan = 0, e5m2_nonfinite = 0;
  for (int c = 0; c < 256; ++c) {
    const uint8_t v = static_cast<uint8_t>(c);
    const float a = fp8_e4m3_to_f32(v);
    if ((v & 0x7f) == 0x7f) {
      EXPECT_TRUE(std::isnan(a)) << c;
      EXPECT_FALSE(fp8_is_finite(DType::F8E4M3, v));
      ++e4m3_nan;
    } else {
      EXPECT_TRUE(fp8_is_finite(DType::F8E4M3, v));
      const float want = fp8_by_fields(v, 3, 7);
      EXPECT_EQ(0, std::memcmp(&a, &want, 4)) << "e4m3 code " << c << ": " << a << " vs " << want;
    }
    const float b = fp8_e5m2_to_f32(v);
    if ((v & 0x7c) == 0x7c) {
      EXPECT_FALSE(std::isfinite(b)) << c;
      EXPECT_EQ(std::isinf(b), (v & 3) == 0) << c;
      EXPECT_FALSE(fp8_is_finite(DType::F8E5M2, v));
      ++e5m2_nonfinite;
    } else {
      EXPECT_TRUE(fp8_is_finite(DType::F8E5M2, v));
      const float want = fp8_by_fields(v, 2, 15);
      EXPECT_EQ(0, std::memcmp(&b, &want, 4)) << "e5m2 code " << c << ": " << b << " vs " << want;
    }
  }
  EXPECT_EQ(e4m3_nan, 2);
  EXPECT_EQ(e5m2_nonfinite, 8);
  EXPECT_EQ(fp8_e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(0xfe), -448.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x08), 0.015625f);      // smallest normal, 2^-6
  EXPECT_EQ(fp8_e4m3_to_f32(0x01), 0.001953125f);   // smallest subnormal, 2^-9
  EXPECT_TRUE(std::signbit(fp8_e4m3_to_f32(0x80)));  // -0
  EXPECT_EQ(fp8_e5m2_to_f32(0x7b), 57344.0f);
  EXPECT_EQ(fp8_e5m2_to_f32(0x3c), 1.0f);
  EXPECT_EQ(fp8_e5m2_to_f32(0x01), 1.0f / 65536.0f);  // 2^-16
  EXPECT_EQ(fp8_e5m2_to_f32(0xfc), -std::numeric_limits<float>::infinity());
}

// f32 -> e4m3 (--quantization fp8): every code's own value encodes to it; any value to a
// code no farther from it than every other finite code (brute force over all 254), halfway
// values to the code with an even mantissa; beyond 448 saturates, NaN is 0x7f.
TEST(DType, Fp8E4M3EncodesToTheNearestCode) {
  for (int c = 0; c < 256; ++c) {
    const uint8_t v = static_cast<uint8_t>(c);
    if ((v & 0x7f) == 0x7f) continue;
    EXPECT_EQ(f32_to_fp8_e4m3(fp8_e4m3_to_f32(v)), v) << c;
  }
  auto nearest_err = [](float x) {
    float best = INFINITY;
    for (int c = 0; c < 256; ++c)
      if ((c & 0x7f) != 0x7f) best = std::min(best, std::fabs(fp8_e4m3_to_f32(static_cast<uint8_t>(c)) - x));
    return best;
  };
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> mant(-1.0f, 1.0f);
  std::uniform_int_distribution<int> ex(-12, 9);
  for (int i = 0; i < 20000; ++i) {
    const float x = std::ldexp(mant(rng), ex(rng));
    const uint8_t q = f32_to_fp8_e4m3(x);
    ASSERT_NE(q & 0x7f, 0x7f) << x;
    const float xc = std::clamp(x, -448.0f, 448.0f);  // saturating: beyond 448 is 448
    ASSERT_EQ(std::fabs(fp8_e4m3_to_f32(q) - xc), nearest_err(xc)) << x << " -> code " << static_cast<int>(q);
  }
  for (int c = 0; c < 0x7e; ++c) {  // midpoints between neighbours: the even code
    const float a = fp8_e4m3_to_f32(static_cast<uint8_t>(c)), b = fp8_e4m3_to_f32(static_cast<uint8_t>(c + 1));
    const uint8_t q = f32_to_fp8_e4m3((a + b) / 2);
    EXPECT_EQ(q, c % 2 == 0 ? c : c + 1) << "between codes " << c << " and " << c + 1;
    EXPECT_EQ(f32_to_fp8_e4m3(-(a + b) / 2), q | 0x80) << c;
  }
  EXPECT_EQ(f32_to_fp8_e4m3(460.0f), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(1e9f), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(-INFINITY), 0xfe);
  EXPECT_EQ(f32_to_fp8_e4m3(std::nanf("")), 0x7f);
  EXPECT_EQ(f32_to_fp8_e4m3(-0.0f), 0x80);
  EXPECT_EQ(f32_to_fp8_e4m3(1e-30f), 0x00);
}

TEST(DType, Fp8ScanFindsTheFirstNonFiniteCode) {
  // Against a byte-by-byte scan: every byte value at every place of the first words (each
  // lane of the 8-byte steps and the tail), and random buffers with codes planted at random.
  for (const DType t : {DType::F8E4M3, DType::F8E5M2}) {
    auto reference = [&](const std::vector<uint8_t>& c) -> int64_t {
      for (size_t i = 0; i < c.size(); ++i)
        if (!fp8_is_finite(t, c[i])) return static_cast<int64_t>(i);
      return -1;
    };
    for (int n : {0, 1, 7, 8, 9, 21}) {
      std::vector<uint8_t> c(static_cast<size_t>(n), 0x3c);
      ASSERT_EQ(fp8_first_non_finite(t, c.data(), n), -1) << dtype_name(t) << " n " << n;
      for (int at = 0; at < n; ++at)
        for (int v = 0; v < 256; ++v) {
          c[at] = static_cast<uint8_t>(v);
          ASSERT_EQ(fp8_first_non_finite(t, c.data(), n), reference(c)) << dtype_name(t) << " n " << n << " code " << v
                                                                         << " at " << at;
          c[at] = 0x3c;
        }
    }
    std::mt19937_64 rng(11);
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<uint8_t> c(1 + rng() % 3000);
      for (auto& v : c) {
        v = static_cast<uint8_t>(rng());
        if (!fp8_is_finite(t, v)) v &= 0x0f;  // finite everywhere, then a few planted at random
      }
      for (int k = static_cast<int>(rng() % 3); k > 0; --k) c[rng() % c.size()] = t == DType::F8E4M3 ? 0xff : 0x7c;
      ASSERT_EQ(fp8_first_non_finite(t, c.data(), static_cast<int64_t>(c.size())), reference(c)) << trial;
    }
  }
}
