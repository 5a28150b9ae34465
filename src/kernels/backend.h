// The op set the model forward is written in. One Backend per device: the CPU backend
// (kernels/cpu) and the CUDA backend (kernels/cuda) implement the same virtual ops, so
// model code never branches on the device. Each op forwards to a free function of its
// backend (kernels/cpu/<op>.cpp, kernels/cuda/<op>.cu) that takes raw pointers and sizes;
// kernels/reference holds naive versions of every op, used only by tests.
//
// Conventions
// - T = tokens in the flat batch, B = sequences, H = hidden size, V = vocab.
// - Activations are in activation_dtype() (f32 on CPU, bf16 on CUDA); norms, softmax and
//   accumulation are f32 everywhere. Weights may be f32, bf16 or f16 (see LinearWeight).
// - qkv rows are laid out [q: n_q_heads*head_dim | k: n_kv_heads*head_dim | v: n_kv_heads*head_dim].
// - KV cache per layer: k_cache, v_cache [num_blocks, block_size, n_kv_heads, head_dim].
//   Token slot s lives in block s / block_size at offset s % block_size.
// - Index tensors: tokens, rope_rows, gather indices, cu_seqlens_q, seq_lens_k, block_tables
//   are I32; slot_mapping is I64.
// - Ops are asynchronous on CUDA (one stream per backend); synchronize() before reading.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace tllm {

// Weight of y = x @ W^T + b. Dense weights are [out_features, in_features] row-major, as
// HuggingFace stores them.
//
// Quantized weights (quant != None) hold unsigned integer codes q with a scale and an offset
// per group of `group_size` consecutive inputs of an output row (MLX's affine form, which
// AWQ and GPTQ map onto with offset = -scale * zero_point):
//   W[n, k] = scales[n, k / group_size] * q[n, k] + zeros[n, k / group_size]
// q is in [0, 15] for Int4Group and [0, 255] for Int8Group; Int8PerChannel is Int8Group with
// one group per row (group_size == in_features). Fp8E4M3 holds FP8 e4m3 bytes instead of
// integers, W[n, k] = scales[n, k / group_size] * e4m3(q[n, k]) and no zeros tensor (the FP8
// checkpoints' block scales expanded per row; only backends with takes_fp8_weights() pack it). group_size is a multiple of 32 or covers the
// whole row. The tensors are in the kernel layout of the backend that packed them
// (Backend::pack_quantized, kernels/quant_layout.h), not in any checkpoint's layout: `weight`
// is u8 [rows_padded, row_bytes] with rows_padded = out_features rounded up to 16, and
// scales / zeros are f16 or f32 [rows_padded, groups]. Row ranges starting and ending on a
// multiple of 16 slice correctly with slice_rows (stacked MoE experts).
enum class QuantScheme : uint8_t { None, Int8PerChannel, Int4Group, Int8Group, Fp8E4M3 };
struct LinearWeight {
  Tensor weight;  // dense: [out_features, in_features] f32/bf16/f16; quantized: packed codes
  Tensor bias;    // [out_features] f32, or undefined
  QuantScheme quant = QuantScheme::None;
  Tensor scales;  // quantized: per-group scales (layout above)
  Tensor zeros;   // quantized: per-group offsets (MLX "biases"; -scale * zero for AWQ / GPTQ)
  int group_size = 0;
  int64_t out_features = 0;
  int64_t in_features = 0;
  // CPU, quantized: multiply the dequantized weights with the f32 activations as they are
  // (exact, for parity checks; chosen by loading with dtype float32) instead of the fast path
  // that rounds activations to int8 per block of 32 for integer dot products.
  bool f32_activations = false;
  int quant_bits() const { return quant == QuantScheme::Int4Group ? 4 : quant == QuantScheme::None ? 16 : 8; }
};

// A quantized matrix in a checkpoint-independent form, on the host: the format loaders
// (model/quant.h) decode MLX / AWQ / GPTQ tensors or quantize dense ones into this, and
// Backend::pack_quantized lays it out for its kernels.
//   W[r, c] = scales[r, c / group_size] * codes[r, c] + offsets[r, c / group_size]
// or, with fp8 set, W[r, c] = scales[r, c / group_size] * e4m3(codes[r, c]) (offsets 0).
struct QuantizedMatrix {
  int bits = 4;          // 4 (codes 0..15) or 8 (codes 0..255, or e4m3 bytes)
  bool fp8 = false;      // codes are FP8 e4m3 bytes (finite), bits 8
  int group_size = 0;    // multiple of 32, or >= cols (one group per row)
  int64_t rows = 0;      // out_features
  int64_t cols = 0;      // in_features
  Tensor codes;          // u8 [rows, cols], one code per byte
  Tensor scales;         // f32 [rows, groups]
  Tensor offsets;        // f32 [rows, groups]
  int64_t groups() const { return group_size >= cols ? 1 : (cols + group_size - 1) / group_size; }
  int64_t group_of(int64_t c) const { return group_size >= cols ? 0 : c / group_size; }
};

// The routed experts of one mixture-of-experts layer (Qwen2-MoE / Qwen3-MoE), stacked at
// load so that expert e is a row range of one weight (quantized weights slice the same way):
//   gate_up  [E * 2I, H]: rows [e*2I, e*2I + I) are expert e's gate_proj, [e*2I + I, (e+1)*2I) its up_proj
//   down     [E * H, I]:  rows [e*H, (e+1)*H) are expert e's down_proj
// plus the optional shared expert of Qwen2-MoE, added to every token with a sigmoid gate:
//   out += sigmoid(x . shared_gate) * down_s(silu(gate_s x) * up_s x).
struct MoeExperts {
  int num_experts = 0;           // E
  int64_t hidden = 0;            // H
  int64_t inter = 0;             // I (moe_intermediate_size)
  LinearWeight gate_up;          // [E * 2I, H]
  LinearWeight down;             // [E * H, I]
  int64_t shared_inter = 0;      // S; 0: no shared expert
  LinearWeight shared_gate_up;   // [2S, H] (gate rows then up rows)
  LinearWeight shared_down;      // [H, S]
  Tensor shared_gate;            // f32 [H]: the shared_expert_gate row

  // Expert e's weights as views (same storage): gate_up [2I, H], down [H, I].
  LinearWeight expert_gate_up(int e) const { return slice(gate_up, int64_t{e} * 2 * inter, 2 * inter); }
  LinearWeight expert_down(int e) const { return slice(down, int64_t{e} * hidden, hidden); }

 private:
  static LinearWeight slice(const LinearWeight& w, int64_t row0, int64_t rows) {
    LinearWeight v = w;
    v.weight = w.weight.slice_rows(row0, row0 + rows);
    if (w.bias.defined()) v.bias = w.bias.slice_rows(row0, row0 + rows);
    if (w.scales.defined()) v.scales = w.scales.slice_rows(row0, row0 + rows);
    if (w.zeros.defined()) v.zeros = w.zeros.slice_rows(row0, row0 + rows);
    v.out_features = rows;
    return v;
  }
};

struct QKVLayout {
  int n_q_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int64_t row_stride() const { return static_cast<int64_t>(n_q_heads + 2 * n_kv_heads) * head_dim; }
  int64_t k_offset() const { return static_cast<int64_t>(n_q_heads) * head_dim; }
  int64_t v_offset() const { return static_cast<int64_t>(n_q_heads + n_kv_heads) * head_dim; }
};

struct RopeSpec {
  int rotary_dim = 0;        // == head_dim for Qwen; rotates dims [0, rotary_dim)
  bool interleaved = false;  // false: split-half (rotate_half, HF Qwen); true: pairs (2i, 2i+1)
};

// Metadata of the flat varlen batch, on the backend's device (int32). Host copies of the
// scalars travel by value for launch decisions.
struct AttentionMeta {
  int num_seqs = 0;
  int num_tokens = 0;
  int max_seqlen_q = 0;
  int max_seqlen_k = 0;
  int block_size = 16;
  int max_blocks_per_seq = 0;
  Tensor cu_seqlens_q;  // i32 [B+1]: tokens of sequence b are rows [cu[b], cu[b+1])
  Tensor seq_lens_k;    // i32 [B]: keys in the cache for b after this step's writes;
                        //  query i of b sits at position seq_lens_k[b] - q_len_b + i
  Tensor block_tables;  // i32 [B, max_blocks_per_seq]
  // A launch hint: the kernel after attention may start (and wait) before attention ends.
  // Pays where that kernel is a quantized decode GEMV (7B int4 +3.0%, int8 +1.6%, run 102),
  // costs bf16 6-13% (runs 99-100), so the model sets it only for quantized projections.
  bool release_dependents_early = false;
};

// One token of one sequence through every decoder layer, as the model's per-layer ops
// compute it (model/qwen2.cpp): on entry x [1, H] holds the embedded token; on return x
// is the residual stream after the last layer, h [1, H] = rms_norm(x, final_norm), and each
// layer's k and v of the token are in its cache slot. The pointers refer to the caller's
// tensors, which outlive the call; q_norm / k_norm undefined: no q/k norm.
struct DecoderStackLayer {
  const Tensor* input_norm = nullptr;
  const Tensor* post_norm = nullptr;
  const Tensor* q_norm = nullptr;
  const Tensor* k_norm = nullptr;
  const LinearWeight* qkv = nullptr;
  const LinearWeight* o = nullptr;
  const LinearWeight* gate_up = nullptr;
  const LinearWeight* down = nullptr;
  const Tensor* k_cache = nullptr;
  const Tensor* v_cache = nullptr;
  int sliding_window = 0;
  // A sparse MoE MLP in place of gate_up / down (null: a dense layer): the router [E, H],
  // the stacked experts, top-k and norm_topk_prob, as Backend::moe_block takes them.
  const LinearWeight* router = nullptr;
  const MoeExperts* experts = nullptr;
  int top_k = 0;
  bool renormalize = false;
};
struct DecoderStack {
  Tensor* x = nullptr;
  Tensor* h = nullptr;
  const Tensor* final_norm = nullptr;
  std::vector<DecoderStackLayer> layers;
  QKVLayout layout;
  RopeSpec rope;
  const Tensor* cos_sin = nullptr;       // f32 [positions, rotary_dim]
  const Tensor* rope_rows = nullptr;     // i32 [1]
  const Tensor* slot_mapping = nullptr;  // i64 [1]
  const AttentionMeta* meta = nullptr;   // one sequence, one token
  float scale = 0.0f;
  float eps = 0.0f;
};

// Sampling of one row of logits. Processing order (as HF generate): penalties,
// temperature, top-k, top-p, min-p, then a draw. temperature == 0 means greedy (argmax,
// lowest id on ties). The draw is the Gumbel/exponential race: token = argmax over kept
// tokens of p_i / E_i with E_i = -log(u_i), u_i = uniform_from_hash(seed, offset, i)
// (see sampling_uniform below), so the same seed gives the same token on every backend.
struct SamplingRow {
  float temperature = 1.0f;
  int top_k = 0;            // <= 0: off
  float top_p = 1.0f;       // 1: off
  float min_p = 0.0f;       // 0: off
  float repetition_penalty = 1.0f;  // HF: logit > 0 ? logit / p : logit * p, over prompt+output tokens
  float presence_penalty = 0.0f;    // OpenAI: logit -= presence * (count > 0), output tokens only
  float frequency_penalty = 0.0f;   // OpenAI: logit -= frequency * count, output tokens only
  uint64_t seed = 0;
  uint64_t offset = 0;      // index of the token being drawn within its request's stream
  int num_top_logprobs = 0; // also return this many most likely tokens (raw log-softmax)
  // The row's banned_tokens entries are the only tokens it may draw; every other one is banned
  // (structured output: most states allow a few hundred tokens of 150k).
  bool allow_only = false;
};

struct SampleBatch {
  std::vector<SamplingRow> rows;  // [R], one per logits row
  // Tokens that penalties apply to, CSR over rows: row r owns entries [offsets[r], offsets[r+1]).
  // counts[j] = occurrences of tokens[j] in the output so far (0 when only in the prompt).
  std::vector<int32_t> penalty_offsets;  // [R+1] or empty when no row has penalties
  std::vector<int32_t> penalty_tokens;
  std::vector<int32_t> penalty_counts;
  // Per row, token ids to forbid (e.g. eos before min_tokens), CSR like the above; for a row
  // with allow_only, the ids it may draw.
  std::vector<int32_t> banned_offsets;   // [R+1] or empty
  std::vector<int32_t> banned_tokens;
  // Per row, (token, bias) added to the logit before the penalties (logit_bias), CSR like the
  // above; a token at most once per row.
  std::vector<int32_t> bias_offsets;     // [R+1] or empty
  std::vector<int32_t> bias_tokens;
  std::vector<float> bias_values;
};

// Throws InvalidArgument naming what is wrong with batch for [rows, vocab] logits: the row
// count, the CSR lists (bounds, ids in the vocabulary, a token biased twice in a row), each
// row's temperature, repetition penalty and num_top_logprobs >= 0. Every backend's sample()
// checks with it first (backend_sample.cpp).
void check_sample_batch(const SampleBatch& batch, int64_t rows, int64_t vocab);

struct SampleResult {
  std::vector<int32_t> tokens;   // [R]
  std::vector<float> logprobs;   // [R] raw log-softmax (before any processing) of the token
  // [R][num_top_logprobs] (token, raw logprob), most likely first, ties by lower id.
  std::vector<std::vector<std::pair<int32_t, float>>> top_logprobs;
};

// Counter-based uniform in (0, 1): splitmix64 of (seed, offset, token) -> 24 mantissa bits.
inline float sampling_uniform(uint64_t seed, uint64_t offset, uint32_t token) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull ^ (offset + 0x632BE59BD9B4E019ull) * 0xD1B54A32D192ED03ull ^
               (static_cast<uint64_t>(token) + 1) * 0x94D049BB133111EBull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (static_cast<float>(z >> 40) + 0.5f) * (1.0f / 16777216.0f);
}

// A recorded sequence of ops replayed over the same buffers (CUDA graphs).
class CapturedGraph {
 public:
  virtual ~CapturedGraph() = default;
  virtual void replay() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual Device device() const = 0;
  virtual std::string name() const = 0;  // "cpu (2 threads, avx512)", "cuda:0 (NVIDIA H100 ...)"
  virtual Allocator& allocator() = 0;
  virtual DType activation_dtype() const = 0;
  // The head dims its attention takes (empty: any), checked when a model's KV cache is made.
  virtual std::vector<int> attention_head_dims() const { return {}; }

  Tensor empty(Shape shape, DType dtype) { return Tensor::empty(std::move(shape), dtype, allocator()); }
  // Copies between any two devices; dtype and numel must match.
  virtual void copy(Tensor& dst, const Tensor& src) = 0;
  // A host tensor of any float dtype as a tensor of this device in `dtype`. On the CPU, a
  // tensor that already has the right dtype is returned as is (no copy of mmap'd weights).
  virtual Tensor upload(const Tensor& host, DType dtype) = 0;
  // Device tensor -> new host tensor in f32 (float inputs) or its own dtype (integers).
  virtual Tensor download(const Tensor& t) = 0;
  virtual void fill_zero(Tensor& t) = 0;
  virtual void synchronize() = 0;
  // (free, total) bytes of device memory; (0, 0) on the CPU.
  virtual std::pair<size_t, size_t> memory_info() { return {0, 0}; }
  // Records the ops that fn() issues into a graph that replay() re-runs over the same
  // buffers; fn must not allocate. Returns nullptr where unsupported (CPU).
  virtual std::unique_ptr<CapturedGraph> capture(const std::function<void()>& fn) { return nullptr; }

  // --- ops ---------------------------------------------------------------------------
  // out[T,H] = table[tokens[t], :]
  virtual void embedding(Tensor& out, const Tensor& table, const Tensor& tokens) = 0;
  // out = x / sqrt(mean(x^2) + eps) * weight, row-wise; out may alias x.
  virtual void rms_norm(Tensor& out, const Tensor& x, const Tensor& weight, float eps) = 0;
  // residual += x; out = rms_norm(residual) * weight.
  virtual void add_rms_norm(Tensor& residual, const Tensor& x, Tensor& out, const Tensor& weight,
                            float eps) = 0;
  // out[T,N] = x[T,K] @ W^T + bias. out is activation_dtype() or F32 (the lm_head writes
  // f32 logits so that log-probs keep their precision on bf16 backends).
  virtual void linear(Tensor& out, const Tensor& x, const LinearWeight& w) = 0;
  // In place on qkv[T, layout.row_stride()]: optional per-head RMSNorm of q and k (Qwen3;
  // q_norm/k_norm are [head_dim] or undefined), RoPE on q and k using
  // cos_sin[rope_rows[t]] (f32 rows of [cos(rotary_dim/2) | sin(rotary_dim/2)]), then k and v
  // of token t are written to slot slot_mapping[t] of the caches (skipped when < 0).
  virtual void qk_norm_rope_kv_write(Tensor& qkv, const QKVLayout& layout, const Tensor& q_norm,
                                     const Tensor& k_norm, float eps, const RopeSpec& rope,
                                     const Tensor& cos_sin, const Tensor& rope_rows,
                                     const Tensor& slot_mapping, Tensor& k_cache,
                                     Tensor& v_cache) = 0;
  // Causal attention of the q part of qkv over the paged cache (GQA: q head h reads kv head
  // h / (n_q_heads / n_kv_heads)). out[T, n_q_heads*head_dim]. sliding_window > 0 limits
  // keys to positions > pos - sliding_window.
  virtual void attention(Tensor& out, const Tensor& qkv, const QKVLayout& layout,
                         const Tensor& k_cache, const Tensor& v_cache, const AttentionMeta& meta,
                         float scale, int sliding_window) = 0;
  // out[T,I] = silu(gate_up[:, :I]) * gate_up[:, I:]
  virtual void silu_mul(Tensor& out, const Tensor& gate_up) = 0;
  // Projections that end a sub-layer of the decoder, each followed by the residual update
  // rn describes (add_rms_norm(*rn.residual, out, *rn.normed, *rn.weight, rn.eps)); a
  // backend may fuse the update, and the activation, into the projection.
  //   linear_residual_norm:  out = x @ w^T (+ bias), then rn
  struct ResidualNorm {
    Tensor* residual;
    Tensor* normed;
    const Tensor* weight;
    float eps;
  };
  virtual void linear_residual_norm(Tensor& out, const Tensor& x, const LinearWeight& w, const ResidualNorm& rn) {
    linear(out, x, w);
    add_rms_norm(*rn.residual, out, *rn.normed, *rn.weight, rn.eps);
  }
  // act = silu(gate) * up of [gate | up] = x @ gate_up^T: the MLP's first half. gate_up_out
  // [T, 2 I] is scratch for backends that materialise the projection before the activation.
  virtual void linear_silu_mul(Tensor& act, const Tensor& x, const LinearWeight& gate_up, Tensor& gate_up_out) {
    linear(gate_up_out, x, gate_up);
    silu_mul(act, gate_up_out);
  }
  // The attention's first half: qkv = x @ w^T (+ bias), then qk_norm_rope_kv_write(qkv, ...)
  // with the arguments in r. A backend may fuse the rotation and the cache writes into the
  // projection.
  struct RopeKvWrite {
    const QKVLayout* layout;
    const Tensor* q_norm;  // undefined tensors: no q/k norms
    const Tensor* k_norm;
    float eps;
    const RopeSpec* rope;
    const Tensor* cos_sin;
    const Tensor* rope_rows;
    const Tensor* slot_mapping;
    Tensor* k_cache;
    Tensor* v_cache;
    // The model's hint, as AttentionMeta::release_dependents_early (set with it): a backend
    // whose rotation runs as its own kernel may start the attention early.
    bool release_attention_early = false;
  };
  virtual void linear_rope_kv_write(Tensor& qkv, const Tensor& x, const LinearWeight& w, const RopeKvWrite& r) {
    linear(qkv, x, w);
    qk_norm_rope_kv_write(qkv, *r.layout, *r.q_norm, *r.k_norm, r.eps, *r.rope, *r.cos_sin, *r.rope_rows,
                          *r.slot_mapping, *r.k_cache, *r.v_cache);
  }
  // out[i,:] = x[indices[i], :]
  virtual void gather_rows(Tensor& out, const Tensor& x, const Tensor& indices) = 0;
  // Samples one token per row of logits[R, V] (f32). Synchronous: returns host results.
  virtual SampleResult sample(const Tensor& logits, const SampleBatch& batch) = 0;
  // Row-wise log-softmax of logits[R, V] (f32) into a host tensor; prompt log-probs.
  virtual Tensor log_softmax_to_host(const Tensor& logits) = 0;

  // --- deferred sampling (the engine's async scheduling, engine/engine.cpp) ---
  // sample_deferred() starts the draw of sample() and returns a ticket (0 or 1; at most two
  // draws are outstanding, a new one reuses the ticket of the one before the last);
  // feed_tokens() writes that draw's ids into tokens[i] for every i with rows[i] >= 0
  // (tokens[i] = id of row rows[i]), ordered after the draw, so that the next forward can
  // start before the host has seen them; collect_sample() returns the draw's host results.
  // The defaults (backend_sample.cpp) draw at once with sample() and patch tokens through a
  // host copy: correct everywhere, overlapping nothing. A backend that overlaps says so in
  // defers_sampling(); the engine pipelines steps only then (or when told to for tests).
  virtual bool defers_sampling() const { return false; }
  virtual int sample_deferred(const Tensor& logits, const SampleBatch& batch);
  virtual void feed_tokens(Tensor& tokens, const std::vector<int32_t>& rows, int ticket);
  virtual SampleResult collect_sample(int ticket);

  // --- quantized weights (optional: the defaults throw naming the op and the backend) ---
  // Lays a host QuantizedMatrix out in this backend's kernel layout (see LinearWeight) and
  // puts it on the device; linear() then takes the result like a dense weight.
  virtual LinearWeight pack_quantized(const QuantizedMatrix& m, bool f32_activations);
  // Whether pack_quantized takes FP8 matrices (QuantizedMatrix::fp8) and linear() runs them
  // as they are; otherwise the loader dequantizes FP8 checkpoints into the weight dtype.
  virtual bool takes_fp8_weights() const { return false; }
  // embedding() for a quantized table [vocab, hidden] (a packed LinearWeight): dequantized rows.
  virtual void embedding_quantized(Tensor& out, const LinearWeight& table, const Tensor& tokens);

  // --- mixture of experts (optional: the defaults throw "op X not supported by backend Y") ---
  // Router: p = softmax(router_logits[t, :]) in f32; topk_ids[t, :] = the k experts of
  // highest p, highest first, ties to the lower expert id (torch.topk leaves tie order
  // unspecified; this is its stable order, and vLLM's); topk_weights[t, :] = their p, divided by
  // their sum when `renormalize` (norm_topk_prob). router_logits [T, E] f32 or
  // activation_dtype(); topk_ids i32 [T, k]; topk_weights f32 [T, k]; k = topk_ids.dim(-1).
  virtual void moe_route(Tensor& topk_ids, Tensor& topk_weights, const Tensor& router_logits, bool renormalize);
  // out[t, :] = sum_j topk_weights[t, j] * expert_{topk_ids[t, j]}(x[t, :])  (j ascending)
  //           + sigmoid(x[t, :] . shared_gate) * shared_expert(x[t, :])   (when w has one)
  // with expert_e(x) = down_e(silu(gate_e x) * up_e x). x, out [T, H] in activation_dtype().
  // Ids outside [0, E) contribute nothing. On CUDA it neither synchronises nor allocates
  // once moe_reserve() covered T, so it can be captured in a graph.
  virtual void moe_experts(Tensor& out, const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                           const MoeExperts& w);
  // Sizes the scratch moe_experts needs for up to max_tokens tokens of top-k routing (call
  // at load, before any graph capture). Optional; the default does nothing.
  virtual void moe_reserve(int max_tokens, int top_k, const MoeExperts& w) {}
  // The whole sparse MoE block: router_logits = x router^T, moe_route, moe_experts (the
  // caller's router_logits [T, E], topk_ids / topk_weights [T, k] are left filled in). CUDA
  // fuses it at decode batch sizes (kernels/cuda/moe_ops.h).
  virtual void moe_block(Tensor& out, const Tensor& x, const LinearWeight& router, const MoeExperts& w,
                         Tensor& router_logits, Tensor& topk_ids, Tensor& topk_weights, bool renormalize) {
    linear(router_logits, x, router);
    moe_route(topk_ids, topk_weights, router_logits, renormalize);
    moe_experts(out, x, topk_ids, topk_weights, w);
  }

  // Runs the DecoderStack in one call where the backend has a fused path for it (CUDA: one
  // persistent kernel, kernels/cuda/decoder_stack.cu) and returns true; returns false,
  // having issued nothing, where it has none for these weights or this batch (the model then
  // runs the layers op by op).
  virtual bool decoder_stack(const DecoderStack& s) { return false; }

 private:
  SampleResult deferred_[2];  // the default deferred draws, by ticket
  bool deferred_live_[2] = {false, false};
  int next_ticket_ = 0;
};

struct CpuBackendOptions {
  int threads = 0;  // 0: all cores
};
std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& opts = {});

struct CudaBackendOptions {
  int device = 0;
  // Time cuBLASLt's candidate algorithms on the first prefill-sized GEMM of each shape
  // bucket (kernels/cuda/linear.h); the environment variable TLLM_GEMM_TUNE=0 also turns it off.
  bool gemm_autotune = true;
};
// Throws a clear error when tinyllm was built without CUDA or no GPU is present.
std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& opts = {});
bool cuda_available();  // built with CUDA and at least one device visible

}  // namespace tllm
