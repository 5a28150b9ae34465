#include "model/rope.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "core/error.h"

namespace tllm {

namespace {

// One float32 operation each: computed in double and rounded once to float. For +, -, *, /
// of floats that equals the float op (53 >= 2 * 24 + 2 makes the double rounding
// innocuous), and keeping every op in its own rounded step leaves the compiler nothing to
// contract into an FMA (torch runs each op as its own kernel).
inline float f32_mul(float a, float b) { return static_cast<float>(static_cast<double>(a) * b); }
inline float f32_div(float a, float b) { return static_cast<float>(static_cast<double>(a) / b); }
inline float f32_sub(float a, float b) { return static_cast<float>(static_cast<double>(a) - b); }
inline float f32_add(float a, float b) { return static_cast<float>(static_cast<double>(a) + b); }
// torch float32 pow (powf); the double pow rounded to float is the correctly rounded result.
inline float f32_pow(float a, float b) { return static_cast<float>(std::pow(static_cast<double>(a), b)); }

// `1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))` on the CPU,
// where inv_freq is built at model init: base is a Python float (cast to f32 by the pow
// kernel) and `/ dim` is a true f32 division.
std::vector<float> default_inv_freq(double base, int dim) {
  std::vector<float> inv(dim / 2);
  const float base_f = static_cast<float>(base);
  for (int i = 0; i < dim / 2; ++i) {
    const float e = f32_div(static_cast<float>(2 * i), static_cast<float>(dim));
    inv[i] = f32_div(1.0f, f32_pow(base_f, e));
  }
  return inv;
}

// transformers' yarn (`_compute_yarn_parameters`): returns inv_freq, sets attention factor.
std::vector<float> yarn_inv_freq(double base, int dim, const RopeScaling& s, double* attention_factor) {
  const double factor = s.factor;
  auto get_mscale = [](double scale, double mscale) {
    if (scale <= 1) return 1.0;
    return 0.1 * mscale * std::log(scale) + 1.0;
  };
  if (s.attention_factor) {
    *attention_factor = *s.attention_factor;
  } else if (s.mscale && s.mscale_all_dim && *s.mscale != 0 && *s.mscale_all_dim != 0) {
    *attention_factor = get_mscale(factor, *s.mscale) / get_mscale(factor, *s.mscale_all_dim);
  } else {
    *attention_factor = get_mscale(factor, 1.0);
  }

  // Correction range in Python doubles.
  const double orig = s.original_max_position_embeddings;
  auto correction_dim = [&](double num_rotations) {
    return (dim * std::log(orig / (num_rotations * 2 * M_PI))) / (2 * std::log(base));
  };
  double low = correction_dim(s.beta_fast);
  double high = correction_dim(s.beta_slow);
  if (s.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // linear_ramp_factor's guard against a zero range

  const int half = dim / 2;
  const float base_f = static_cast<float>(base);
  const float factor_f = static_cast<float>(factor);
  const float low_f = static_cast<float>(low);
  const float range_f = static_cast<float>(high - low);  // `(max - min)` in Python, then f32
  std::vector<float> inv(half);
  for (int i = 0; i < half; ++i) {
    const float pos_freq = f32_pow(base_f, f32_div(static_cast<float>(2 * i), static_cast<float>(dim)));
    const float extrapolation = f32_div(1.0f, pos_freq);
    const float interpolation = f32_div(1.0f, f32_mul(factor_f, pos_freq));
    float ramp = f32_div(f32_sub(static_cast<float>(i), low_f), range_f);
    ramp = std::min(std::max(ramp, 0.0f), 1.0f);
    const float extrapolation_factor = f32_sub(1.0f, ramp);
    inv[i] = f32_add(f32_mul(interpolation, f32_sub(1.0f, extrapolation_factor)),
                     f32_mul(extrapolation, extrapolation_factor));
  }
  return inv;
}

// transformers' llama3 (`_compute_llama3_parameters`) over the default inv_freq, on the CPU
// at init. `scalar / tensor` is torch's reciprocal-then-multiply; comparisons with a Python
// float compare in f32.
std::vector<float> llama3_inv_freq(double base, int dim, const RopeScaling& s) {
  std::vector<float> inv = default_inv_freq(base, dim);
  const double old_len = s.original_max_position_embeddings;
  const float low_wavelen = static_cast<float>(old_len / s.low_freq_factor);
  const float high_wavelen = static_cast<float>(old_len / s.high_freq_factor);
  const float two_pi = static_cast<float>(2 * M_PI), old_f = static_cast<float>(old_len);
  const float factor = static_cast<float>(s.factor), low = static_cast<float>(s.low_freq_factor);
  const float span = static_cast<float>(s.high_freq_factor - s.low_freq_factor);
  for (float& v : inv) {
    const float wavelen = f32_mul(f32_div(1.0f, v), two_pi);
    const float scaled = wavelen > low_wavelen ? f32_div(v, factor) : v;  // the long wavelengths
    if (wavelen < high_wavelen || wavelen > low_wavelen) {
      v = scaled;
      continue;
    }
    // Between the two: (1 - smooth) * f / factor + smooth * f.
    const float smooth = f32_div(f32_sub(f32_mul(f32_div(1.0f, wavelen), old_f), low), span);
    v = f32_add(f32_div(f32_mul(f32_sub(1.0f, smooth), scaled), factor), f32_mul(smooth, scaled));
  }
  return inv;
}

}  // namespace

struct RopeTable::DynamicCache {
  std::mutex mu;
  int64_t seq_len = -1;
  std::vector<float> inv_freq;
};

RopeTable::RopeTable(const ModelConfig& cfg)
    : type_(cfg.rope_scaling.type),
      rotary_dim_(cfg.head_dim),
      rope_theta_(cfg.rope_theta),
      factor_(cfg.rope_scaling.factor),
      max_position_embeddings_(cfg.max_position_embeddings),
      cache_(std::make_shared<DynamicCache>()) {
  TLLM_CHECK_ARG(rotary_dim_ > 0 && rotary_dim_ % 2 == 0, "RoPE needs an even, positive head_dim; got ",
                 rotary_dim_);
  TLLM_CHECK_ARG(std::isfinite(rope_theta_) && rope_theta_ > 0, "rope_theta must be positive; got ", rope_theta_);
  TLLM_CHECK_ARG(std::isfinite(factor_) && factor_ > 0, "RoPE scaling factor must be positive; got ", factor_);
  double attention_factor = 1.0;
  switch (type_) {
    case RopeType::Default:
      inv_freq_ = default_inv_freq(rope_theta_, rotary_dim_);
      break;
    case RopeType::Dynamic: {
      TLLM_CHECK_ARG(rotary_dim_ > 2, "dynamic RoPE needs head_dim > 2 (its exponent is dim / (dim - 2))");
      // At init transformers evaluates the NTK formula with seq_len = max_position_embeddings
      // in Python doubles; the ratio term is 1 up to rounding, and that rounding is kept.
      const double m = max_position_embeddings_;
      const double base = rope_theta_ * std::pow((factor_ * m / m) - (factor_ - 1), static_cast<double>(rotary_dim_) /
                                                                                         (rotary_dim_ - 2));
      inv_freq_ = default_inv_freq(base, rotary_dim_);
      break;
    }
    case RopeType::Linear: {
      // `inv_freq /= factor`: f32 division by the factor cast to f32.
      inv_freq_ = default_inv_freq(rope_theta_, rotary_dim_);
      const float f = static_cast<float>(factor_);
      for (float& v : inv_freq_) v = f32_div(v, f);
      break;
    }
    case RopeType::Yarn:
      TLLM_CHECK_ARG(cfg.rope_scaling.original_max_position_embeddings > 0,
                     "yarn needs original_max_position_embeddings > 0");
      inv_freq_ = yarn_inv_freq(rope_theta_, rotary_dim_, cfg.rope_scaling, &attention_factor);
      break;
    case RopeType::Llama3:
      TLLM_CHECK_ARG(cfg.rope_scaling.original_max_position_embeddings > 0,
                     "llama3 RoPE needs original_max_position_embeddings > 0");
      TLLM_CHECK_ARG(cfg.rope_scaling.high_freq_factor > cfg.rope_scaling.low_freq_factor &&
                         cfg.rope_scaling.low_freq_factor > 0,
                     "llama3 RoPE needs 0 < low_freq_factor < high_freq_factor");
      inv_freq_ = llama3_inv_freq(rope_theta_, rotary_dim_, cfg.rope_scaling);
      break;
  }
  // `cos * attention_scaling`: the Python float meets an f32 tensor, so it acts as an f32.
  attention_scaling_ = static_cast<float>(attention_factor);
}

std::vector<float> RopeTable::dynamic_inv_freq(int64_t seq_len) const {
  // `base * ((factor * seq_len / max_pos) - (factor - 1)) ** (dim / (dim - 2))` with seq_len
  // an int64 CUDA tensor: every step is an f32 tensor op against a Python scalar cast to f32,
  // and `/ scalar` is a multiply by the f32 reciprocal on CUDA. Then the default recipe with
  // that f32 base (`/ dim` on the GPU: multiply by 1/dim).
  const int dim = rotary_dim_;
  const float seq_f = static_cast<float>(seq_len);
  float x = f32_mul(static_cast<float>(factor_), seq_f);
  x = f32_mul(x, f32_div(1.0f, static_cast<float>(max_position_embeddings_)));
  x = f32_sub(x, static_cast<float>(factor_ - 1.0));
  const float exponent = static_cast<float>(static_cast<double>(dim) / (dim - 2));
  x = exponent == 2.0f ? f32_mul(x, x) : f32_pow(x, exponent);
  const float base_f = f32_mul(static_cast<float>(rope_theta_), x);
  const float inv_dim = f32_div(1.0f, static_cast<float>(dim));
  std::vector<float> inv(dim / 2);
  for (int i = 0; i < dim / 2; ++i)
    inv[i] = f32_div(1.0f, f32_pow(base_f, f32_mul(static_cast<float>(2 * i), inv_dim)));
  return inv;
}

std::vector<float> RopeTable::inv_freq(int64_t seq_len) const {
  if (type_ == RopeType::Dynamic && seq_len > max_position_embeddings_) return dynamic_inv_freq(seq_len);
  return inv_freq_;
}

void RopeTable::row_from_inv_freq(const float* inv_freq, int64_t position, float* out) const {
  const int half = rotary_dim_ / 2;
  // position_ids.float(): exact below 2^24, rounded to nearest above.
  const float pos = static_cast<float>(position);
  const bool scaled = attention_scaling_ != 1.0f;
  for (int i = 0; i < half; ++i) {
    const float angle = f32_mul(inv_freq[i], pos);  // the f32 matmul `inv_freq @ position` (K = 1)
    float c = static_cast<float>(std::cos(static_cast<double>(angle)));
    float s = static_cast<float>(std::sin(static_cast<double>(angle)));
    if (scaled) {
      c = f32_mul(c, attention_scaling_);
      s = f32_mul(s, attention_scaling_);
    }
    out[i] = c;
    out[half + i] = s;
  }
}

void RopeTable::row(int64_t position, int64_t seq_len, float* out) const {
  TLLM_CHECK_ARG(position >= 0, "RoPE position must be >= 0; got ", position);
  if (type_ != RopeType::Dynamic || seq_len <= max_position_embeddings_) {
    row_from_inv_freq(inv_freq_.data(), position, out);
    return;
  }
  TLLM_CHECK_ARG(seq_len > position, "dynamic RoPE: seq_len ", seq_len, " must exceed position ", position);
  std::lock_guard<std::mutex> lock(cache_->mu);
  if (cache_->seq_len != seq_len) {
    cache_->inv_freq = dynamic_inv_freq(seq_len);
    cache_->seq_len = seq_len;
  }
  row_from_inv_freq(cache_->inv_freq.data(), position, out);
}

Tensor RopeTable::table(int64_t n) const {
  TLLM_CHECK(!depends_on_seq_len(), "RopeTable::table: dynamic RoPE depends on the sequence length; use row()");
  TLLM_CHECK_ARG(n >= 0, "RopeTable::table: negative row count ", n);
  Tensor t = Tensor::empty({n, rotary_dim_}, DType::F32);
  float* p = t.data<float>();
  for (int64_t pos = 0; pos < n; ++pos) row_from_inv_freq(inv_freq_.data(), pos, p + pos * rotary_dim_);
  return t;
}

}  // namespace tllm
