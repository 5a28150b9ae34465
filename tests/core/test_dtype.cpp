#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

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
    dtype_from_safetensors("F8_E4M3");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("F8_E4M3"), std::string::npos);
  }
}
