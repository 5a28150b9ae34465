#include "kernels/profiling_backend.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <vector>

#include "core/timer.h"

namespace tllm {

template <typename F>
void ProfilingBackend::timed(const std::string& key, F&& f) {
  inner_->synchronize();
  const double t0 = now_seconds();
  f();
  inner_->synchronize();
  Stat& s = stats_[key];
  s.seconds += now_seconds() - t0;
  ++s.calls;
}

ProfilingBackend::~ProfilingBackend() { std::fprintf(stderr, "%s", report().c_str()); }

std::string ProfilingBackend::report() const {
  double total = 0;
  std::vector<std::pair<std::string, Stat>> rows(stats_.begin(), stats_.end());
  for (auto& [k, s] : rows) total += s.seconds;
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.seconds > b.second.seconds; });
  std::ostringstream os;
  os << "[profile] " << name() << ": " << total * 1e3 << " ms in ops\n";
  os << "[profile] op | calls | total ms | us/call | share\n";
  for (auto& [k, s] : rows) {
    char line[256];
    std::snprintf(line, sizeof(line), "[profile] %-40s %8ld %10.2f %10.1f %6.1f%%\n", k.c_str(), s.calls,
                  s.seconds * 1e3, s.seconds * 1e6 / std::max(1L, s.calls), 100.0 * s.seconds / std::max(total, 1e-12));
    os << line;
  }
  return os.str();
}

namespace {
std::string rows_key(const char* op, const Tensor& t) {
  const int64_t rows = t.ndim() > 1 ? t.numel() / t.dim(-1) : 1;
  return std::string(op) + " T=" + std::to_string(rows);
}
}  // namespace

void ProfilingBackend::copy(Tensor& dst, const Tensor& src) {
  timed(std::string("copy ") + device_name(src.device()) + "->" + device_name(dst.device()),
        [&] { inner_->copy(dst, src); });
}
Tensor ProfilingBackend::download(const Tensor& t) {
  Tensor r;
  timed("download", [&] { r = inner_->download(t); });
  return r;
}
void ProfilingBackend::embedding(Tensor& out, const Tensor& table, const Tensor& tokens) {
  timed("embedding", [&] { inner_->embedding(out, table, tokens); });
}
void ProfilingBackend::rms_norm(Tensor& out, const Tensor& x, const Tensor& weight, float eps) {
  timed(rows_key("rms_norm", x), [&] { inner_->rms_norm(out, x, weight, eps); });
}
void ProfilingBackend::add_rms_norm(Tensor& residual, const Tensor& x, Tensor& out, const Tensor& weight, float eps) {
  timed(rows_key("add_rms_norm", x), [&] { inner_->add_rms_norm(residual, x, out, weight, eps); });
}
void ProfilingBackend::linear(Tensor& out, const Tensor& x, const LinearWeight& w) {
  const int64_t T = x.numel() / std::max<int64_t>(1, w.in_features ? w.in_features : x.dim(-1));
  std::string key = "linear T=" + std::to_string(T) + " N=" + std::to_string(w.out_features) +
                    " K=" + std::to_string(w.in_features) + (w.bias.defined() ? " +bias" : "") +
                    (w.quant != QuantScheme::None ? " quant" : "");
  timed(key, [&] { inner_->linear(out, x, w); });
}
void ProfilingBackend::qk_norm_rope_kv_write(Tensor& qkv, const QKVLayout& layout, const Tensor& q_norm,
                                             const Tensor& k_norm, float eps, const RopeSpec& rope,
                                             const Tensor& cos_sin, const Tensor& rope_rows,
                                             const Tensor& slot_mapping, Tensor& k_cache, Tensor& v_cache) {
  timed(rows_key("qk_norm_rope_kv_write", qkv), [&] {
    inner_->qk_norm_rope_kv_write(qkv, layout, q_norm, k_norm, eps, rope, cos_sin, rope_rows, slot_mapping, k_cache,
                                  v_cache);
  });
}
void ProfilingBackend::attention(Tensor& out, const Tensor& qkv, const QKVLayout& layout, const Tensor& k_cache,
                                 const Tensor& v_cache, const AttentionMeta& meta, float scale, int sliding_window) {
  int bucket = 1;
  while (bucket < meta.max_seqlen_k) bucket *= 2;
  const std::string key = "attention B=" + std::to_string(meta.num_seqs) + " T=" + std::to_string(meta.num_tokens) +
                          " maxk<=" + std::to_string(bucket);
  timed(key, [&] { inner_->attention(out, qkv, layout, k_cache, v_cache, meta, scale, sliding_window); });
}
void ProfilingBackend::linear_residual_norm(Tensor& out, const Tensor& x, const LinearWeight& w,
                                            const ResidualNorm& rn) {
  timed(rows_key("linear_residual_norm", x) + " N=" + std::to_string(w.out_features),
        [&] { inner_->linear_residual_norm(out, x, w, rn); });
}

void ProfilingBackend::linear_silu_mul(Tensor& act, const Tensor& x, const LinearWeight& gate_up,
                                       Tensor& gate_up_out) {
  timed(rows_key("linear_silu_mul", x) + " N=" + std::to_string(gate_up.out_features),
        [&] { inner_->linear_silu_mul(act, x, gate_up, gate_up_out); });
}

void ProfilingBackend::linear_rope_kv_write(Tensor& qkv, const Tensor& x, const LinearWeight& w,
                                            const RopeKvWrite& r) {
  timed(rows_key("linear_rope_kv_write", x) + " N=" + std::to_string(w.out_features),
        [&] { inner_->linear_rope_kv_write(qkv, x, w, r); });
}

void ProfilingBackend::silu_mul(Tensor& out, const Tensor& gate_up) {
  timed(rows_key("silu_mul", gate_up), [&] { inner_->silu_mul(out, gate_up); });
}
void ProfilingBackend::gather_rows(Tensor& out, const Tensor& x, const Tensor& indices) {
  timed("gather_rows", [&] { inner_->gather_rows(out, x, indices); });
}
SampleResult ProfilingBackend::sample(const Tensor& logits, const SampleBatch& batch) {
  SampleResult r;
  timed(rows_key("sample", logits), [&] { r = inner_->sample(logits, batch); });
  return r;
}
Tensor ProfilingBackend::log_softmax_to_host(const Tensor& logits) {
  Tensor r;
  timed("log_softmax_to_host", [&] { r = inner_->log_softmax_to_host(logits); });
  return r;
}
void ProfilingBackend::embedding_quantized(Tensor& out, const LinearWeight& table, const Tensor& tokens) {
  timed("embedding_quantized", [&] { inner_->embedding_quantized(out, table, tokens); });
}
void ProfilingBackend::moe_route(Tensor& topk_ids, Tensor& topk_weights, const Tensor& router_logits, bool renormalize) {
  timed(rows_key("moe_route", router_logits), [&] { inner_->moe_route(topk_ids, topk_weights, router_logits, renormalize); });
}
void ProfilingBackend::moe_experts(Tensor& out, const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                                   const MoeExperts& w) {
  timed(rows_key("moe_experts", x), [&] { inner_->moe_experts(out, x, topk_ids, topk_weights, w); });
}

}  // namespace tllm
