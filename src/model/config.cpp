// config.json -> ModelConfig, following how transformers' Qwen2/Qwen3/Qwen2-MoE/Qwen3-MoE
// and Llama config classes (4.5x and 5.x) read the same file:
// - head_dim: given, else hidden_size / num_attention_heads; Qwen3 (dense) defaults to 128
//   as Qwen3Config does.
// - layer_types: given, else "sliding_attention" for layers i >= max_window_layers when
//   use_sliding_window and sliding_window are set. A layer slides only when it is
//   "sliding_attention" AND use_sliding_window is on (transformers sets sliding_window to
//   None otherwise).
// - RoPE: `rope_parameters` (5.x) or `rope_scaling` (classic, "type" or "rope_type"); the
//   theta inside rope_parameters wins over top-level rope_theta (5.x standardize_rope_params).
//   yarn uses the given factor (5.x; 4.5x before PR #40320 replaced it by
//   max_position_embeddings / original_max_position_embeddings whenever the latter was set);
//   a missing yarn factor is that ratio. dynamic scales against max_position_embeddings.
//   llama3 (Llama 3.1+) needs factor, low_freq_factor, high_freq_factor and
//   original_max_position_embeddings, as transformers' validation does.
// - Llama: attention_bias switches q/k/v/o biases (as Qwen3's); mlp_bias is refused (no
//   released Llama-family checkpoint sets it); max_position_embeddings defaults to 2048.
// Anything we cannot run (another architecture, activation, RoPE type) is an error listing
// what is supported.
#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "core/error.h"
#include "io/json.h"

namespace tllm {

using nlohmann::json;

const char* rope_type_name(RopeType t) {
  switch (t) {
    case RopeType::Default: return "default";
    case RopeType::Linear: return "linear";
    case RopeType::Dynamic: return "dynamic";
    case RopeType::Yarn: return "yarn";
    case RopeType::Llama3: return "llama3";
  }
  return "?";
}

bool ModelConfig::layer_is_moe(int l) const {
  if (num_experts <= 0 || decoder_sparse_step <= 0) return false;
  if (std::find(mlp_only_layers.begin(), mlp_only_layers.end(), l) != mlp_only_layers.end()) return false;
  return (l + 1) % decoder_sparse_step == 0;
}

int64_t ModelConfig::matrix_elements(bool logits) const {
  const int64_t H = hidden_size, V = vocab_size;
  int64_t n = V * H;  // the embedding
  if (logits && !tie_word_embeddings) n += V * H;
  for (int l = 0; l < num_layers; ++l) {
    n += H * (int64_t{q_size()} + 2 * int64_t{kv_size()}) + int64_t{q_size()} * H;
    if (layer_is_moe(l)) {
      n += int64_t{num_experts} * (3 * H * moe_intermediate_size + H);  // experts and the router's rows
      if (shared_expert_intermediate_size > 0) n += 3 * H * shared_expert_intermediate_size;
    } else {
      n += 3 * H * intermediate_size;
    }
  }
  return n;
}

namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();

// One entry per architectures[0] we run. The family decides the defaults and switches that
// transformers hard-codes per model class.
struct Family {
  const char* model_type;
  bool qk_norm;         // per-head RMSNorm of q and k (Qwen3)
  bool attention_bias;  // attention_bias switches q/k/v/o biases (Qwen3, Llama); else Qwen2's rule
  bool moe;
  int default_head_dim;  // 0: hidden_size / num_attention_heads
  int default_max_position_embeddings;
};

const std::map<std::string, Family>& registry() {
  static const std::map<std::string, Family> r = {
      {"Qwen2ForCausalLM", {"qwen2", false, false, false, 0, 32768}},
      {"Qwen3ForCausalLM", {"qwen3", true, true, false, 128, 32768}},
      {"Qwen2MoeForCausalLM", {"qwen2_moe", false, false, true, 0, 32768}},
      {"Qwen3MoeForCausalLM", {"qwen3_moe", true, true, true, 0, 32768}},
      {"LlamaForCausalLM", {"llama", false, true, false, 0, 2048}},
  };
  return r;
}

std::string supported_list() {
  std::string s;
  for (const auto& [arch, fam] : registry()) s += (s.empty() ? "" : ", ") + arch;
  return s;
}

double positive_number(const JsonFields& f, const char* key, double dflt) {
  auto v = f.get_number(key);
  if (!v) return dflt;
  if (!std::isfinite(*v) || *v <= 0) f.fail(key, "must be a positive number");
  return *v;
}

int token_id(const JsonFields& f, const char* key, int64_t v) {
  if (v < 0 || v > kMaxInt) f.fail(key, "token ids must be in [0, 2^31)");
  return static_cast<int>(v);
}

std::vector<int> token_ids(const JsonFields& f, const char* key) {
  std::vector<int> out;
  if (auto ids = f.get_int_or_int_list(key))
    for (int64_t v : *ids) out.push_back(token_id(f, key, v));
  return out;
}

DType parse_dtype(const JsonFields& f) {
  auto from = [&](const char* key) -> std::optional<DType> {
    auto s = f.get_string(key);
    if (!s) return std::nullopt;
    if (*s != "float32" && *s != "bfloat16" && *s != "float16")
      f.fail(key, "unsupported dtype (supported: float32, bfloat16, float16)");
    return dtype_from_name(*s);
  };
  auto d = from("dtype");
  auto td = from("torch_dtype");
  if (d && td && *d != *td) f.fail("dtype", "disagrees with torch_dtype = " + json_brief(*f.find("torch_dtype")));
  if (d) return *d;
  if (td) return *td;
  return DType::BF16;
}

void parse_rope(const JsonFields& f, ModelConfig& c) {
  const json* params = f.find("rope_parameters");
  const json* scaling = f.find("rope_scaling");
  if (params && scaling && *params != *scaling)
    f.fail("rope_scaling", "conflicts with rope_parameters = " + json_brief(*params) + "; give one of them");
  const char* key = params ? "rope_parameters" : "rope_scaling";
  std::optional<JsonFields> r = f.get_object(key);

  // theta: rope_parameters.rope_theta, then top-level rope_theta, then 10000.
  c.rope_theta = positive_number(f, "rope_theta", 10000.0);
  if (r) c.rope_theta = positive_number(*r, "rope_theta", c.rope_theta);

  RopeScaling& s = c.rope_scaling;
  s = RopeScaling{};
  s.original_max_position_embeddings = c.max_position_embeddings;
  for (const JsonFields* where : {&f, r ? &*r : static_cast<const JsonFields*>(nullptr)}) {
    if (!where) continue;
    if (auto p = where->get_number("partial_rotary_factor"); p && *p != 1.0)
      where->fail("partial_rotary_factor", "partial rotary embeddings are not supported (only 1.0)");
  }
  if (!r) return;

  for (const char* nested : {"full_attention", "sliding_attention"})
    if (r->has(nested)) r->fail(nested, "per-layer-type RoPE parameters are not supported");
  if (r->has("mrope_section")) r->fail("mrope_section", "multimodal RoPE is not supported");

  auto rope_type = r->get_string("rope_type");
  auto legacy_type = r->get_string("type");
  if (rope_type && legacy_type && *rope_type != *legacy_type)
    r->fail("type", "disagrees with rope_type = \"" + *rope_type + "\"");
  const char* type_key = rope_type ? "rope_type" : "type";
  const std::string type = rope_type ? *rope_type : legacy_type.value_or("default");
  if (type == "default") {
    s.type = RopeType::Default;
    return;
  } else if (type == "linear") {
    s.type = RopeType::Linear;
  } else if (type == "dynamic") {
    s.type = RopeType::Dynamic;
  } else if (type == "yarn") {
    s.type = RopeType::Yarn;
  } else if (type == "llama3") {
    s.type = RopeType::Llama3;
  } else {
    r->fail(type_key, "unsupported RoPE type (supported: default, linear, dynamic, yarn, llama3)");
  }

  if (s.type == RopeType::Llama3) {
    for (const char* key : {"factor", "low_freq_factor", "high_freq_factor"})
      if (!r->has(key)) r->fail(key, "required for RoPE type llama3");
    s.factor = positive_number(*r, "factor", 1.0);
    s.low_freq_factor = positive_number(*r, "low_freq_factor", 1.0);
    s.high_freq_factor = positive_number(*r, "high_freq_factor", 4.0);
    if (s.high_freq_factor <= s.low_freq_factor)
      r->fail("high_freq_factor", detail::concat("must exceed low_freq_factor = ", s.low_freq_factor));
    if (auto o = r->get_int_in("original_max_position_embeddings", 1, kMaxInt)) {
      s.original_max_position_embeddings = *o;
    } else if (auto top = f.get_int_in("original_max_position_embeddings", 1, kMaxInt)) {
      s.original_max_position_embeddings = *top;
    } else {
      r->fail("original_max_position_embeddings", "required for RoPE type llama3");
    }
    return;
  }
  if (s.type != RopeType::Yarn) {
    if (!r->has("factor")) r->fail("factor", std::string("required for RoPE type ") + rope_type_name(s.type));
    s.factor = positive_number(*r, "factor", 1.0);
    // transformers' dynamic NTK scales against config.max_position_embeddings and ignores
    // rope_scaling.original_max_position_embeddings (its "TODO (joao)").
    return;
  }

  // yarn. A top-level original_max_position_embeddings wins, as in 5.x standardization.
  if (auto top = f.get_int_in("original_max_position_embeddings", 1, kMaxInt)) {
    s.original_max_position_embeddings = *top;
  } else if (auto o = r->get_int_in("original_max_position_embeddings", 1, kMaxInt)) {
    s.original_max_position_embeddings = *o;
  }
  s.factor = r->has("factor") ? positive_number(*r, "factor", 1.0)
                              : static_cast<double>(c.max_position_embeddings) / s.original_max_position_embeddings;
  if (auto a = r->get_number("attention_factor")) {
    if (!std::isfinite(*a) || *a <= 0) r->fail("attention_factor", "must be a positive number");
    s.attention_factor = *a;
  }
  // `rope_scaling.get("beta_fast") or 32`: 0 and null both mean the default.
  if (auto b = r->get_number("beta_fast"); b && *b != 0) s.beta_fast = *b;
  if (auto b = r->get_number("beta_slow"); b && *b != 0) s.beta_slow = *b;
  if (!std::isfinite(s.beta_fast) || !std::isfinite(s.beta_slow) || s.beta_fast <= 0 || s.beta_slow <= 0)
    r->fail("beta_fast", "beta_fast and beta_slow must be positive");
  if (auto m = r->get_number("mscale")) s.mscale = *m;
  if (auto m = r->get_number("mscale_all_dim")) s.mscale_all_dim = *m;
  s.truncate = r->get_bool("truncate").value_or(true);
}

void parse_layers(const JsonFields& f, ModelConfig& c) {
  const bool use_sliding_window = f.get_bool("use_sliding_window").value_or(false);
  std::optional<int> window;
  if (use_sliding_window) window = f.get_int_in("sliding_window", 1, kMaxInt);
  const int max_window_layers = f.get_int_in("max_window_layers", 0, kMaxInt).value_or(28);

  std::vector<std::string> types;
  if (auto given = f.get_string_list("layer_types")) {
    types = *given;
    if (static_cast<int>(types.size()) != c.num_layers)
      f.fail("layer_types", detail::concat("has ", types.size(), " entries but num_hidden_layers = ", c.num_layers));
    for (const auto& t : types)
      if (t != "full_attention" && t != "sliding_attention")
        f.fail("layer_types", "unsupported layer type \"" + t + "\" (supported: full_attention, sliding_attention)");
  } else {
    for (int i = 0; i < c.num_layers; ++i)
      types.push_back(window && i >= max_window_layers ? "sliding_attention" : "full_attention");
  }
  c.layer_sliding_window.assign(c.num_layers, 0);
  for (int i = 0; i < c.num_layers; ++i)
    if (types[i] == "sliding_attention" && window) c.layer_sliding_window[i] = *window;
}

void parse_moe(const JsonFields& f, const Family& fam, ModelConfig& c) {
  c.num_experts = f.require_int_in("num_experts", 1, kMaxInt);
  c.num_experts_per_tok = f.require_int_in("num_experts_per_tok", 1, c.num_experts);
  c.moe_intermediate_size = f.require_int_in("moe_intermediate_size", 1, kMaxInt);
  // Qwen2-MoE has a shared expert beside the routed ones; Qwen3-MoE has none.
  if (fam.model_type == std::string("qwen2_moe"))
    c.shared_expert_intermediate_size = f.require_int_in("shared_expert_intermediate_size", 0, kMaxInt);
  c.norm_topk_prob = f.get_bool("norm_topk_prob").value_or(false);
  c.decoder_sparse_step = f.get_int_in("decoder_sparse_step", 1, kMaxInt).value_or(1);
  if (auto l = f.get_int_list("mlp_only_layers")) {
    for (int64_t i : *l) {
      if (i < 0 || i >= c.num_layers)
        f.fail("mlp_only_layers", detail::concat("layer index ", i, " is outside [0, ", c.num_layers, ")"));
      c.mlp_only_layers.push_back(static_cast<int>(i));
    }
  }
}

}  // namespace

std::vector<std::string> ModelConfig::supported_architectures() {
  std::vector<std::string> out;
  for (const auto& [arch, fam] : registry()) out.push_back(arch);
  return out;
}

ModelConfig ModelConfig::from_json_text(const std::string& text, const std::string& source) {
  const json j = parse_json(text, source);
  const JsonFields f(j, source);
  ModelConfig c;

  auto archs = f.get_string_list("architectures");
  if (!archs || archs->empty()) f.fail("architectures", "required (the model class, one of: " + supported_list() + ")");
  auto it = registry().find(archs->front());
  if (it == registry().end())
    f.fail("architectures", "unsupported architecture \"" + archs->front() + "\" (supported: " + supported_list() + ")");
  const Family& fam = it->second;
  c.architecture = it->first;
  c.model_type = fam.model_type;
  if (auto mt = f.get_string("model_type"); mt && *mt != fam.model_type)
    f.fail("model_type", "does not match architecture " + c.architecture + " (expected \"" + fam.model_type + "\")");

  c.vocab_size = f.require_int_in("vocab_size", 1, kMaxInt);
  c.hidden_size = f.require_int_in("hidden_size", 1, kMaxInt);
  c.intermediate_size = f.require_int_in("intermediate_size", 1, kMaxInt);
  c.num_layers = f.require_int_in("num_hidden_layers", 1, kMaxInt);
  c.num_heads = f.require_int_in("num_attention_heads", 1, kMaxInt);
  // `"num_key_value_heads": null` means MHA (transformers' backward compatibility).
  if (j.contains("num_key_value_heads") && j["num_key_value_heads"].is_null())
    c.num_kv_heads = c.num_heads;
  else
    c.num_kv_heads = f.require_int_in("num_key_value_heads", 1, kMaxInt);
  if (c.num_heads % c.num_kv_heads != 0)
    f.fail("num_key_value_heads", detail::concat("must divide num_attention_heads = ", c.num_heads));

  if (auto hd = f.get_int_in("head_dim", 1, kMaxInt)) {
    c.head_dim = *hd;
  } else if (fam.default_head_dim) {
    c.head_dim = fam.default_head_dim;
  } else {
    if (c.hidden_size % c.num_heads != 0)
      f.fail("num_attention_heads", detail::concat("does not divide hidden_size = ", c.hidden_size,
                                                   ", and head_dim is not given"));
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) {
    if (f.has("head_dim")) f.fail("head_dim", "must be even for rotary embeddings");
    f.fail("num_attention_heads", detail::concat("gives an odd head_dim = hidden_size / num_attention_heads = ",
                                                 c.head_dim, "; rotary embeddings need an even one"));
  }

  c.max_position_embeddings =
      f.get_int_in("max_position_embeddings", 1, kMaxInt).value_or(fam.default_max_position_embeddings);
  c.rms_norm_eps = positive_number(f, "rms_norm_eps", 1e-6);
  c.hidden_act = f.get_string("hidden_act").value_or("silu");
  if (c.hidden_act != "silu") f.fail("hidden_act", "unsupported activation (supported: silu)");
  c.tie_word_embeddings = f.get_bool("tie_word_embeddings").value_or(false);
  c.dtype = parse_dtype(f);
  if (auto b = f.get_int("bos_token_id")) c.bos_token_id = token_id(f, "bos_token_id", *b);
  c.eos_token_ids = token_ids(f, "eos_token_id");

  c.qk_norm = fam.qk_norm;
  if (fam.attention_bias) {
    const bool bias = f.get_bool("attention_bias").value_or(false);
    c.qkv_bias = bias;
    c.o_bias = bias;
  } else {
    // Qwen2 hard-codes bias=True on q/k/v and none on o; Qwen2-MoE reads qkv_bias (default true).
    c.qkv_bias = fam.moe ? f.get_bool("qkv_bias").value_or(true) : true;
    c.o_bias = false;
  }
  if (c.model_type == "llama" && f.get_bool("mlp_bias").value_or(false))
    f.fail("mlp_bias", "biases on the MLP projections are not supported (only false)");

  parse_rope(f, c);
  parse_layers(f, c);
  if (fam.moe) parse_moe(f, fam, c);
  return c;
}

ModelConfig ModelConfig::load(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  TLLM_CHECK_ARG(file_exists(path), "no config.json in ", model_dir, " (looked for ", path, ")");
  return from_json_text(read_file(path), path);
}

GenerationConfig GenerationConfig::from_json_text(const std::string& text, const std::string& source) {
  const json j = parse_json(text, source);
  const JsonFields f(j, source);
  GenerationConfig g;
  g.eos_token_ids = token_ids(f, "eos_token_id");
  if (auto v = f.get_int("bos_token_id")) g.bos_token_id = token_id(f, "bos_token_id", *v);
  if (auto v = f.get_int("pad_token_id")) g.pad_token_id = token_id(f, "pad_token_id", *v);
  g.do_sample = f.get_bool("do_sample").value_or(false);
  if (auto v = f.get_number("temperature")) {
    // Stored as a float: 1e308 would become inf and fail later without the file's name.
    if (!std::isfinite(*v) || *v < 0 || *v > 1e30) f.fail("temperature", "must be in [0, 1e30]");
    g.temperature = *v;
  }
  if (auto v = f.get_number("top_p")) {
    if (!(*v > 0 && *v <= 1)) f.fail("top_p", "must be in (0, 1]");
    g.top_p = *v;
  }
  if (auto v = f.get_int_in("top_k", 0, kMaxInt)) g.top_k = *v;
  if (auto v = f.get_number("min_p")) {
    if (!(*v >= 0 && *v <= 1)) f.fail("min_p", "must be in [0, 1]");
    g.min_p = *v;
  }
  if (auto v = f.get_number("repetition_penalty")) {
    if (!std::isfinite(*v) || *v <= 0 || *v > 1e30) f.fail("repetition_penalty", "must be in (0, 1e30]");
    g.repetition_penalty = *v;
  }
  if (auto v = f.get_int_in("max_new_tokens", 1, kMaxInt)) g.max_new_tokens = *v;
  return g;
}

GenerationConfig GenerationConfig::load(const std::string& model_dir) {
  const std::string path = model_dir + "/generation_config.json";
  if (!file_exists(path)) return GenerationConfig{};
  return from_json_text(read_file(path), path);
}

GenerationConfig GenerationConfig::load(const std::string& model_dir, const std::string& source) {
  GenerationConfig model = load(model_dir);
  if (source == "auto") return model;
  GenerationConfig out;
  out.eos_token_ids = model.eos_token_ids;
  out.bos_token_id = model.bos_token_id;
  out.pad_token_id = model.pad_token_id;
  if (source == "vllm") {
    out.do_sample = true;  // vLLM's defaults sample (temperature 1), for `tinyllm generate` too
    return out;
  }
  const std::string path = source + "/generation_config.json";
  TLLM_CHECK_ARG(file_exists(path), "--generation-config \"", source,
                 "\": expected \"auto\", \"vllm\" or a folder with a generation_config.json, and ", path,
                 " does not exist");
  GenerationConfig folder = from_json_text(read_file(path), path);
  for (int id : folder.eos_token_ids)
    if (std::find(out.eos_token_ids.begin(), out.eos_token_ids.end(), id) == out.eos_token_ids.end())
      out.eos_token_ids.push_back(id);
  folder.eos_token_ids = out.eos_token_ids;
  folder.bos_token_id = folder.bos_token_id ? folder.bos_token_id : out.bos_token_id;
  folder.pad_token_id = folder.pad_token_id ? folder.pad_token_id : out.pad_token_id;
  return folder;
}

ModelConfig ModelConfig::shard(int n) const {
  TLLM_CHECK_ARG(n >= 1, "tensor parallel size must be >= 1, got ", n);
  ModelConfig c = *this;
  if (n == 1) return c;
  auto divide = [&](int v, const char* field) {
    TLLM_CHECK_ARG(v % n == 0, architecture, ": ", field, " ", v, " is not divisible by the tensor parallel size ", n);
    return v / n;
  };
  c.num_heads = divide(num_heads, "num_attention_heads");
  if (num_kv_heads % n == 0) {
    c.num_kv_heads = num_kv_heads / n;
  } else {
    TLLM_CHECK_ARG(n % num_kv_heads == 0, architecture, ": num_key_value_heads ", num_kv_heads,
                   " neither divides nor is a multiple of the tensor parallel size ", n);
    c.num_kv_heads = 1;
  }
  bool dense_mlp = !is_moe();
  for (int l = 0; l < num_layers && !dense_mlp; ++l) dense_mlp = !layer_is_moe(l);
  if (dense_mlp) c.intermediate_size = divide(intermediate_size, "intermediate_size");
  if (is_moe()) {
    c.moe_intermediate_size = divide(moe_intermediate_size, "moe_intermediate_size");
    c.shared_expert_intermediate_size = divide(shared_expert_intermediate_size, "shared_expert_intermediate_size");
  }
  return c;
}

}  // namespace tllm
