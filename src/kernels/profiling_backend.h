// ProfilingBackend: wraps a backend and times every op (synchronizing before and after,
// so each op's time is its own). Enabled by TLLM_PROFILE=1 in the engine; it reports a
// table per op (and per linear shape) to stderr when destroyed. Graph capture is off
// while profiling (synchronization cannot be captured). The fused multi-op paths
// (moe_block, decoder_stack) are not forwarded: under profiling their ops run and are timed
// one by one (the decoder stack kernel has its own phase timer, TLLM_STACK_TIMING).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "kernels/backend.h"

namespace tllm {

class ProfilingBackend final : public Backend {
 public:
  explicit ProfilingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
  ~ProfilingBackend() override;
  std::string report() const;

  Device device() const override { return inner_->device(); }
  std::string name() const override { return inner_->name() + " [profiling]"; }
  Allocator& allocator() override { return inner_->allocator(); }
  DType activation_dtype() const override { return inner_->activation_dtype(); }
  void copy(Tensor& dst, const Tensor& src) override;
  Tensor upload(const Tensor& host, DType dtype) override { return inner_->upload(host, dtype); }
  Tensor download(const Tensor& t) override;
  void fill_zero(Tensor& t) override { inner_->fill_zero(t); }
  void synchronize() override { inner_->synchronize(); }
  std::pair<size_t, size_t> memory_info() override { return inner_->memory_info(); }

  void embedding(Tensor& out, const Tensor& table, const Tensor& tokens) override;
  void rms_norm(Tensor& out, const Tensor& x, const Tensor& weight, float eps) override;
  void add_rms_norm(Tensor& residual, const Tensor& x, Tensor& out, const Tensor& weight, float eps) override;
  void linear(Tensor& out, const Tensor& x, const LinearWeight& w) override;
  void qk_norm_rope_kv_write(Tensor& qkv, const QKVLayout& layout, const Tensor& q_norm, const Tensor& k_norm,
                             float eps, const RopeSpec& rope, const Tensor& cos_sin, const Tensor& rope_rows,
                             const Tensor& slot_mapping, Tensor& k_cache, Tensor& v_cache) override;
  void attention(Tensor& out, const Tensor& qkv, const QKVLayout& layout, const Tensor& k_cache,
                 const Tensor& v_cache, const AttentionMeta& meta, float scale, int sliding_window) override;
  void silu_mul(Tensor& out, const Tensor& gate_up) override;
  void linear_residual_norm(Tensor& out, const Tensor& x, const LinearWeight& w, const ResidualNorm& rn) override;
  void linear_silu_mul(Tensor& act, const Tensor& x, const LinearWeight& gate_up, Tensor& gate_up_out) override;
  void linear_rope_kv_write(Tensor& qkv, const Tensor& x, const LinearWeight& w, const RopeKvWrite& r) override;
  void gather_rows(Tensor& out, const Tensor& x, const Tensor& indices) override;
  SampleResult sample(const Tensor& logits, const SampleBatch& batch) override;
  Tensor log_softmax_to_host(const Tensor& logits) override;
  LinearWeight pack_quantized(const QuantizedMatrix& m, bool f32_activations) override {
    return inner_->pack_quantized(m, f32_activations);
  }
  bool takes_fp8_weights() const override { return inner_->takes_fp8_weights(); }
  void embedding_quantized(Tensor& out, const LinearWeight& table, const Tensor& tokens) override;
  void moe_route(Tensor& topk_ids, Tensor& topk_weights, const Tensor& router_logits, bool renormalize) override;
  void moe_experts(Tensor& out, const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                   const MoeExperts& w) override;
  void moe_reserve(int max_tokens, int top_k, const MoeExperts& w) override {
    inner_->moe_reserve(max_tokens, top_k, w);
  }

 private:
  template <typename F>
  void timed(const std::string& key, F&& f);

  struct Stat {
    double seconds = 0;
    long calls = 0;
  };
  std::unique_ptr<Backend> inner_;
  std::map<std::string, Stat> stats_;
};

}  // namespace tllm
