// Model-level helpers of the quantization tests: logits of one prompt run as a single
// prefill on a backend, random prompts, KL divergence and top-1 agreement of logits.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/backend.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace tllm::test {

// The small test models of these tests loaded on `be` (64 tokens, 4 sequences per step); a
// pooling model computes no logits and loads no lm_head.
inline std::unique_ptr<CausalLM> load_test_model(Backend& be, const std::filesystem::path& dir, DType weight_dtype,
                                                 const std::string& quantization, int group, bool pooling = false) {
  ModelLoadOptions o;
  o.weight_dtype = weight_dtype;
  o.max_num_tokens = 64;
  o.max_num_seqs = 4;
  o.quantization = quantization;
  o.quant_group_size = group;
  o.pooling = pooling;
  return load_model(dir.string(), be, o);
}

// Logits [P, V] (f32, host) of `prompt` as one prefill of a model loaded from `dir`.
inline Tensor model_logits(Backend& be, const std::filesystem::path& dir, DType weight_dtype,
                           const std::vector<int32_t>& prompt, const std::string& quantization = "",
                           int group = 64) {
  auto model = load_test_model(be, dir, weight_dtype, quantization, group);
  KVCache kv = KVCache::allocate(be, model->config(), 8, 16, be.activation_dtype());
  ForwardBatch b;
  const int P = static_cast<int>(prompt.size());
  b.tokens = prompt;
  for (int i = 0; i < P; ++i) {
    b.positions.push_back(i);
    b.slot_mapping.push_back(16 + i);
    b.logits_indices.push_back(i);
  }
  b.cu_seqlens_q = {0, P};
  b.seq_lens_k = {P};
  b.max_blocks_per_seq = 4;
  b.block_tables = {1, 2, 3, 4};
  Tensor l = model->forward(b, kv);
  return be.download(l);
}

inline std::vector<int32_t> random_prompt(int n, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> p(n);
  for (int32_t& t : p) t = static_cast<int32_t>(rng() % vocab);
  return p;
}

// Largest |value| of a host f32 tensor, and largest |a - b| of two of the same size.
inline double max_abs(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(t.data<float>()[i])));
  return m;
}
inline double max_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    m = std::max(m, std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]));
  return m;
}

// KL(softmax(ref) || softmax(got)) averaged over rows, and the fraction of rows whose argmax agrees.
inline std::pair<double, double> kl_top1(const Tensor& ref, const Tensor& got) {
  const int64_t V = ref.dim(1), R = ref.dim(0);
  double kl = 0, agree = 0;
  for (int64_t r = 0; r < R; ++r) {
    const float* a = ref.data<float>() + r * V;
    const float* b = got.data<float>() + r * V;
    double ma = -1e30, mb = -1e30;
    int64_t ia = 0, ib = 0;
    for (int64_t v = 0; v < V; ++v) {
      if (a[v] > ma) ma = a[v], ia = v;
      if (b[v] > mb) mb = b[v], ib = v;
    }
    double za = 0, zb = 0;
    for (int64_t v = 0; v < V; ++v) za += std::exp(a[v] - ma), zb += std::exp(b[v] - mb);
    for (int64_t v = 0; v < V; ++v) {
      const double la = a[v] - ma - std::log(za), lb = b[v] - mb - std::log(zb);
      kl += std::exp(la) * (la - lb);
    }
    agree += ia == ib;
  }
  return {kl / R, agree / R};
}

}  // namespace tllm::test
