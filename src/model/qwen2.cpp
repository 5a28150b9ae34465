// Qwen2 / Qwen2.5 / Qwen3 / Llama decoder (dense; MoE layers plug in through MoeBlock).
// Llama is this forward without q/k norms, with q/k/v/o biases only under attention_bias.
//
//   x = embed(tokens)
//   h = norm(x)
//   per layer: qkv = h Wqkv + b; q,k = qk_norm (Qwen3); rope(q, k); cache <- k, v
//              a = attention(q, cache); x += a Wo; h = norm(x)
//              x += down(silu(h Wg) * h Wu); h = next_norm(x)   (the next layer's or the final norm)
//   logits = h[last tokens] W_lm
// Each projection that ends a sub-layer carries the residual update after it (the backend
// may fuse the two). A one-token step of one sequence may run all layers as one
// Backend::decoder_stack call (the same math; CUDA: one persistent kernel).
//
// Tensor parallelism (ModelLoadOptions::collective; dist/tensor_parallel.h runs the ranks):
// each rank holds its share of the heads (q|k|v rows, o columns) and of the MLP's inner
// dimension (gate|up rows, down columns), so the o and down projections give partial sums,
// added over the ranks (all_reduce_sum) before the residual update. The embedding, norms and
// the residual stream are whole on every rank; rank 0 alone computes the logits.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>

#include "core/allocator.h"
#include "core/env.h"
#include "core/logging.h"
#include "kernels/backend.h"
#include "kernels/collective.h"
#include "model/device_batch.h"
#include "model/model.h"
#include "model/moe.h"
#include "model/quant.h"
#include "model/rope.h"
#include "model/weights.h"

namespace tllm {

namespace {

struct Layer {
  Tensor input_norm;  // f32 [H]
  Tensor post_norm;   // f32 [H]
  Tensor q_norm;      // f32 [head_dim] (Qwen3) or undefined
  Tensor k_norm;
  LinearWeight qkv;      // [q + 2 kv, H]
  LinearWeight o;        // [H, q]
  LinearWeight gate_up;  // [2 I, H]
  LinearWeight down;     // [H, I]
  std::unique_ptr<MoeBlock> moe;  // instead of gate_up/down on sparse layers
  int sliding_window = 0;
};

// Activation buffers for the largest batch, allocated once.
struct Workspace {
  Tensor x, h, qkv, attn, o, gate_up, act, mlp_out, last_h, logits;
};

class Qwen2Model final : public CausalLM {
 public:
  Qwen2Model(const std::string& dir, const ModelConfig& cfg, Backend& backend, const ModelLoadOptions& opts)
      : collective_(opts.collective),
        ranks_(collective_ ? collective_->size() : 1),
        rank_(collective_ ? collective_->rank() : 0),
        full_kv_heads_(cfg.num_kv_heads),
        cfg_(cfg.shard(ranks_)),
        backend_(backend),
        rope_(cfg_) {
    max_model_len_ = opts.max_model_len > 0 ? opts.max_model_len : cfg_.max_position_embeddings;
    layout_ = QKVLayout{cfg_.num_heads, cfg_.num_kv_heads, cfg_.head_dim};
    pooling_ = opts.pooling;
    load_weights(dir, opts);
    allocate(opts);
  }

  const ModelConfig& config() const override { return cfg_; }
  Backend& backend() override { return backend_; }
  size_t weight_bytes() const override { return weight_bytes_; }

  Tensor forward(const ForwardBatch& batch, KVCache& kv) override {
    batch.validate(kv.block_size, kv.num_blocks);
    TLLM_CHECK(batch.num_tokens() <= max_tokens_, "forward batch of ", batch.num_tokens(),
               " tokens exceeds the workspace of ", max_tokens_, " tokens");
    for (int32_t p : batch.positions)
      TLLM_CHECK(p < max_model_len_, "position ", p, " is beyond the model length ", max_model_len_);
    if (!device_batch_ || device_batch_block_size_ != kv.block_size) {
      const int max_blocks = (max_model_len_ + kv.block_size - 1) / kv.block_size + 1;
      device_batch_ = std::make_unique<DeviceBatch>(backend_, max_tokens_, max_seqs_, max_blocks, kv.block_size,
                                                    rope_spec_.rotary_dim);
      device_batch_block_size_ = kv.block_size;
      graphs_.clear();
    }
    if (const GraphShape g = graph_shape(batch); g.q > 0) return forward_graph(batch, g, kv);
    device_batch_->upload(batch, dynamic_rope_rows(batch));
    return run(batch.num_tokens(), static_cast<int>(batch.logits_indices.size()), kv);
  }

 private:
  // The layers over the batch already uploaded to device_batch_: T tokens, n_logits rows
  // of logits. Issues ops only (no allocation for n_logits <= max_seqs), so it can be
  // captured into a CUDA graph.
  Tensor run(int T, int n_logits, KVCache& kv) {
    DeviceBatch& d = *device_batch_;
    const Tensor& cos_sin = rope_.depends_on_seq_len() ? d.dynamic_cos_sin : rope_table_;
    const float scale = attention_scale(), eps = norm_eps();

    Tensor x = ws_.x.slice_rows(0, T);            // [T, H] residual stream
    Tensor h = ws_.h.slice_rows(0, T);            // [T, H] normed
    Tensor qkv = ws_.qkv.slice_rows(0, T);        // [T, q + 2 kv]
    Tensor attn = ws_.attn.slice_rows(0, T);      // [T, q]
    Tensor o = ws_.o.slice_rows(0, T);            // [T, H]
    Tensor gate_up = ws_.gate_up.slice_rows(0, T);  // [T, 2 I]
    Tensor act = ws_.act.slice_rows(0, T);        // [T, I]
    Tensor mlp_out = ws_.mlp_out.slice_rows(0, T);  // [T, H]

    d.meta.release_dependents_early = release_attention_early_;
    if (embed_.quant == QuantScheme::None) backend_.embedding(x, embed_.weight, d.tokens);
    else backend_.embedding_quantized(x, embed_, d.tokens);
    // One token of one sequence: the backend may run every layer as one fused call.
    const bool fused = T == 1 && d.meta.num_seqs == 1 && !collective_ &&
                       backend_.decoder_stack(decoder_stack(x, h, cos_sin, kv));
    if (!fused) {
      backend_.rms_norm(h, x, layers_[0].input_norm, eps);
      for (int l = 0; l < cfg_.num_layers; ++l) {
        Layer& L = layers_[l];
        const Tensor& next_norm = l + 1 < cfg_.num_layers ? layers_[l + 1].input_norm : final_norm_;
        backend_.linear_rope_kv_write(qkv, h, L.qkv,  // qkv = h Wqkv + b; rope(q, k); cache <- k, v
                                      {&layout_, &L.q_norm, &L.k_norm, eps, &rope_spec_, &cos_sin, &d.rope_rows,
                                       &d.slot_mapping, &kv.k[l], &kv.v[l], release_attention_early_});
        backend_.attention(attn, qkv, layout_, kv.k[l], kv.v[l], d.meta, scale, L.sliding_window);
        residual_projection(o, attn, L.o, x, h, L.post_norm, eps);  // x += attn Wo; h = norm(x)
        if (L.moe) {
          L.moe->forward(mlp_out, h);
          if (collective_) collective_->all_reduce_sum(mlp_out);
          backend_.add_rms_norm(x, mlp_out, h, next_norm, eps);
        } else {
          backend_.linear_silu_mul(act, h, L.gate_up, gate_up);               // act = silu(h Wg) * h Wu
          residual_projection(mlp_out, act, L.down, x, h, next_norm, eps);  // x += act Wd; h = norm(x)
        }
      }
    }
    if (rank_ != 0) return {};  // rank 0 computes the logits

    Tensor last_h = n_logits <= ws_.last_h.dim(0) ? ws_.last_h.slice_rows(0, n_logits)
                                                   : backend_.empty({n_logits, cfg_.hidden_size}, act_dtype_);
    backend_.gather_rows(last_h, h, d.logits_indices);
    if (pooling_) return last_h;
    Tensor logits = n_logits <= ws_.logits.dim(0) ? ws_.logits.slice_rows(0, n_logits)
                                                   : backend_.empty({n_logits, cfg_.vocab_size}, DType::F32);
    backend_.linear(logits, last_h, lm_head_);
    return logits;
  }

  // out = in W (summed over the ranks); x += out; h = norm(x).
  void residual_projection(Tensor& out, const Tensor& in, const LinearWeight& w, Tensor& x, Tensor& h,
                           const Tensor& norm, float eps) {
    if (!collective_) {
      backend_.linear_residual_norm(out, in, w, {&x, &h, &norm, eps});
      return;
    }
    backend_.linear(out, in, w);
    collective_->all_reduce_sum(out);
    backend_.add_rms_norm(x, out, h, norm, eps);
  }

  float attention_scale() const { return 1.0f / std::sqrt(static_cast<float>(cfg_.head_dim)); }
  float norm_eps() const { return static_cast<float>(cfg_.rms_norm_eps); }

  // The layers of run() as one Backend::decoder_stack call.
  const DecoderStack& decoder_stack(Tensor& x, Tensor& h, const Tensor& cos_sin, KVCache& kv) {
    DeviceBatch& d = *device_batch_;
    stack_.x = &x;
    stack_.h = &h;
    stack_.cos_sin = &cos_sin;
    stack_.rope_rows = &d.rope_rows;
    stack_.slot_mapping = &d.slot_mapping;
    stack_.meta = &d.meta;
    for (size_t l = 0; l < stack_.layers.size(); ++l) {
      stack_.layers[l].k_cache = &kv.k[l];
      stack_.layers[l].v_cache = &kv.v[l];
    }
    return stack_;
  }

  // CUDA graphs for decode: a uniform batch (every sequence Q new tokens, Q <= kMaxGraphQ:
  // one in a plain decode step; the last token and its drafts in a speculative verification,
  // or the tokens a draft model catches up on) with the logits of every token in order, or of
  // each sequence's last token, is padded to a captured batch size; the graph is keyed by that
  // size, Q, the logits rows and a power-of-two bucket of the longest context, which fixes the
  // attention launch shape (block-table width, split count) baked into the graph. Padding
  // sequences attend to Q keys of block 0 and write no cache slot; their logits are dropped.
  struct GraphShape {
    int q = 0;              // tokens per sequence; 0: the batch takes no graph
    bool all_rows = false;  // logits of every token (else of each sequence's last)
  };
  GraphShape graph_shape(const ForwardBatch& b) const {
    if (!use_graphs_ || pooling_ || rope_.depends_on_seq_len()) return {};
    const int B = b.num_seqs(), T = b.num_tokens();
    if (B == 0 || T % B != 0 || B > max_graph_batch_) return {};
    const int Q = T / B;
    if (Q > kMaxGraphQ || (Q > 1 && !b.feed_rows.empty())) return {};
    for (int i = 0; i <= B; ++i)
      if (b.cu_seqlens_q[i] != i * Q) return {};
    const int R = static_cast<int>(b.logits_indices.size());
    const bool all_rows = R == T;
    if (!all_rows && R != B) return {};
    for (int i = 0; i < R; ++i)
      if (b.logits_indices[i] != (all_rows ? i : (i + 1) * Q - 1)) return {};
    const int Bp = padded_batch(B);  // the padded batch and its logits fit the workspace (no allocation)
    if (Bp * Q > max_tokens_ || Bp * (all_rows ? Q : 1) > max_seqs_) return {};
    return {Q, all_rows};
  }

  static int padded_batch(int B) {
    for (int s : kGraphBatchSizes)
      if (s >= B) return s;
    return B;
  }

  Tensor forward_graph(const ForwardBatch& b, GraphShape shape, KVCache& kv) {
    const int Q = shape.q, B = b.num_seqs(), Bp = padded_batch(B), Tp = Bp * Q;
    const int R = shape.all_rows ? Tp : Bp, R_real = shape.all_rows ? B * Q : B;  // logits rows
    int max_k = 0;
    for (int v : b.seq_lens_k) max_k = std::max(max_k, v);
    int bucket = 256;
    while (bucket < max_k) bucket *= 2;
    bucket = std::min(bucket, max_model_len_);
    const int width = (bucket + kv.block_size - 1) / kv.block_size;

    ForwardBatch p;  // padded copy with a fixed block-table width
    p.tokens = b.tokens;
    p.positions = b.positions;
    p.slot_mapping = b.slot_mapping;
    p.seq_lens_k = b.seq_lens_k;
    p.max_blocks_per_seq = width;
    p.block_tables.assign(static_cast<size_t>(Bp) * width, 0);
    for (int i = 0; i < B; ++i)
      std::copy_n(b.block_tables.begin() + static_cast<int64_t>(i) * b.max_blocks_per_seq,
                  std::min(b.max_blocks_per_seq, width), p.block_tables.begin() + static_cast<int64_t>(i) * width);
    p.tokens.resize(Tp, 0);
    if (!b.feed_rows.empty()) {
      p.feed_rows = b.feed_rows;
      p.feed_rows.resize(Tp, -1);
      p.feed_ticket = b.feed_ticket;
    }
    p.positions.resize(Tp, 0);
    p.slot_mapping.resize(Tp, -1);
    p.seq_lens_k.resize(Bp, Q);
    p.cu_seqlens_q.resize(Bp + 1);
    p.logits_indices.resize(R);
    for (int i = 0; i <= Bp; ++i) p.cu_seqlens_q[i] = i * Q;
    for (int i = 0; i < R; ++i) p.logits_indices[i] = shape.all_rows ? i : (i + 1) * Q - 1;
    device_batch_->upload(p, {});
    device_batch_->meta.max_seqlen_k = bucket;  // launch shape of the bucket, not of this step

    const int64_t key = ((static_cast<int64_t>(Bp) * (kMaxGraphQ + 1) + Q) * 2 + shape.all_rows) << 32 | bucket;
    auto it = graphs_.find(key);
    if (it == graphs_.end()) {
      run(Tp, R, kv);  // warm-up: sizes every scratch buffer before capture
      std::unique_ptr<CapturedGraph> g = backend_.capture([&] { run(Tp, R, kv); });
      if (!g) {
        use_graphs_ = false;
        Tensor out = run(Tp, R, kv);
        return rank_ != 0 ? out : out.slice_rows(0, R_real);
      }
      it = graphs_.emplace(key, std::move(g)).first;
    }
    it->second->replay();
    return rank_ != 0 ? Tensor() : ws_.logits.slice_rows(0, R_real);
  }

  // Before anything is uploaded: weights the device cannot hold fail now, naming what they
  // need, instead of after loading what fits (18 s for a 72B shape on an 80 GB card; on the
  // host, 41 s of filling this 24 GB machine for a 7B shape in float32). The need is a lower
  // bound: the matrices alone (ModelConfig::matrix_elements), each element at the fewest bytes
  // its format keeps (4-bit codes for any quantized format; 2-bit codes run on the 4-bit
  // kernels), so a model this refuses could not have loaded. On the host, weights read in place
  // from the checkpoint's mapped files (`in_place`: stored in the weights' dtype) take no memory
  // of their own, so only converted, quantized or dummy weights are checked here; the allocator
  // checks every large buffer anyway (core/allocator.h).
  void check_weights_fit(const std::string& dir, const QuantSpec& quant, const ModelLoadOptions& opts, bool in_place) {
    const auto [free_b, total_b] = backend_.memory_info();
    const bool host = total_b == 0;
    const bool quantized = quant.format != QuantFormat::None;
    if (host && in_place && !quantized) return;
    const size_t avail = host ? host_memory_usable() : free_b;
    const bool logits = !pooling_ && (rank_ == 0 || cfg_.tie_word_embeddings);
    const int64_t elements = cfg_.matrix_elements(logits);
    const double need = static_cast<double>(elements) * (quantized ? 0.5 : static_cast<double>(dtype_size(opts.weight_dtype)));
    if (need <= static_cast<double>(avail)) return;
    char sizes[160];
    std::snprintf(sizes, sizeof(sizes), "at least %.1f GiB (%.2f billion matrix elements as %s), and %.1f GiB",
                  need / 1073741824.0, static_cast<double>(elements) / 1e9,
                  quantized ? "4-bit codes" : dtype_name(opts.weight_dtype), static_cast<double>(avail) / 1073741824.0);
    const std::string share = ranks_ > 1 ? " (rank " + std::to_string(rank_) + "'s share)" : std::string();
    if (host)
      throw InvalidArgument(detail::concat(
          "out of host memory: the weights of ", dir, share, " need ", sizes,
          " are available (MemAvailable or the cgroup's limit, less ", kHostMemoryReserve >> 20, " MiB kept free); use ",
          opts.weight_dtype == DType::F32 && !quantized ? "--dtype bfloat16 (half the bytes of float32), " : "",
          quantized ? "a smaller model" : "--quantization int8 or int4, or a smaller model"));
    char of_total[48];
    std::snprintf(of_total, sizeof(of_total), " of its %.1f GiB", static_cast<double>(total_b) / 1073741824.0);
    throw InvalidArgument(detail::concat(
        "the weights of ", dir, share, " do not fit on ", backend_.name(), ": they need ", sizes, of_total,
        " are free; ",
        quantized ? "use --tensor-parallel-size or a smaller model"
                  : "use --quantization int4 (or int8), --tensor-parallel-size or a smaller model"));
  }

  void load_weights(const std::string& dir, const ModelLoadOptions& opts) {
    std::optional<Checkpoint> ckpt;
    if (!opts.dummy_weights) ckpt = Checkpoint::open(dir);
    WeightLoader w(ckpt ? &*ckpt : nullptr, backend_, opts.weight_dtype);
    w.set_tensor_parallel(rank_, ranks_);
    QuantSpec quant = QuantSpec::resolve(dir, opts.quantization, opts.quant_group_size);
    quant.fp8_kernels = backend_.takes_fp8_weights();
    TLLM_CHECK_ARG(!quant.fp8_on_load || quant.fp8_kernels, "--quantization fp8: the ", backend_.name(),
                   " backend has no FP8 kernels; use int8 (per channel) or int4 there");
    if (ckpt) quant.check_stored_in(*ckpt);
    if (quant.format != QuantFormat::None) {
      TLLM_LOG(Info, "weights: ", quant.describe());
      w.set_quantization(std::make_shared<QuantLoader>(quant));
    }
    const int64_t H = cfg_.hidden_size, I = cfg_.intermediate_size, V = cfg_.vocab_size;
    const int64_t q = cfg_.q_size(), kvs = cfg_.kv_size();  // this rank's share
    // Tensor parallelism: the rows of q, k and v and the columns of o this rank loads (its
    // heads; with fewer KV heads than ranks, the one KV head its q heads read), and the
    // MLP's rows of gate and up and columns of down.
    const int64_t D = cfg_.head_dim, kv_full = int64_t{full_kv_heads_} * D;
    const int64_t kv0 = full_kv_heads_ % ranks_ == 0 ? rank_ * kvs : rank_ / (ranks_ / full_kv_heads_) * D;
    WeightSlice qkv_slice, o_slice = WeightSlice::cols_of(q, rank_, ranks_);
    if (ranks_ > 1) qkv_slice = {{rank_ * q, kv0, kv0}, {q * ranks_, kv_full, kv_full}};
    const WeightSlice gate_up_slice = WeightSlice::rows_of({I, I}, rank_, ranks_);
    const WeightSlice down_slice = WeightSlice::cols_of(I, rank_, ranks_);
    // Checkpoints saved from the bare decoder (transformers' Qwen3Model, as Qwen3-Embedding's
    // are) name their tensors without the "model." prefix.
    const std::string root = w.has("embed_tokens.weight") && !w.has("model.embed_tokens.weight") ? "" : "model.";
    const std::string embed_name = root + "embed_tokens.weight";
    check_weights_fit(dir, quant, opts, ckpt && ckpt->has(embed_name) && ckpt->info(embed_name).dtype == opts.weight_dtype);
    embed_ = w.embedding(embed_name, V, H);
    final_norm_ = w.tensor(root + "norm.weight", {H}, DType::F32);
    if (pooling_ || (rank_ != 0 && !cfg_.tie_word_embeddings)) {
      // A pooling model, and tensor-parallel ranks other than 0, compute no logits.
      if (w.has("lm_head.weight")) w.mark_used("lm_head.weight");
    } else if (cfg_.tie_word_embeddings) {
      lm_head_ = embed_;
      if (w.has("lm_head.weight")) w.host("lm_head.weight", {V, H});  // present but unused (tied)
    } else {
      lm_head_ = w.linear({"lm_head.weight"}, {V}, H);
    }
    layers_.resize(cfg_.num_layers);
    for (int l = 0; l < cfg_.num_layers; ++l) {
      const std::string p = root + "layers." + std::to_string(l) + ".";
      Layer& L = layers_[l];
      L.input_norm = w.tensor(p + "input_layernorm.weight", {H}, DType::F32);
      L.post_norm = w.tensor(p + "post_attention_layernorm.weight", {H}, DType::F32);
      const std::string a = p + "self_attn.";
      std::vector<std::string> qkv_bias;
      if (cfg_.qkv_bias) qkv_bias = {a + "q_proj.bias", a + "k_proj.bias", a + "v_proj.bias"};
      L.qkv = w.linear({a + "q_proj.weight", a + "k_proj.weight", a + "v_proj.weight"}, {q, kvs, kvs}, H, qkv_bias,
                       qkv_slice);
      // o's bias is added once: on rank 0, beside its partial sum.
      std::vector<std::string> o_bias;
      if (cfg_.o_bias && rank_ == 0) o_bias = {a + "o_proj.bias"};
      else if (cfg_.o_bias && w.has(a + "o_proj.bias")) w.mark_used(a + "o_proj.bias");
      L.o = w.linear({a + "o_proj.weight"}, {H}, q, o_bias, o_slice);
      if (cfg_.qk_norm) {
        L.q_norm = w.tensor(a + "q_norm.weight", {cfg_.head_dim}, DType::F32);
        L.k_norm = w.tensor(a + "k_norm.weight", {cfg_.head_dim}, DType::F32);
      }
      if (cfg_.layer_is_moe(l)) {
        L.moe = MoeBlock::load(w, cfg_, p + "mlp.", opts.max_num_tokens);
      } else {
        const std::string m = p + "mlp.";
        L.gate_up = w.linear({m + "gate_proj.weight", m + "up_proj.weight"}, {I, I}, H, {}, gate_up_slice);
        L.down = w.linear({m + "down_proj.weight"}, {H}, I, {}, down_slice);
      }
      L.sliding_window = cfg_.layer_sliding_window.empty() ? 0 : cfg_.layer_sliding_window[l];
      release_free_host_memory();  // the layer's transients (host copies, f32 before quantizing)
    }
    for (const std::string& n : w.unused())
      TLLM_LOG(Warn, "checkpoint tensor \"", n, "\" is not used by ", cfg_.architecture);
    weight_bytes_ = w.uploaded_bytes();
  }

  void allocate(const ModelLoadOptions& opts) {
    act_dtype_ = backend_.activation_dtype();
    use_graphs_ = opts.cuda_graphs && backend_.device() == Device::CUDA;
    release_attention_early_ = !layers_.empty() && layers_[0].o.quant != QuantScheme::None &&
                               env_switch_on("TLLM_ATTN_RELEASE_EARLY");
    max_tokens_ = std::max(1, opts.max_num_tokens);
    max_seqs_ = std::max(1, std::min(opts.max_num_seqs, max_tokens_));
    for (int g : kGraphBatchSizes)
      if (g <= max_seqs_) max_graph_batch_ = g;
    const int max_seqs = max_seqs_;
    const int64_t T = max_tokens_, H = cfg_.hidden_size, I = cfg_.intermediate_size;
    int64_t I_mlp = I;
    if (cfg_.is_moe()) I_mlp = std::max<int64_t>(I, cfg_.moe_intermediate_size);
    ws_.x = backend_.empty({T, H}, act_dtype_);
    ws_.h = backend_.empty({T, H}, act_dtype_);
    ws_.qkv = backend_.empty({T, layout_.row_stride()}, act_dtype_);
    ws_.attn = backend_.empty({T, cfg_.q_size()}, act_dtype_);
    ws_.o = backend_.empty({T, H}, act_dtype_);
    ws_.gate_up = backend_.empty({T, 2 * I_mlp}, act_dtype_);
    ws_.act = backend_.empty({T, I_mlp}, act_dtype_);
    ws_.mlp_out = backend_.empty({T, H}, act_dtype_);
    ws_.last_h = backend_.empty({max_seqs, H}, act_dtype_);
    if (!pooling_ && rank_ == 0) ws_.logits = backend_.empty({max_seqs, cfg_.vocab_size}, DType::F32);
    rope_spec_.rotary_dim = rope_.rotary_dim();
    rope_spec_.interleaved = false;
    stack_.final_norm = &final_norm_;
    stack_.layout = layout_;
    stack_.rope = rope_spec_;
    stack_.scale = attention_scale();
    stack_.eps = norm_eps();
    for (const Layer& L : layers_) {
      DecoderStackLayer& S = stack_.layers.emplace_back();
      S.input_norm = &L.input_norm;
      S.post_norm = &L.post_norm;
      S.q_norm = &L.q_norm;
      S.k_norm = &L.k_norm;
      S.qkv = &L.qkv;
      S.o = &L.o;
      S.sliding_window = L.sliding_window;
      if (L.moe) {
        L.moe->describe(S);
      } else {
        S.gate_up = &L.gate_up;
        S.down = &L.down;
      }
    }
    if (!rope_.depends_on_seq_len()) {
      // A row of cos / sin per position up to max_model_len, in host memory and on the device
      // (vLLM's cos_sin_cache is the same): a max_position_embeddings of 2^31 - 1 asked for
      // 512 GiB, and the out-of-memory error named neither the field nor the flag.
      const double gib = static_cast<double>(max_model_len_) * rope_.rotary_dim() * 4 / (1u << 30);
      TLLM_CHECK_ARG(gib <= 4, "max_model_len ", max_model_len_, cfg_.max_position_embeddings == max_model_len_
                                   ? " (max_position_embeddings in config.json)" : "",
                     " needs a RoPE table of ", gib, " GiB; pass a smaller --max-model-len");
      rope_table_ = backend_.upload(rope_.table(max_model_len_), DType::F32);
    }
  }

  // Dynamic NTK RoPE: a cos/sin row per token, computed for its sequence's length in
  // this forward (as transformers' dynamic_rope_update does per call). Empty otherwise.
  std::vector<float> dynamic_rope_rows(const ForwardBatch& b) const {
    std::vector<float> rows;
    if (!rope_.depends_on_seq_len()) return rows;
    const int rd = rope_.rotary_dim();
    rows.resize(static_cast<size_t>(b.num_tokens()) * rd);
    for (int s = 0; s < b.num_seqs(); ++s)
      for (int t = b.cu_seqlens_q[s]; t < b.cu_seqlens_q[s + 1]; ++t)
        rope_.row(b.positions[t], b.seq_lens_k[s], rows.data() + static_cast<size_t>(t) * rd);
    return rows;
  }

  Collective* collective_;  // null: one device
  int ranks_, rank_;
  int full_kv_heads_;  // the checkpoint's KV heads (cfg_ holds this rank's)
  ModelConfig cfg_;  // this rank's shard (ModelConfig::shard)
  Backend& backend_;
  RopeTable rope_;
  RopeSpec rope_spec_;
  QKVLayout layout_;
  int max_model_len_ = 0;
  int max_tokens_ = 0;
  int max_seqs_ = 0;
  int device_batch_block_size_ = 0;
  DType act_dtype_ = DType::F32;
  LinearWeight embed_;  // [V, H], dense or quantized
  Tensor final_norm_;  // f32 [H]
  LinearWeight lm_head_;
  Tensor rope_table_;  // f32 [max_model_len, rotary_dim] (static RoPE types)
  std::vector<Layer> layers_;
  Workspace ws_;
  DecoderStack stack_;  // the fused path's view of the layers (decoder_stack())
  std::unique_ptr<DeviceBatch> device_batch_;
  static constexpr int kGraphBatchSizes[] = {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256};
  static constexpr int kMaxGraphQ = 8;  // tokens per sequence of a captured step (a verification of 7 drafts)
  bool use_graphs_ = false;
  bool pooling_ = false;  // ModelLoadOptions::pooling
  // Attention may release the o projection early where it is quantized (AttentionMeta);
  // TLLM_ATTN_RELEASE_EARLY=0 turns it off (measurements).
  bool release_attention_early_ = false;
  int max_graph_batch_ = 0;
  std::map<int64_t, std::unique_ptr<CapturedGraph>> graphs_;
  size_t weight_bytes_ = 0;
};

}  // namespace

std::unique_ptr<CausalLM> load_model(const std::string& dir, Backend& backend, const ModelLoadOptions& opts) {
  return load_model(dir, ModelConfig::load(dir), backend, opts);
}

std::unique_ptr<CausalLM> load_model(const std::string& dir, ModelConfig cfg, Backend& backend,
                                     const ModelLoadOptions& opts) {
  // One forward serves every supported architecture; the registry of names lives in
  // config.cpp, which rejects anything else with the list of supported ones.
  return std::make_unique<Qwen2Model>(dir, std::move(cfg), backend, opts);
}

}  // namespace tllm
