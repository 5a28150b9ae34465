// RopeTable against two references written here, independently of src/model/rope.cpp:
//  (A) the RoPE formulas of transformers' rope_utils in plain double precision, with a
//      tolerance that covers float32 rounding (it grows with the position), and
//  (B) transformers' float32 recipe step by step with native float ops and libm's powf /
//      cosf / sinf, which must agree to ~1e-6 even at position 40,000 and beyond, where one
//      ulp of inv_freq already moves the angle by ~1e-3.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/config.h"
#include "model/rope.h"

using namespace tllm;
using nlohmann::json;

namespace {

ModelConfig make_config(int head_dim, double theta, int max_pos, const json& rope_scaling) {
  json j = {{"architectures", {"Qwen2ForCausalLM"}},
            {"vocab_size", 128},
            {"hidden_size", head_dim * 4},
            {"intermediate_size", 64},
            {"num_hidden_layers", 1},
            {"num_attention_heads", 4},
            {"num_key_value_heads", 2},
            {"head_dim", head_dim},
            {"max_position_embeddings", max_pos},
            {"rope_theta", theta},
            {"rope_scaling", rope_scaling}};
  return ModelConfig::from_json_text(j.dump(), "rope-test/config.json");
}

// ---- (A) double-precision formulas ------------------------------------------------------

struct DoubleRope {
  std::vector<double> inv;
  double attention = 1.0;
};

DoubleRope double_rope(const ModelConfig& c, int64_t seq_len) {
  const int d = c.head_dim;
  const RopeScaling& s = c.rope_scaling;
  DoubleRope r;
  r.inv.resize(d / 2);
  double base = c.rope_theta;
  if (s.type == RopeType::Dynamic) {
    const double L = std::max<double>(seq_len, c.max_position_embeddings);
    base *= std::pow(s.factor * L / c.max_position_embeddings - (s.factor - 1), double(d) / (d - 2));
  }
  for (int i = 0; i < d / 2; ++i) r.inv[i] = std::pow(base, -2.0 * i / d);
  if (s.type == RopeType::Linear)
    for (double& v : r.inv) v /= s.factor;
  if (s.type == RopeType::Llama3) {
    // Llama 3.1: frequencies whose wavelength exceeds the original context / low_freq_factor
    // are divided by the factor, those shorter than context / high_freq_factor kept, and the
    // ones between interpolated linearly in context / wavelength.
    const double ctx = s.original_max_position_embeddings;
    for (double& v : r.inv) {
      const double wavelength = 2 * M_PI / v;
      if (wavelength > ctx / s.low_freq_factor) {
        v /= s.factor;
      } else if (wavelength >= ctx / s.high_freq_factor) {
        const double t = (ctx / wavelength - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        v = (1 - t) * v / s.factor + t * v;
      }
    }
  }
  if (s.type == RopeType::Yarn) {
    // YaRN (arXiv 2309.00071) as in transformers: blend interpolated and extrapolated
    // frequencies with a linear ramp over the dimensions between the correction bounds.
    auto dim_for = [&](double rotations) {
      return d * std::log(s.original_max_position_embeddings / (rotations * 2 * M_PI)) / (2 * std::log(base));
    };
    double lo = dim_for(s.beta_fast), hi = dim_for(s.beta_slow);
    if (s.truncate) lo = std::floor(lo), hi = std::ceil(hi);
    lo = std::max(lo, 0.0);
    hi = std::min(hi, d - 1.0);
    if (lo == hi) hi += 0.001;
    for (int i = 0; i < d / 2; ++i) {
      const double ramp = std::clamp((i - lo) / (hi - lo), 0.0, 1.0);
      r.inv[i] = r.inv[i] / s.factor * ramp + r.inv[i] * (1 - ramp);
    }
    auto mscale = [](double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; };
    if (s.attention_factor)
      r.attention = *s.attention_factor;
    else if (s.mscale.value_or(0) != 0 && s.mscale_all_dim.value_or(0) != 0)
      r.attention = mscale(s.factor, *s.mscale) / mscale(s.factor, *s.mscale_all_dim);
    else
      r.attention = mscale(s.factor, 1.0);
  }
  return r;
}

// ---- (B) transformers' float32 recipe with native float ops ------------------------------

std::vector<float> f32_inv_freq(const ModelConfig& c, int64_t seq_len) {
  const int d = c.head_dim;
  const RopeScaling& s = c.rope_scaling;
  std::vector<float> inv(d / 2);
  volatile float tmp;  // keeps each f32 op rounded on its own (no FMA contraction)
  if (s.type == RopeType::Dynamic && seq_len > c.max_position_embeddings) {
    // On the GPU: x / scalar == x * (1 / scalar) in f32.
    float x = float(s.factor) * float(seq_len);
    tmp = x;
    x = tmp * (1.0f / float(c.max_position_embeddings));
    tmp = x;
    x = tmp - float(s.factor - 1);
    x = powf(x, float(double(d) / (d - 2)));
    tmp = float(c.rope_theta) * x;
    const float b = tmp;
    for (int i = 0; i < d / 2; ++i) {
      tmp = float(2 * i) * (1.0f / float(d));
      inv[i] = 1.0f / powf(b, tmp);
    }
    return inv;
  }
  double base = c.rope_theta;
  if (s.type == RopeType::Dynamic) {
    const double m = c.max_position_embeddings;
    base *= std::pow(s.factor * m / m - (s.factor - 1), double(d) / (d - 2));
  }
  std::vector<float> pos_freq(d / 2);
  for (int i = 0; i < d / 2; ++i) {
    tmp = float(2 * i) / float(d);
    pos_freq[i] = powf(float(base), tmp);
    inv[i] = 1.0f / pos_freq[i];
  }
  if (s.type == RopeType::Linear)
    for (float& v : inv) v = v / float(s.factor);
  if (s.type == RopeType::Llama3) {
    // torch: `2 * math.pi / inv_freq` is reciprocal(inv_freq) * 2pi, and so is ctx / wavelen.
    const double ctx = s.original_max_position_embeddings;
    const float low_wl = float(ctx / s.low_freq_factor), high_wl = float(ctx / s.high_freq_factor);
    for (float& v : inv) {
      tmp = 1.0f / v;
      const float wl = tmp * float(2 * M_PI);
      const float divided = wl > low_wl ? v / float(s.factor) : v;
      if (!(wl < high_wl) && !(wl > low_wl)) {
        tmp = 1.0f / wl;
        tmp = tmp * float(ctx);
        tmp = tmp - float(s.low_freq_factor);
        const float t = tmp / float(s.high_freq_factor - s.low_freq_factor);
        tmp = (1.0f - t) * divided;
        const float a = tmp / float(s.factor);
        tmp = t * divided;
        v = a + tmp;
      } else {
        v = divided;
      }
    }
  }
  if (s.type == RopeType::Yarn) {
    const double orig = s.original_max_position_embeddings;
    auto dim_for = [&](double rot) { return (d * std::log(orig / (rot * 2 * M_PI))) / (2 * std::log(base)); };
    double lo = dim_for(s.beta_fast), hi = dim_for(s.beta_slow);
    if (s.truncate) lo = std::floor(lo), hi = std::ceil(hi);
    lo = std::max(lo, 0.0);
    hi = std::min(hi, d - 1.0);
    if (lo == hi) hi += 0.001;
    for (int i = 0; i < d / 2; ++i) {
      tmp = float(i) - float(lo);
      float ramp = tmp / float(hi - lo);
      ramp = std::min(std::max(ramp, 0.0f), 1.0f);
      const float extra_factor = 1.0f - ramp;
      tmp = float(s.factor) * pos_freq[i];
      const float interpolation = 1.0f / tmp;
      tmp = interpolation * (1.0f - extra_factor);
      const float a = tmp;
      tmp = inv[i] * extra_factor;
      inv[i] = a + tmp;
    }
  }
  return inv;
}

std::vector<float> f32_row(const std::vector<float>& inv, int64_t pos, float attention) {
  const size_t half = inv.size();
  std::vector<float> row(2 * half);
  volatile float angle;
  for (size_t i = 0; i < half; ++i) {
    angle = inv[i] * float(pos);
    row[i] = cosf(angle) * attention;
    row[half + i] = sinf(angle) * attention;
  }
  return row;
}

std::vector<float> rope_row(const RopeTable& t, int64_t pos, int64_t seq_len) {
  std::vector<float> out(t.rotary_dim());
  t.row(pos, seq_len, out.data());
  return out;
}

// Checks one RopeTable against both references at `positions` (seq_len = pos + 1 unless given).
void check_against_references(const ModelConfig& c, const std::vector<int64_t>& positions, int64_t seq_len = -1) {
  RopeTable t(c);
  ASSERT_EQ(t.rotary_dim(), c.head_dim);
  const int half = c.head_dim / 2;
  for (int64_t pos : positions) {
    const int64_t L = seq_len < 0 ? pos + 1 : seq_len;
    SCOPED_TRACE(::testing::Message() << rope_type_name(c.rope_scaling.type) << " position " << pos << " seq_len " << L);
    const std::vector<float> got = rope_row(t, pos, L);

    const DoubleRope ref = double_rope(c, L);
    EXPECT_NEAR(t.attention_scaling(), ref.attention, 1e-7);
    // f32 inv_freq (~1 ulp) and the f32 angle (half an ulp) each err by ~6e-8 relative.
    const double tol_a = ref.attention * (3e-7 + 2.5e-7 * static_cast<double>(pos));
    for (int i = 0; i < half; ++i) {
      const double angle = ref.inv[i] * pos;
      ASSERT_NEAR(got[i], std::cos(angle) * ref.attention, tol_a) << "cos, i = " << i;
      ASSERT_NEAR(got[half + i], std::sin(angle) * ref.attention, tol_a) << "sin, i = " << i;
    }

    const std::vector<float> want = f32_row(f32_inv_freq(c, L), pos, t.attention_scaling());
    for (int i = 0; i < c.head_dim; ++i) ASSERT_NEAR(got[i], want[i], 1e-6) << "f32 recipe, column " << i;
  }
}

const std::vector<int64_t> kPositions = {0, 1, 2, 3, 7, 63, 100, 511, 1000, 4095, 4096, 8191, 32767, 40000, 65535, 131071};

}  // namespace

TEST(Rope, DefaultMatchesReferences) {
  check_against_references(make_config(128, 1e6, 32768, nullptr), kPositions);
  check_against_references(make_config(64, 1e4, 32768, nullptr), kPositions);
  check_against_references(make_config(16, 1e4, 512, nullptr), kPositions);
  RopeTable t(make_config(128, 1e6, 32768, nullptr));
  EXPECT_FALSE(t.depends_on_seq_len());
  EXPECT_EQ(t.attention_scaling(), 1.0f);
}

TEST(Rope, InvFreqIsTheFloat32Recipe) {
  // inv_freq must be bit-identical to the f32 recipe: at position 40,000 an ulp matters.
  for (const json& rs : {json(nullptr), json{{"type", "linear"}, {"factor", 3.0}},
                         json{{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}},
                         json{{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                              {"original_max_position_embeddings", 8192}}}) {
    for (double theta : {1e4, 5e5, 1e6}) {
      ModelConfig c = make_config(128, theta, 131072, rs);
      RopeTable t(c);
      const std::vector<float> want = f32_inv_freq(c, 1);
      const std::vector<float> got = t.inv_freq();
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_EQ(got[i], want[i]) << rs.dump() << " theta " << theta << " i " << i;
    }
  }
}

TEST(Rope, LinearMatchesReferences) {
  check_against_references(make_config(64, 1e4, 8192, json{{"type", "linear"}, {"factor", 4.0}}), kPositions);
  check_against_references(make_config(128, 1e6, 8192, json{{"rope_type", "linear"}, {"factor", 2.5}}), kPositions);
}

TEST(Rope, YarnMatchesReferencesBeyondOriginalContext) {
  // Qwen2.5 / Qwen3 long-context recipe: 4x over 32k.
  ModelConfig q = make_config(128, 1e6, 131072,
                              json{{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}});
  check_against_references(q, kPositions);
  RopeTable t(q);
  EXPECT_FLOAT_EQ(t.attention_scaling(), static_cast<float>(0.1 * std::log(4.0) + 1.0));
  EXPECT_FALSE(t.depends_on_seq_len());
  // original_max_position_embeddings defaults to max_position_embeddings.
  check_against_references(make_config(64, 1e4, 4096, json{{"type", "yarn"}, {"factor", 8.0}}), kPositions);
  // DeepSeek-style mscale ratio, no truncation, custom betas.
  check_against_references(make_config(64, 1e4, 4096,
                                        json{{"type", "yarn"},
                                             {"factor", 40.0},
                                             {"mscale", 0.707},
                                             {"mscale_all_dim", 1.0},
                                             {"beta_fast", 16},
                                             {"beta_slow", 2},
                                             {"truncate", false}}),
                           kPositions);
  // An explicit attention factor, and the small tiny-model case of the goldens.
  check_against_references(make_config(16, 1e4, 256,
                                        json{{"type", "yarn"},
                                             {"factor", 4.0},
                                             {"original_max_position_embeddings", 64},
                                             {"attention_factor", 0.8}}),
                           kPositions);
  check_against_references(make_config(16, 1e4, 256, json{{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 64}}),
                           kPositions);
}

TEST(Rope, Llama3MatchesReferences) {
  // Llama 3.1 / 3.2's rope_scaling, and one whose blend covers more of the frequencies.
  const json llama31 = {{"rope_type", "llama3"},
                        {"factor", 8.0},
                        {"low_freq_factor", 1.0},
                        {"high_freq_factor", 4.0},
                        {"original_max_position_embeddings", 8192}};
  ModelConfig c = make_config(128, 5e5, 131072, llama31);
  check_against_references(c, kPositions);
  json llama32 = llama31;
  llama32["factor"] = 32.0;
  check_against_references(make_config(64, 5e5, 131072, llama32), kPositions);
  check_against_references(make_config(16, 1e4, 256,
                                        json{{"rope_type", "llama3"},
                                             {"factor", 4.0},
                                             {"low_freq_factor", 0.5},
                                             {"high_freq_factor", 8.0},
                                             {"original_max_position_embeddings", 64}}),
                           kPositions);
  RopeTable t(c);
  EXPECT_FALSE(t.depends_on_seq_len());
  EXPECT_EQ(t.attention_scaling(), 1.0f);
  // All three regimes occur: kept, divided by the factor, and blended.
  const RopeTable plain(make_config(128, 5e5, 131072, nullptr));
  const std::vector<float> scaled = t.inv_freq(), unscaled = plain.inv_freq();
  int kept = 0, divided = 0, blended = 0;
  for (size_t i = 0; i < scaled.size(); ++i) {
    const float a = scaled[i], b = unscaled[i];
    kept += a == b;
    divided += a == b / 8.0f;
    blended += a < b && a > b / 8.0f;
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(blended, 0);
  EXPECT_EQ(kept + divided + blended, 64);
}

TEST(Rope, DynamicFollowsSequenceLength) {
  ModelConfig c = make_config(128, 1e4, 4096, json{{"type", "dynamic"}, {"factor", 2.0}});
  RopeTable t(c);
  EXPECT_TRUE(t.depends_on_seq_len());
  EXPECT_THROW(t.table(4), Error);
  // Within the original context: the unscaled frequencies, whatever the position.
  check_against_references(c, {0, 1, 100, 4095}, 4096);
  check_against_references(c, {0, 5, 99}, 100);
  // Beyond it: recomputed with seq_len = max position + 1.
  check_against_references(c, {4096}, 4097);
  check_against_references(c, {0, 17, 4096, 9999}, 10000);
  check_against_references(c, {0, 1000, 39999}, 40000);
  check_against_references(c, kPositions, 131072);
  // The same position differs once the sequence is longer than max_position_embeddings.
  EXPECT_NE(rope_row(t, 100, 4096), rope_row(t, 100, 8192));
  EXPECT_EQ(rope_row(t, 100, 4096), rope_row(t, 100, 200));
  // Non-integral factor: the init-time NTK term is 1 only up to rounding.
  check_against_references(make_config(64, 1e4, 48, json{{"type", "dynamic"}, {"factor", 1.3}}), {0, 5, 47}, 48);
  check_against_references(make_config(16, 1e4, 48, json{{"type", "dynamic"}, {"factor", 2.0}}), {0, 47, 60, 99}, 100);
  // Lengths where the GPU's `x * (1 / 48)` and a true `x / 48` round differently in f32.
  for (int64_t L : {50, 53, 56, 59}) check_against_references(make_config(16, 1e4, 48, json{{"type", "dynamic"}, {"factor", 2.0}}), {L - 1}, L);
  for (int64_t L : {40963, 40968}) check_against_references(make_config(128, 1e6, 40960, json{{"type", "dynamic"}, {"factor", 2.0}}), {L - 1}, L);
}

TEST(Rope, TableRowsEqualRows) {
  for (const json& rs : {json(nullptr), json{{"type", "linear"}, {"factor", 2.0}},
                         json{{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 64}},
                         json{{"rope_type", "llama3"}, {"factor", 4.0}, {"low_freq_factor", 1.0},
                              {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}}}) {
    RopeTable t(make_config(32, 1e4, 256, rs));
    Tensor tab = t.table(300);
    ASSERT_EQ(tab.dtype(), DType::F32);
    ASSERT_EQ(tab.shape(), (Shape{300, 32}));
    for (int64_t pos : {0, 1, 64, 255, 299}) {
      const std::vector<float> r = rope_row(t, pos, pos + 1);
      EXPECT_EQ(std::memcmp(tab.data<float>() + pos * 32, r.data(), 32 * sizeof(float)), 0) << pos;
    }
    EXPECT_EQ(t.table(0).numel(), 0);
  }
}

TEST(Rope, PositionsAreFloat32LikeTransformers) {
  // position_ids.float(): 2^24 + 1 is not representable and rounds to 2^24.
  RopeTable t(make_config(64, 1e4, 32768, nullptr));
  EXPECT_EQ(rope_row(t, (1 << 24) + 1, 1), rope_row(t, 1 << 24, 1));
  EXPECT_NE(rope_row(t, (1 << 24) + 2, 1), rope_row(t, 1 << 24, 1));
}

TEST(Rope, Errors) {
  RopeTable t(make_config(64, 1e4, 32768, nullptr));
  std::vector<float> out(64);
  EXPECT_THROW(t.row(-1, 1, out.data()), InvalidArgument);
  RopeTable d(make_config(64, 1e4, 128, json{{"type", "dynamic"}, {"factor", 2.0}}));
  EXPECT_THROW(d.row(500, 300, out.data()), InvalidArgument);  // seq_len must exceed the position
  // Copies share nothing that breaks: a copied dynamic table gives the same rows.
  RopeTable d2 = d;
  EXPECT_EQ(rope_row(d, 250, 300), rope_row(d2, 250, 300));
}
