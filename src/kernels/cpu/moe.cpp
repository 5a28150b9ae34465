// Mixture-of-experts ops of the CPU backend.
//
// moe_route: per token, softmax of the router logits in f32 (max-shifted exp, divided by
// the sum, as torch's softmax(dtype=float)), then top-k by repeated selection.
//
// moe_experts: the T*k (token, slot) pairs are grouped by expert (counting sort; within an
// expert, pairs stay in token order). For each expert that got tokens, its rows of x are
// gathered into a dense block and run through the backend's linear (gate|up), silu_mul and
// linear (down); only those experts' weights are read. Each pair's output row lands in
// y[pair] and the token's result is the sum over its slots in slot order (as transformers'
// grouped / batched expert paths sum them), then the gated shared expert is added.
#include "kernels/cpu/moe_ops.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "core/thread_pool.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu {

void moe_route_row(const float* logits, int64_t E, int64_t k, bool renormalize, float* p, int32_t* ids,
                   float* weights) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t e = 0; e < E; ++e) mx = std::max(mx, logits[e]);
  float sum = 0.0f;
  for (int64_t e = 0; e < E; ++e) sum += (p[e] = std::exp(logits[e] - mx));
  for (int64_t e = 0; e < E; ++e) p[e] /= sum;
  // Selection: k passes over E; a pass keeps the first maximum, so ties go to the lower id.
  // Taken entries are marked by their id in ids[0..j), checked through a small bitmap.
  constexpr int64_t kWords = 16;  // bitmap for E <= 1024 on the stack
  uint64_t taken_small[kWords] = {};
  std::vector<uint64_t> taken_big;
  uint64_t* taken = taken_small;
  if (E > 64 * kWords) {
    taken_big.assign(static_cast<size_t>((E + 63) / 64), 0);
    taken = taken_big.data();
  }
  float chosen_sum = 0.0f;
  for (int64_t j = 0; j < k; ++j) {
    int64_t best = -1;
    for (int64_t e = 0; e < E; ++e) {
      if (taken[e >> 6] >> (e & 63) & 1) continue;
      if (best < 0) {
        best = e;
        continue;
      }
      const bool nan_e = std::isnan(p[e]), nan_b = std::isnan(p[best]);
      if ((nan_e && !nan_b) || (!nan_b && p[e] > p[best])) best = e;
    }
    taken[best >> 6] |= uint64_t{1} << (best & 63);
    ids[j] = static_cast<int32_t>(best);
    weights[j] = p[best];
    chosen_sum += p[best];
  }
  if (renormalize)
    for (int64_t j = 0; j < k; ++j) weights[j] /= chosen_sum;
}

void moe_route(const float* logits, int64_t T, int64_t E, int64_t k, bool renormalize, int32_t* ids,
               float* weights, const Exec& ex) {
  float* p_all = ex.scratch.floats(static_cast<size_t>(ex.pool.size() * E));
  ex.pool.run([&](int th, int n_th) {
    float* p = p_all + th * E;
    for (int64_t t = th; t < T; t += n_th)
      moe_route_row(logits + t * E, E, k, renormalize, p, ids + t * k, weights + t * k);
  });
}

}  // namespace tllm::cpu

namespace tllm {

namespace {

void moe_check_cpu(const Tensor& t, const char* what) {
  TLLM_CHECK(t.defined(), "moe: ", what, " is undefined");
  TLLM_CHECK(t.device() == Device::CPU, "moe: ", what, " ", t.str(), " must be a host tensor on the CPU backend");
}

size_t align64(size_t n) { return (n + 63) / 64 * 64; }

// A [rows, cols] linear weight: dense with exactly that shape, or quantized (packed layout,
// shape in out_features / in_features).
void check_moe_weight(const LinearWeight& lw, int64_t rows, int64_t cols, const char* what) {
  moe_check_cpu(lw.weight, what);
  const bool ok = lw.quant == QuantScheme::None
                      ? lw.weight.ndim() == 2 && lw.weight.dim(0) == rows && lw.weight.dim(1) == cols
                      : lw.out_features == rows && lw.in_features == cols;
  TLLM_CHECK(ok, "moe_experts: ", what, " ", lw.weight.str(), " (", lw.out_features, " x ", lw.in_features,
             ") must be [", rows, ", ", cols, "]");
}

}  // namespace

void CpuBackend::moe_route(Tensor& topk_ids, Tensor& topk_weights, const Tensor& router_logits, bool renormalize) {
  moe_check_cpu(router_logits, "router_logits");
  moe_check_cpu(topk_ids, "topk_ids");
  moe_check_cpu(topk_weights, "topk_weights");
  TLLM_CHECK(router_logits.ndim() == 2, "moe_route: router_logits ", router_logits.str(), " must be [T, E]");
  const int64_t T = router_logits.dim(0), E = router_logits.dim(1);
  TLLM_CHECK(topk_ids.dtype() == DType::I32 && topk_ids.ndim() == 2 && topk_ids.dim(0) == T,
             "moe_route: topk_ids ", topk_ids.str(), " must be i32 [", T, ", k]");
  const int64_t k = topk_ids.dim(1);
  TLLM_CHECK(k >= 1 && k <= E, "moe_route: k = ", k, " must be in [1, E = ", E, "]");
  TLLM_CHECK(topk_weights.dtype() == DType::F32 && topk_weights.shape() == topk_ids.shape(),
             "moe_route: topk_weights ", topk_weights.str(), " must be f32 [", T, ", ", k, "]");
  if (T == 0) return;
  const float* logits = router_logits.data<float>();
  std::vector<float> tmp;
  if (router_logits.dtype() != DType::F32) {
    TLLM_CHECK(router_logits.dtype() == DType::BF16 || router_logits.dtype() == DType::F16,
               "moe_route: router_logits ", router_logits.str(), " must be f32, bf16 or f16");
    tmp.resize(static_cast<size_t>(T * E));
    cpu::scalar::to_f32(tmp.data(), router_logits.raw(), router_logits.dtype(), T * E);
    logits = tmp.data();
  }
  cpu::moe_route(logits, T, E, k, renormalize, topk_ids.data<int32_t>(), topk_weights.data<float>(), exec());
}

void CpuBackend::moe_experts(Tensor& out, const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                             const MoeExperts& w) {
  const char* op = "moe_experts";
  moe_check_cpu(out, "out");
  moe_check_cpu(x, "x");
  moe_check_cpu(topk_ids, "topk_ids");
  moe_check_cpu(topk_weights, "topk_weights");
  const int64_t E = w.num_experts, H = w.hidden, I = w.inter;
  TLLM_CHECK(E > 0 && H > 0 && I > 0, op, ": empty experts (E=", E, ", H=", H, ", I=", I, ")");
  check_moe_weight(w.gate_up, E * 2 * I, H, "experts gate_up");
  check_moe_weight(w.down, E * H, I, "experts down");
  TLLM_CHECK(x.dtype() == DType::F32 && out.dtype() == DType::F32, op, ": x ", x.str(), " and out ", out.str(),
             " must be f32 on the CPU backend");
  TLLM_CHECK(x.ndim() == 2 && x.dim(1) == H && out.shape() == x.shape(), op, ": x ", x.str(), " and out ",
             out.str(), " must both be [T, ", H, "]");
  TLLM_CHECK(out.raw() != x.raw(), op, ": out must not alias x");
  const int64_t T = x.dim(0);
  TLLM_CHECK(topk_ids.dtype() == DType::I32 && topk_ids.ndim() == 2 && topk_ids.dim(0) == T, op, ": topk_ids ",
             topk_ids.str(), " must be i32 [", T, ", k]");
  const int64_t k = topk_ids.dim(1);
  TLLM_CHECK(topk_weights.dtype() == DType::F32 && topk_weights.shape() == topk_ids.shape(), op,
             ": topk_weights ", topk_weights.str(), " must be f32 [", T, ", ", k, "]");
  // Packed quantized weights slice by expert only on 16-row panel boundaries (backend.h).
  TLLM_CHECK(w.gate_up.quant == QuantScheme::None || (2 * I) % 16 == 0, op, ": quantized experts need 2 * ",
             "moe_intermediate_size (", 2 * I, ") to be a multiple of 16");
  TLLM_CHECK(w.down.quant == QuantScheme::None || H % 16 == 0, op, ": quantized experts need hidden_size (", H,
             ") to be a multiple of 16");
  const int64_t S = w.shared_inter;
  if (S > 0) {
    check_moe_weight(w.shared_gate_up, 2 * S, H, "shared_gate_up");
    check_moe_weight(w.shared_down, H, S, "shared_down");
    moe_check_cpu(w.shared_gate, "shared_gate");
    TLLM_CHECK(w.shared_gate.dtype() == DType::F32 && w.shared_gate.numel() == H, op, ": shared_gate ",
               w.shared_gate.str(), " must be f32 [", H, "]");
  }
  if (T == 0) return;
  const int64_t P = T * k;
  const int32_t* ids = topk_ids.data<int32_t>();
  const float* wts = topk_weights.data<float>();

  // Pairs grouped by expert, token order kept within an expert (counting sort).
  // offsets[E+1]; sorted[P] holds pair indices; pairs with an id outside [0, E) are dropped.
  std::vector<int64_t> offsets(static_cast<size_t>(E + 1), 0);
  for (int64_t p = 0; p < P; ++p)
    if (ids[p] >= 0 && ids[p] < E) ++offsets[ids[p] + 1];
  int64_t max_count = 0;
  for (int64_t e = 0; e < E; ++e) {
    max_count = std::max(max_count, offsets[e + 1]);
    offsets[e + 1] += offsets[e];
  }
  std::vector<int64_t> fill(offsets.begin(), offsets.end() - 1), sorted(static_cast<size_t>(offsets[E]));
  for (int64_t p = 0; p < P; ++p)
    if (ids[p] >= 0 && ids[p] < E) sorted[fill[ids[p]]++] = p;

  // Scratch: y [P, H] (per pair), xe [c, H], gu [c, 2I], act [c, I], ye [c, H] for the
  // largest expert group c, and the shared expert's [T, 2S], [T, S], [T, H].
  const int64_t R = std::max<int64_t>(max_count, 1);
  const size_t n_y = align64(P * H * 4), n_xe = align64(R * H * 4), n_gu = align64(R * 2 * I * 4),
               n_act = align64(R * I * 4), n_ye = align64(R * H * 4);
  const size_t n_sgu = S > 0 ? align64(T * 2 * S * 4) : 0, n_sact = S > 0 ? align64(T * S * 4) : 0,
               n_sy = S > 0 ? align64(T * H * 4) : 0;
  char* base = static_cast<char*>(moe_scratch_.bytes(n_y + n_xe + n_gu + n_act + n_ye + n_sgu + n_sact + n_sy));
  float* y = reinterpret_cast<float*>(base);
  char* cur = base + n_y;
  auto carve = [&](size_t n, const Shape& shape) {
    Tensor t = Tensor::wrap(cur, shape, DType::F32, Device::CPU);
    cur += n;
    return t;
  };
  Tensor xe_all = carve(n_xe, {R, H}), gu_all = carve(n_gu, {R, 2 * I}), act_all = carve(n_act, {R, I}),
         ye_all = carve(n_ye, {R, H});
  const float* xd = x.data<float>();

  for (int64_t e = 0; e < E; ++e) {
    const int64_t b = offsets[e], c = offsets[e + 1] - b;
    if (c == 0) continue;
    Tensor xe = xe_all.slice_rows(0, c), gu = gu_all.slice_rows(0, c), act = act_all.slice_rows(0, c),
           ye = ye_all.slice_rows(0, c);
    float* xed = xe.data<float>();
    pool_.parallel_for(c, std::max<int64_t>(1, 16384 / H), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        std::memcpy(xed + r * H, xd + (sorted[b + r] / k) * H, static_cast<size_t>(H) * 4);
    });
    linear(gu, xe, w.expert_gate_up(static_cast<int>(e)));
    silu_mul(act, gu);
    linear(ye, act, w.expert_down(static_cast<int>(e)));
    const float* yed = ye.data<float>();
    pool_.parallel_for(c, std::max<int64_t>(1, 16384 / H), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        std::memcpy(y + sorted[b + r] * H, yed + r * H, static_cast<size_t>(H) * 4);
    });
  }

  float* od = out.data<float>();
  const float* sy = nullptr;
  const float* sg = nullptr;
  if (S > 0) {
    Tensor sgu = carve(n_sgu, {T, 2 * S}), sact = carve(n_sact, {T, S}), sout = carve(n_sy, {T, H});
    linear(sgu, x, w.shared_gate_up);
    silu_mul(sact, sgu);
    linear(sout, sact, w.shared_down);
    sy = sout.data<float>();
    sg = w.shared_gate.data<float>();
  }
  pool_.parallel_for(T, std::max<int64_t>(1, 4096 / H), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* o = od + t * H;
      for (int64_t h = 0; h < H; ++h) o[h] = 0.0f;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t p = t * k + j;
        if (ids[p] < 0 || ids[p] >= E) continue;
        const float wt = wts[p];
        const float* yp = y + p * H;
        for (int64_t h = 0; h < H; ++h) o[h] += yp[h] * wt;
      }
      if (sy) {
        const float* xt = xd + t * H;
        float g = 0.0f;
        for (int64_t h = 0; h < H; ++h) g += xt[h] * sg[h];
        const float s = 1.0f / (1.0f + std::exp(-g));
        const float* st = sy + t * H;
        for (int64_t h = 0; h < H; ++h) o[h] += s * st[h];
      }
    }
  });
}

}  // namespace tllm
