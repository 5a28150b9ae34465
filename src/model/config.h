// ModelConfig: config.json parsed once into an immutable struct with derived fields.
// A registry keyed by architectures[0] picks the family parser; any unknown architecture,
// activation, rope type or out-of-range value is an error naming the field, the value and
// what is supported. Classic hub spellings and newer transformers spellings both parse.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace tllm {

enum class RopeType { Default, Linear, Dynamic, Yarn, Llama3 };
const char* rope_type_name(RopeType t);

struct RopeScaling {
  RopeType type = RopeType::Default;
  double factor = 1.0;
  // yarn / llama3: the context the model was trained with. For yarn this comes from
  // rope_scaling.original_max_position_embeddings, else max_position_embeddings; llama3
  // requires it.
  int original_max_position_embeddings = 0;
  // llama3: wavelengths shorter than original / high_freq_factor keep their frequency,
  // longer than original / low_freq_factor are divided by factor, those between blend.
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  // yarn
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  std::optional<double> attention_factor;
  std::optional<double> mscale;
  std::optional<double> mscale_all_dim;
  bool truncate = true;
};

struct ModelConfig {
  std::string architecture;  // architectures[0], e.g. "Qwen2ForCausalLM"
  std::string model_type;    // "qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "llama"
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;  // given, or hidden_size / num_heads
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2: always true; Qwen3 and Llama: attention_bias
  bool o_bias = false;    // Qwen3 and Llama: attention_bias
  bool qk_norm = false;   // Qwen3: per-head RMSNorm of q and k before RoPE
  std::string hidden_act = "silu";
  DType dtype = DType::BF16;  // dtype / torch_dtype; the checkpoint's storage type
  // Sliding window per layer (0 = full attention), from layer_types or
  // use_sliding_window + sliding_window + max_window_layers.
  std::vector<int> layer_sliding_window;
  std::optional<int> bos_token_id;
  std::vector<int> eos_token_ids;  // config.json eos_token_id (int or list)

  // Mixture of experts (Qwen2-MoE / Qwen3-MoE); num_experts == 0 for dense models.
  int num_experts = 0;
  int num_experts_per_tok = 0;
  int moe_intermediate_size = 0;
  int shared_expert_intermediate_size = 0;  // 0: no shared expert
  bool norm_topk_prob = false;
  int decoder_sparse_step = 1;
  std::vector<int> mlp_only_layers;

  int kv_groups() const { return num_heads / num_kv_heads; }
  int q_size() const { return num_heads * head_dim; }
  int kv_size() const { return num_kv_heads * head_dim; }
  bool is_moe() const { return num_experts > 0; }
  // True when layer `l` uses the sparse MoE block (HF: not in mlp_only_layers and
  // num_experts > 0 and (l + 1) % decoder_sparse_step == 0).
  bool layer_is_moe(int l) const;
  // One rank's share under tensor parallelism over n devices (dist/tensor_parallel.h): the
  // attention heads and the MLPs' inner sizes divided by n; the KV heads divided by n, or,
  // where there are fewer KV heads than ranks, one per rank (each kept by n / num_kv_heads
  // ranks, as vLLM replicates them). Throws naming the field that does not divide.
  ModelConfig shard(int n) const;
  // Elements of every matrix a model of this config keeps on its device: the embedding, the
  // lm_head (when `logits` and not tied), each layer's q|k|v, o and MLP or experts, router
  // and shared expert. Vectors (norms, biases, the shared expert's gate: well under 1%) are
  // left out, so bytes counted from it are a lower bound on the weights' bytes.
  int64_t matrix_elements(bool logits) const;

  // Parses config.json text; `source` names the file in error messages.
  static ModelConfig from_json_text(const std::string& text, const std::string& source);
  static ModelConfig load(const std::string& model_dir);  // <dir>/config.json
  static std::vector<std::string> supported_architectures();
};

// generation_config.json (optional file): defaults for sampling and every eos id.
struct GenerationConfig {
  std::vector<int> eos_token_ids;
  std::optional<int> bos_token_id;
  std::optional<int> pad_token_id;
  bool do_sample = false;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int> top_k;
  std::optional<double> min_p;
  std::optional<double> repetition_penalty;
  std::optional<int> max_new_tokens;

  static GenerationConfig from_json_text(const std::string& text, const std::string& source);
  // Missing file -> defaults (empty eos list); malformed file -> error naming it.
  static GenerationConfig load(const std::string& model_dir);
  // vLLM's --generation-config: "auto" is load(model_dir); "vllm" keeps only the model's token
  // ids (eos, bos, pad) and samples with vLLM's defaults (do_sample); a folder gives the
  // sampling defaults from its generation_config.json (which must exist), its eos ids added to
  // the model's.
  static GenerationConfig load(const std::string& model_dir, const std::string& source);
};

}  // namespace tllm
