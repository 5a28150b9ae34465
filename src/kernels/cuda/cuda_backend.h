// CudaBackend: the Backend of one GPU. One stream; a caching allocator; a cuBLASLt handle
// with its workspace; pinned staging for uploads; persistent scratch for the ops that need
// it (so captured CUDA graphs keep valid pointers). Ops validate their tensors here and
// forward to the free functions of cuda_ops.h.
#pragma once

#include <cuda_runtime.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/decoder_stack.h"
#include "kernels/cuda/device_allocator.h"
#include "kernels/cuda/linear.h"

namespace tllm::cuda {

// Grow-only device scratch. A buffer that was replaced stays alive (retired) so that graphs
// captured over it stay valid.
class DeviceWorkspace {
 public:
  ~DeviceWorkspace();
  void* get(size_t bytes);
  // get(bytes) with its first `counters` bytes 0: zeroed on `stream` when the memory is new or
  // fewer bytes were zeroed before. For kernels that keep counters there and leave them 0.
  void* get_counters_zeroed(size_t bytes, size_t counters, cudaStream_t stream);

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  size_t zeroed_ = 0;  // leading bytes of ptr_ known to be 0 (get_counters_zeroed)
  std::vector<void*> retired_;
};

// Pinned host ring for small uploads: host memcpy into the ring, async copy out of it; a
// region is reused only after the copy that read it has completed (per-region events).
class PinnedRing {
 public:
  explicit PinnedRing(size_t bytes);
  ~PinnedRing();
  // Copies `bytes` from src to dst (device) on stream, through the ring.
  void upload(void* dst, const void* src, size_t bytes, cudaStream_t stream);

 private:
  struct Region {
    size_t begin, end;
    cudaEvent_t done;
  };
  uint8_t* base_ = nullptr;
  size_t size_ = 0, head_ = 0;
  std::deque<Region> live_;
  std::vector<cudaEvent_t> event_pool_;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& opts);
  ~CudaBackend() override;

  Device device() const override { return Device::CUDA; }
  std::string name() const override { return name_; }
  std::vector<int> attention_head_dims() const override { return {32, 64, 128, 256}; }
  Allocator& allocator() override { return *alloc_; }
  DType activation_dtype() const override { return DType::BF16; }

  void copy(Tensor& dst, const Tensor& src) override;
  Tensor upload(const Tensor& host, DType dtype) override;
  Tensor download(const Tensor& t) override;
  void fill_zero(Tensor& t) override;
  void synchronize() override;
  std::pair<size_t, size_t> memory_info() override;
  std::unique_ptr<CapturedGraph> capture(const std::function<void()>& fn) override;

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
  // Decode batches without q/k norms: the rotation and the cache writes run in the skinny
  // GEMM's epilogue (gemv.cu, ROPE; quantized weights: quant_gemv.cu's rope_kv);
  // TLLM_FUSED_ROPE=0 keeps them a separate kernel.
  void linear_rope_kv_write(Tensor& qkv, const Tensor& x, const LinearWeight& w, const RopeKvWrite& r) override;
  // Whether linear_rope_kv_write runs as that one kernel for these arguments.
  bool rope_fusable(const Tensor& x, const LinearWeight& w, const RopeKvWrite& r) const;
  void set_fused_rope(bool enabled) { fused_rope_ = enabled; }
  void set_rope_token_blocks(bool enabled) { rope_token_blocks_ = enabled; }
  void gather_rows(Tensor& out, const Tensor& x, const Tensor& indices) override;
  SampleResult sample(const Tensor& logits, const SampleBatch& batch) override;
  Tensor log_softmax_to_host(const Tensor& logits) override;
  // Deferred draws: the kernels are queued, the ids stay on the device for feed_tokens (a
  // kernel carrying its rows as parameters), the copy to pinned memory runs on a second
  // stream, and collect_sample waits on that copy's event only.
  bool defers_sampling() const override { return true; }
  int sample_deferred(const Tensor& logits, const SampleBatch& batch) override;
  void feed_tokens(Tensor& tokens, const std::vector<int32_t>& rows, int ticket) override;
  SampleResult collect_sample(int ticket) override;
  // Mixture of experts (kernels/cuda/moe_backend.cu).
  void moe_route(Tensor& topk_ids, Tensor& topk_weights, const Tensor& router_logits, bool renormalize) override;
  void moe_experts(Tensor& out, const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                   const MoeExperts& w) override;
  void moe_reserve(int max_tokens, int top_k, const MoeExperts& w) override;
  void moe_block(Tensor& out, const Tensor& x, const LinearWeight& router, const MoeExperts& w,
                 Tensor& router_logits, Tensor& topk_ids, Tensor& topk_weights, bool renormalize) override;
  // One-token decode through every layer as one persistent kernel (decoder_stack_backend.cu).
  bool decoder_stack(const DecoderStack& s) override;
  // Forces that path on (any layer size) or off (tests, benchmarks); otherwise
  // TLLM_DECODER_STACK decides at first use (unset: on for layers up to 128 MB).
  void set_decoder_stack(bool enabled) { stack_enabled_ = enabled ? 2 : 0; }
  // Back to the default rule (TLLM_DECODER_STACK, read again at the next call).
  void set_decoder_stack_auto() { stack_enabled_ = -1; }
  // How many calls launched that kernel on this backend (a graph capture counts once; tests).
  int64_t decoder_stack_launches() const { return stack_launches_; }

  cudaStream_t stream() const { return stream_; }
  int device_index() const { return device_; }
  int num_sms() const { return num_sms_; }
  // Linear through cuBLASLt only / the skinny GEMM only (benchmarks and tests).
  // leave_bias: see LtMatmul::run (returns whether the bias was left for the caller to add).
  bool linear_cublas(Tensor& out, const Tensor& x, const LinearWeight& w, bool leave_bias = false);
  void linear_gemv(Tensor& out, const Tensor& x, const LinearWeight& w);
  // Quantized weights (kernels/cuda/quant_backend.cu); linear() forwards quantized weights to
  // linear_quantized. path: 0 auto, 1 skinny GEMM (T <= 16), 2 fused GEMM, 3 dequantize +
  // cuBLASLt (tests and benchmarks force one).
  LinearWeight pack_quantized(const QuantizedMatrix& m, bool f32_activations) override;
  // FP8 e4m3 weights run in the quantized kernels as bytes (W8A16, any sm_80+ card).
  bool takes_fp8_weights() const override { return true; }
  void embedding_quantized(Tensor& out, const LinearWeight& table, const Tensor& tokens) override;
  void linear_quantized(Tensor& out, const Tensor& x, const LinearWeight& w, int path = 0);
  // Decode batches of a quantized weight through quant_gemv with its epilogue fused: rn null,
  // w is [gate | up] and out the activation silu(gate) * up; else the residual add + norm of
  // rn after out = x w^T. False (nothing launched) where the fused kernel does not apply.
  bool linear_quantized_fused(Tensor& out, const Tensor& x, const LinearWeight& w, const ResidualNorm* rn);
  // Whether quant_gemv's RoPE + KV-write epilogue takes x @ w^T for q|k|v heads `layout`
  // (the rotation's own conditions are rope_fusable's); the launch with its parameters.
  bool quantized_rope_fusable(const Tensor& x, const LinearWeight& w, const QKVLayout& layout) const;
  void linear_quantized_rope(Tensor& qkv, const Tensor& x, const LinearWeight& w, const cuda::QkNormRopeParams& p);
  // qk_norm_rope_kv_write's arguments, checked, as the kernels take them.
  cuda::QkNormRopeParams rope_params(Tensor& qkv, const QKVLayout& layout, const Tensor& q_norm, const Tensor& k_norm,
                                     float eps, const RopeSpec& rope, const Tensor& cos_sin, const Tensor& rope_rows,
                                     const Tensor& slot_mapping, Tensor& k_cache, Tensor& v_cache) const;

 private:
  void check_capturable(const char* op) const;
  // release_early: as cuda::upload_inline's (the step's metadata); false for tensors that a
  // kernel may read before its griddepcontrol.wait (upload(): weights, biases).
  void upload_small(void* dst, const void* src, size_t bytes, bool release_early = true);
  void check_linear(const Tensor& out, const Tensor& x, const LinearWeight& w, int64_t& T) const;
  // Whether x @ w^T goes to the skinny GEMM (gemv.cu): a dense bf16 weight, 1..32 tokens of
  // bf16 on the device (above 8 only for the shapes where it beats cuBLASLt), 16-byte
  // aligned, a shape gemv_supported accepts.
  bool skinny(const Tensor& x, const LinearWeight& w) const;
  bool fused_rope_ = true;           // TLLM_FUSED_ROPE (read at construction)
  bool rope_token_blocks_ = true;    // TLLM_ROPE_TOKEN_BLOCKS: the rope kernel's block-per-token form
  bool rope_release_early_ = true;   // TLLM_ROPE_RELEASE_EARLY: RopeKvWrite::release_attention_early honoured
  // TLLM_GEMM_SILU=1: linear_silu_mul through gemm_silu_sm90 (Hopper) from TLLM_GEMM_SILU_MIN_T tokens.
  bool gemm_silu_sm90_on_ = false;
  int gemm_silu_min_tokens_ = 256;

  int device_ = 0;
  int num_sms_ = 0;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  cudaStream_t copy_stream_ = nullptr;  // draws' copies to the host (launch_draw)
  DeviceCachingAllocator* alloc_ = nullptr;
  std::unique_ptr<LtMatmul> lt_;
  DeviceWorkspace attn_ws_;
  DeviceWorkspace moe_ws_;    // moe_experts scratch (sized by moe_reserve)
  size_t moe_ws_bytes_ = 0;
  DeviceWorkspace moe_dequant_ws_;  // bf16 copies of quantized experts for prefill (sized by moe_reserve)
  size_t moe_dequant_bytes_ = 0;
  DeviceWorkspace quant_ws_;  // bf16 weights of the dequantize + cuBLASLt prefill path (sized at pack)
  size_t quant_ws_bytes_ = 0;
  std::unique_ptr<PinnedRing> ring_;
  // Large uploads: two pinned chunks (+ device staging for conversions), double-buffered.
  static constexpr size_t kChunk = 32u << 20;
  void* pinned_chunk_[2] = {nullptr, nullptr};
  void* dev_stage_[2] = {nullptr, nullptr};
  cudaEvent_t chunk_done_[2] = {nullptr, nullptr};
  // A draw of sample(): its device results (ids for feed_tokens, log-probs), their pinned
  // host copy and the event that copy records. draws_[0..1]: deferred tickets; [2]: sample().
  struct Draw {
    Tensor out;
    void* pinned = nullptr;
    size_t pinned_bytes = 0;
    cudaEvent_t ready = nullptr;  // on stream_ after the draw's kernels
    cudaEvent_t done = nullptr;   // after the copy to pinned (copy_stream_ for deferred draws)
    int R = 0, top_stride = 1;
    std::vector<int> n_top;
    bool live = false;
  };
  void launch_draw(const Tensor& logits, const SampleBatch& batch, Draw& draw, bool deferred);
  SampleResult finish_draw(Draw& draw);
  Draw draws_[3];
  int next_draw_ = 0;
  static constexpr size_t kRingCopyBytes = 1u << 20;
  // decoder_stack: the device copy of each model's per-layer pointer table (keyed by the
  // model's first weight), and the kernel's scratch.
  struct StackTable {
    ~StackTable();
    std::vector<StackLayerPtrs> host;
    StackLayerPtrs* table = nullptr;
    size_t capacity = 0;
    std::vector<int64_t> shape_checked;  // the shape (and quantized dims) last checked
    bool shape_ok = false;
    bool declined = false, announced = false;  // logged once each
    unsigned long long* timing = nullptr;       // TLLM_STACK_TIMING: the kernel's phase stamps
    size_t timing_n = 0;
    double phase_ns[kStackPhases] = {}, total_ns = 0;
    int64_t timed_calls = 0;
    unsigned long long* trace = nullptr;  // TLLM_STACK_TRACE: per-block event times of two layers
    int64_t traced_calls = 0;
  };
  void log_timing(StackTable& st, size_t stamps);
  std::map<const void*, StackTable> stack_tables_;
  DeviceWorkspace stack_ws_;
  int stack_enabled_ = -1;  // 0 off, 1 by layer size, 2 forced on; -1: TLLM_DECODER_STACK not read yet
  int stack_timing_ = -1;   // TLLM_STACK_TIMING (read at first use)
  int64_t stack_launches_ = 0;
  std::string stack_trace_path_;  // TLLM_STACK_TRACE (eager steps only)
  void dump_trace(StackTable& st, int layer);
  unsigned int* norm_counter_ = nullptr;  // the fused GEMV + residual-norm's grid counter (0 at rest)
  // The fused residual update of linear_residual_norm, when it applies.
  bool fused_norm_args(const Tensor& out, const ResidualNorm& rn, int64_t T, int64_t K, cuda::GemvNorm& g,
                       bool quantized = false);
};

}  // namespace tllm::cuda
