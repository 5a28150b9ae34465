// Naive double-precision references of the MoE ops (see moe_reference.h).
#include "kernels/reference/moe_reference.h"

#include <cmath>
#include <numeric>
#include <vector>


namespace tllm::ref {

namespace {

double load(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::F32: return t.data<float>()[i];
    case DType::F64: return t.data<double>()[i];
    case DType::BF16: return bf16_to_f32(t.data<uint16_t>()[i]);
    case DType::F16: return f16_to_f32(t.data<uint16_t>()[i]);
    default: TLLM_THROW("moe reference: unsupported dtype ", dtype_name(t.dtype()));
  }
}

void store(Tensor& t, int64_t i, double v) {
  const float f = static_cast<float>(v);
  switch (t.dtype()) {
    case DType::F32: t.data<float>()[i] = f; break;
    case DType::BF16: t.data<uint16_t>()[i] = f32_to_bf16(f); break;
    case DType::F16: t.data<uint16_t>()[i] = f32_to_f16(f); break;
    default: TLLM_THROW("moe reference: unsupported output dtype ", dtype_name(t.dtype()));
  }
}

// y[N] = W x[K] for one row x (double in, double out).
std::vector<double> matvec(const LinearWeight& w, const std::vector<double>& x) {
  std::vector<double> y;
  if (w.quant == QuantScheme::None) {
    const int64_t N = w.weight.dim(0), K = w.weight.dim(1);
    y.assign(static_cast<size_t>(N), 0.0);
    for (int64_t n = 0; n < N; ++n) {
      double s = w.bias.defined() ? load(w.bias, n) : 0.0;
      for (int64_t k = 0; k < K; ++k) s += x[k] * load(w.weight, n * K + k);
      y[n] = s;
    }
    return y;
  }
  TLLM_THROW("moe reference: quantized weights are packed for a backend; give the reference their dequantized "
             "dense form (ref::dequantize)");
}

// down(silu(gate x) * up x) for one token; gate_up [2I, H], down [H, I].
std::vector<double> mlp(const LinearWeight& gate_up, const LinearWeight& down, const std::vector<double>& x) {
  const std::vector<double> gu = matvec(gate_up, x);
  const size_t I = gu.size() / 2;
  std::vector<double> act(I);
  for (size_t i = 0; i < I; ++i) act[i] = gu[i] / (1.0 + std::exp(-gu[i])) * gu[I + i];
  return matvec(down, act);
}

}  // namespace

void moe_route(Tensor& topk_ids, Tensor& topk_weights, const Tensor& router_logits, bool renormalize) {
  const int64_t E = router_logits.dim(-1), T = router_logits.numel() / E, k = topk_ids.dim(-1);
  TLLM_CHECK(k >= 1 && k <= E, "moe reference: k = ", k, " for ", E, " experts");
  std::vector<double> p(static_cast<size_t>(E));
  std::vector<bool> taken(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t) {
    double mx = -INFINITY;
    for (int64_t e = 0; e < E; ++e) {
      p[e] = load(router_logits, t * E + e);
      mx = std::max(mx, p[e]);
    }
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += (p[e] = std::exp(p[e] - mx));
    for (int64_t e = 0; e < E; ++e) p[e] /= sum;
    std::fill(taken.begin(), taken.end(), false);
    double chosen_sum = 0;
    for (int64_t j = 0; j < k; ++j) {
      int64_t best = -1;
      for (int64_t e = 0; e < E; ++e) {
        if (taken[e]) continue;
        if (best < 0) { best = e; continue; }
        const bool nan_e = std::isnan(p[e]), nan_b = std::isnan(p[best]);
        if ((nan_e && !nan_b) || (!nan_b && p[e] > p[best])) best = e;  // strict: ties keep the lower id
      }
      taken[best] = true;
      topk_ids.data<int32_t>()[t * k + j] = static_cast<int32_t>(best);
      topk_weights.data<float>()[t * k + j] = static_cast<float>(p[best]);
      chosen_sum += p[best];
    }
    if (renormalize)
      for (int64_t j = 0; j < k; ++j) {
        const int32_t e = topk_ids.data<int32_t>()[t * k + j];
        topk_weights.data<float>()[t * k + j] = static_cast<float>(p[e] / chosen_sum);
      }
  }
}

void moe_experts(Tensor& out, const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                 const MoeExperts& w) {
  const int64_t H = w.hidden, T = x.numel() / H, k = topk_ids.dim(-1);
  std::vector<double> xt(static_cast<size_t>(H)), acc(static_cast<size_t>(H));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < H; ++h) xt[h] = load(x, t * H + h);
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t j = 0; j < k; ++j) {
      const int32_t e = topk_ids.data<int32_t>()[t * k + j];
      if (e < 0 || e >= w.num_experts) continue;
      const double wt = topk_weights.data<float>()[t * k + j];
      const std::vector<double> y = mlp(w.expert_gate_up(e), w.expert_down(e), xt);
      for (int64_t h = 0; h < H; ++h) acc[h] += wt * y[h];
    }
    if (w.shared_inter > 0) {
      double g = 0;
      for (int64_t h = 0; h < H; ++h) g += xt[h] * load(w.shared_gate, h);
      const double s = 1.0 / (1.0 + std::exp(-g));
      const std::vector<double> y = mlp(w.shared_gate_up, w.shared_down, xt);
      for (int64_t h = 0; h < H; ++h) acc[h] += s * y[h];
    }
    for (int64_t h = 0; h < H; ++h) store(out, t * H + h, acc[h]);
  }
}

}  // namespace tllm::ref
