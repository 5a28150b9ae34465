// The CPU backend: a Backend whose ops forward to the free functions of cpu_ops.h, run on
// a thread pool it owns, with the instruction set picked at run time (AVX-512, AVX2 or
// scalar; TLLM_CPU_ISA=avx2|scalar caps it). Activations are f32.
#pragma once

#include <memory>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_ops.h"

namespace tllm {

class CpuBackend final : public Backend {
 public:
  // isa must be supported by this machine (cpu::isa_supported).
  CpuBackend(const CpuBackendOptions& opts, cpu::Isa isa);

  cpu::Isa isa() const { return isa_; }
  // For tests and benchmarks that call the free functions directly.
  cpu::Exec exec() { return cpu::Exec{pool_, isa_, scratch_}; }

  Device device() const override { return Device::CPU; }
  std::string name() const override;
  Allocator& allocator() override { return host_allocator(); }
  DType activation_dtype() const override { return DType::F32; }

  void copy(Tensor& dst, const Tensor& src) override;
  Tensor upload(const Tensor& host, DType dtype) override;
  Tensor download(const Tensor& t) override;
  void fill_zero(Tensor& t) override;
  void synchronize() override {}

  void embedding(Tensor& out, const Tensor& table, const Tensor& tokens) override;
  void rms_norm(Tensor& out, const Tensor& x, const Tensor& weight, float eps) override;
  void add_rms_norm(Tensor& residual, const Tensor& x, Tensor& out, const Tensor& weight,
                    float eps) override;
  void linear(Tensor& out, const Tensor& x, const LinearWeight& w) override;
  void qk_norm_rope_kv_write(Tensor& qkv, const QKVLayout& layout, const Tensor& q_norm,
                             const Tensor& k_norm, float eps, const RopeSpec& rope,
                             const Tensor& cos_sin, const Tensor& rope_rows,
                             const Tensor& slot_mapping, Tensor& k_cache, Tensor& v_cache) override;
  void attention(Tensor& out, const Tensor& qkv, const QKVLayout& layout, const Tensor& k_cache,
                 const Tensor& v_cache, const AttentionMeta& meta, float scale,
                 int sliding_window) override;
  void silu_mul(Tensor& out, const Tensor& gate_up) override;
  void gather_rows(Tensor& out, const Tensor& x, const Tensor& indices) override;
  SampleResult sample(const Tensor& logits, const SampleBatch& batch) override;
  Tensor log_softmax_to_host(const Tensor& logits) override;
  // Mixture of experts (kernels/cpu/moe.cpp).
  void moe_route(Tensor& topk_ids, Tensor& topk_weights, const Tensor& router_logits, bool renormalize) override;
  void moe_experts(Tensor& out, const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                   const MoeExperts& w) override;

  // Quantized weights (kernels/cpu/quant_backend.cpp); linear() forwards quantized weights here.
  LinearWeight pack_quantized(const QuantizedMatrix& m, bool f32_activations) override;
  void embedding_quantized(Tensor& out, const LinearWeight& table, const Tensor& tokens) override;
  void linear_quantized(Tensor& out, const Tensor& x, const LinearWeight& w);

 private:
  ThreadPool pool_;
  cpu::Isa isa_;
  cpu::Scratch scratch_;
  cpu::Scratch moe_scratch_;  // moe_experts' buffers (linear uses scratch_ meanwhile)
};

// make_cpu_backend with a forced instruction set (tests run every variant).
std::unique_ptr<CpuBackend> make_cpu_backend_isa(const CpuBackendOptions& opts, cpu::Isa isa);

}  // namespace tllm
