#include "io/gguf_model.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/logging.h"
#include "io/gguf.h"

namespace tllm {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Bumped when what this file writes changes, so that older folders are written again.
constexpr int kFormatVersion = 2;

// llama.cpp token types (tokenizer.ggml.token_type).
enum { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// The byte-level pre-tokenizer regexes by tokenizer.ggml.pre (those of the hub tokenizers
// llama.cpp's converter names so).
struct PreTokenizer {
  const char* regex;
  bool nfc;            // Qwen2's tokenizer.json normalizes to NFC
  bool ignore_merges;  // Llama 3's BPE takes whole-word vocabulary entries first
};

const PreTokenizer* pre_tokenizer(const std::string& pre) {
  static const PreTokenizer qwen2{
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
      true, false};
  static const PreTokenizer llama3{
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
      false, true};
  static const PreTokenizer gpt2{R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", false,
                                 false};
  if (pre == "qwen2") return &qwen2;
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") return &llama3;
  if (pre == "gpt-2" || pre == "gpt2") return &gpt2;
  return nullptr;
}

int64_t int_or(const GgufFile& g, const std::string& key, int64_t fallback) {
  return g.has(key) ? g.get_int(key) : fallback;
}

void write_json(const fs::path& p, const json& j) {
  std::ofstream out(p, std::ios::trunc);
  out << j.dump(2) << "\n";
  TLLM_CHECK(out.good(), "cannot write ", p.string());
}

// Llama 3.1's rope_freqs (the divisor of each rotary frequency) as config.json's llama3
// rope_scaling, where they are of that form with Meta's low / high factors and context.
json llama3_scaling(const GgufFile& g, const std::string& path, int head_dim, double theta) {
  const Tensor f = g.tensor_floats("rope_freqs.weight");
  TLLM_CHECK_ARG(f.dtype() == DType::F32 && f.numel() == head_dim / 2, path, ": rope_freqs.weight has ", f.numel(),
                 " values, expected ", head_dim / 2, " (f32)");
  const float* v = f.data<float>();
  const double factor = *std::max_element(v, v + f.numel());
  const double low = 1.0, high = 4.0;  // Meta's, in every Llama 3.1 / 3.2 / 3.3 release
  // The original context: a dimension between the regimes gives it (its blend weight is
  // (orig / wavelength - low) / (high - low)); else the key, else Llama 3.1's 8192.
  double orig = g.has("llama.rope.scaling.original_context_length")
                    ? static_cast<double>(g.get_int("llama.rope.scaling.original_context_length"))
                    : 8192.0;
  for (int i = 0; i < head_dim / 2; ++i) {
    if (v[i] <= 1.0 + 1e-4 || v[i] >= factor * (1 - 1e-4)) continue;
    const double wavelen = 2 * M_PI * std::pow(theta, 2.0 * i / head_dim);
    const double smooth = (1.0 / v[i] - 1.0 / factor) / (1.0 - 1.0 / factor);
    orig = std::round(wavelen * (low + smooth * (high - low)));
    break;
  }
  for (int i = 0; i < head_dim / 2; ++i) {
    const double freq = 1.0 / std::pow(theta, 2.0 * i / head_dim);
    const double wavelen = 2 * M_PI / freq;
    double expect = 1.0;
    if (wavelen > orig / low) {
      expect = factor;
    } else if (wavelen >= orig / high) {
      const double smooth = (orig / wavelen - low) / (high - low);
      expect = freq / ((1 - smooth) * freq / factor + smooth * freq);
    }
    TLLM_CHECK_ARG(std::abs(v[i] - expect) <= 1e-3 * expect, path, ": rope_freqs.weight[", i, "] is ", v[i],
                   "; tinyllm reads Llama 3.1's form (factor ", factor, ", low 1, high 4, context ", orig, "), which gives ",
                   expect);
  }
  return {{"rope_type", "llama3"},
          {"factor", factor},
          {"low_freq_factor", low},
          {"high_freq_factor", high},
          {"original_max_position_embeddings", static_cast<int>(orig)}};
}

json make_config(const GgufFile& g, const std::string& path, const std::string& arch, json& tensor_map) {
  const std::string k = arch + ".";
  const int64_t layers = g.get_int(k + "block_count");
  const int64_t hidden = g.get_int(k + "embedding_length");
  const int64_t heads = g.get_int(k + "attention.head_count");
  const int64_t kv_heads = int_or(g, k + "attention.head_count_kv", heads);
  TLLM_CHECK_ARG(layers > 0 && layers < 100000 && hidden > 0 && heads > 0 && kv_heads > 0 && hidden % heads == 0,
                 path, ": block_count ", layers, ", embedding_length ", hidden, ", head_count ", heads,
                 ", head_count_kv ", kv_heads, " do not describe a model");
  const int64_t head_dim = int_or(g, k + "attention.key_length", hidden / heads);
  TLLM_CHECK_ARG(int_or(g, k + "attention.value_length", head_dim) == head_dim, path, ": ", k,
                 "attention.value_length differs from key_length, which these architectures do not have");
  TLLM_CHECK_ARG(int_or(g, k + "rope.dimension_count", head_dim) == head_dim, path, ": ", k,
                 "rope.dimension_count ", g.get_int(k + "rope.dimension_count"), " rotates part of a head of ",
                 head_dim, "; tinyllm's ", arch, " rotates whole heads");
  TLLM_CHECK_ARG(g.has_tensor("token_embd.weight"), path, ": no token_embd.weight tensor");
  const auto& embd = g.tensor("token_embd.weight");
  TLLM_CHECK_ARG(embd.shape.size() == 2 && embd.shape[1] == hidden, path, ": token_embd.weight is not [vocab, ",
                 hidden, "]");
  const double theta = g.has(k + "rope.freq_base") ? g.get_float(k + "rope.freq_base") : 10000.0;

  static const std::map<std::string, std::pair<const char*, const char*>> names = {
      {"qwen2", {"Qwen2ForCausalLM", "qwen2"}},
      {"qwen3", {"Qwen3ForCausalLM", "qwen3"}},
      {"llama", {"LlamaForCausalLM", "llama"}},
      {"qwen2moe", {"Qwen2MoeForCausalLM", "qwen2_moe"}},
      {"qwen3moe", {"Qwen3MoeForCausalLM", "qwen3_moe"}}};
  const bool moe = arch == "qwen2moe" || arch == "qwen3moe";
  json c = {{"architectures", {names.at(arch).first}},
            {"model_type", names.at(arch).second},
            {"vocab_size", embd.shape[0]},
            {"hidden_size", hidden},
            {"intermediate_size", moe ? int_or(g, k + "feed_forward_length", g.get_int(k + "expert_feed_forward_length"))
                                      : g.get_int(k + "feed_forward_length")},
            {"num_hidden_layers", layers},
            {"num_attention_heads", heads},
            {"num_key_value_heads", kv_heads},
            {"head_dim", head_dim},
            {"max_position_embeddings", g.get_int(k + "context_length")},
            {"rms_norm_eps", g.get_float(k + "attention.layer_norm_rms_epsilon")},
            {"rope_theta", theta},
            {"hidden_act", "silu"},
            {"tie_word_embeddings", !g.has_tensor("output.weight")}};
  const uint32_t et = embd.type;
  c["torch_dtype"] = et == 0 ? "float32" : et == 1 ? "float16" : "bfloat16";
  if (arch != "qwen2" && arch != "qwen2moe") c["attention_bias"] = g.has_tensor("blk.0.attn_q.bias");
  // Mixture of experts: every layer whose blocks hold stacked experts (ffn_*_exps, [E, rows,
  // cols]) is sparse, the others dense (HF's mlp_only_layers); llama.cpp's qwen3moe
  // renormalizes the top-k weights, its qwen2moe does not.
  std::vector<int64_t> dense_layers;
  if (moe) {
    const int64_t experts = g.get_int(k + "expert_count"), used = g.get_int(k + "expert_used_count");
    TLLM_CHECK_ARG(experts > 0 && experts <= 4096 && used > 0 && used <= experts, path, ": ", k, "expert_count ",
                   experts, " and expert_used_count ", used, " do not describe a mixture of experts");
    c["num_experts"] = experts;
    c["num_experts_per_tok"] = used;
    c["moe_intermediate_size"] = g.get_int(k + "expert_feed_forward_length");
    c["norm_topk_prob"] = arch == "qwen3moe";
    c["decoder_sparse_step"] = 1;
    if (arch == "qwen2moe")
      c["shared_expert_intermediate_size"] = int_or(g, k + "expert_shared_feed_forward_length", 0);
    for (int64_t l = 0; l < layers; ++l)
      if (!g.has_tensor("blk." + std::to_string(l) + ".ffn_gate_exps.weight")) dense_layers.push_back(l);
    c["mlp_only_layers"] = dense_layers;
  }
  if (g.has_tensor("rope_freqs.weight")) {
    TLLM_CHECK_ARG(arch == "llama", path, ": rope_freqs.weight in a ", arch, " model");
    c["rope_scaling"] = llama3_scaling(g, path, static_cast<int>(head_dim), theta);
  } else if (g.has(k + "rope.scaling.type")) {
    const std::string type = g.get_string(k + "rope.scaling.type");
    if (type == "linear" || type == "yarn") {
      json s = {{"rope_type", type}, {"factor", g.get_float(k + "rope.scaling.factor")}};
      if (type == "yarn" && g.has(k + "rope.scaling.original_context_length"))
        s["original_max_position_embeddings"] = g.get_int(k + "rope.scaling.original_context_length");
      c["rope_scaling"] = s;
    } else {
      TLLM_CHECK_ARG(type == "none", path, ": ", k, "rope.scaling.type \"", type,
                     "\" is not supported (supported: none, linear, yarn)");
    }
  }

  // HF name -> GGUF name (and the heads whose q / k rows llama.cpp's converter reordered).
  auto map = [&](const std::string& hf, const std::string& gg, int64_t permute = 0) {
    tensor_map[hf] = {{"name", gg}, {"permute_heads", permute}};
  };
  // Expert e of a stacked [E, rows, cols] tensor as a [rows, cols] one.
  auto map_slice = [&](const std::string& hf, const std::string& gg, int64_t e) {
    tensor_map[hf] = {{"name", gg}, {"slice", e}};
  };
  map("model.embed_tokens.weight", "token_embd.weight");
  map("model.norm.weight", "output_norm.weight");
  if (g.has_tensor("output.weight")) map("lm_head.weight", "output.weight");
  const bool llama = arch == "llama";
  for (int64_t l = 0; l < layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".", p = "model.layers." + std::to_string(l) + ".";
    map(p + "input_layernorm.weight", b + "attn_norm.weight");
    map(p + "post_attention_layernorm.weight", b + "ffn_norm.weight");
    for (const char* s : {"weight", "bias"}) {
      const std::string sfx = std::string(".") + s;
      map(p + "self_attn.q_proj" + sfx, b + "attn_q" + sfx, llama ? heads : 0);
      map(p + "self_attn.k_proj" + sfx, b + "attn_k" + sfx, llama ? kv_heads : 0);
      map(p + "self_attn.v_proj" + sfx, b + "attn_v" + sfx);
      map(p + "self_attn.o_proj" + sfx, b + "attn_output" + sfx);
    }
    map(p + "self_attn.q_norm.weight", b + "attn_q_norm.weight");
    map(p + "self_attn.k_norm.weight", b + "attn_k_norm.weight");
    map(p + "mlp.gate_proj.weight", b + "ffn_gate.weight");
    map(p + "mlp.up_proj.weight", b + "ffn_up.weight");
    map(p + "mlp.down_proj.weight", b + "ffn_down.weight");
    if (moe && g.has_tensor(b + "ffn_gate_exps.weight")) {
      const int64_t experts = c["num_experts"].get<int64_t>();
      map(p + "mlp.gate.weight", b + "ffn_gate_inp.weight");
      for (const char* part : {"gate", "up", "down"}) {
        const std::string gg = b + "ffn_" + part + "_exps.weight";
        TLLM_CHECK_ARG(g.has_tensor(gg) && g.tensor(gg).shape.size() == 3 && g.tensor(gg).shape[0] == experts, path,
                       ": ", gg, " is not [", experts, ", rows, cols] (the layer's stacked experts)");
        for (int64_t e = 0; e < experts; ++e)
          map_slice(p + "mlp.experts." + std::to_string(e) + "." + part + "_proj.weight", gg, e);
      }
      map(p + "mlp.shared_expert.gate_proj.weight", b + "ffn_gate_shexp.weight");
      map(p + "mlp.shared_expert.up_proj.weight", b + "ffn_up_shexp.weight");
      map(p + "mlp.shared_expert.down_proj.weight", b + "ffn_down_shexp.weight");
      map(p + "mlp.shared_expert_gate.weight", b + "ffn_gate_inp_shexp.weight");
      if (g.has_tensor(b + "ffn_gate_inp_shexp.weight"))  // [hidden] in the file, [1, hidden] in HF's
        tensor_map[p + "mlp.shared_expert_gate.weight"]["shape"] = {1, hidden};
    }
  }
  // Keep only what the file holds; everything it holds must be mapped.
  std::set<std::string> mapped;
  for (auto it = tensor_map.begin(); it != tensor_map.end();) {
    const std::string gg = (*it)["name"];
    if (!g.has_tensor(gg)) {
      it = tensor_map.erase(it);
    } else {
      mapped.insert(gg);
      ++it;
    }
  }
  for (const auto& [name, info] : g.tensors())
    TLLM_CHECK_ARG(mapped.count(name) || name == "rope_freqs.weight", path, ": tensor \"", name,
                   "\" has no place in tinyllm's ", arch, " model (", ggml_type_name(info.type), ")");
  return c;
}

// add_bos_token as Llama 3's tokenizer.json has it: a template that puts BOS first.
json post_processor(const GgufFile& g, const std::vector<std::string>& tokens) {
  if (!g.has("tokenizer.ggml.add_bos_token") || !g.get_bool("tokenizer.ggml.add_bos_token")) return nullptr;
  const int64_t id = g.get_int("tokenizer.ggml.bos_token_id");
  TLLM_CHECK_ARG(id >= 0 && id < static_cast<int64_t>(tokens.size()), g.path(),
                 ": tokenizer.ggml.add_bos_token is true and tokenizer.ggml.bos_token_id ", id, " is not a token");
  const std::string& bos = tokens[id];
  const json b = {{"SpecialToken", {{"id", bos}, {"type_id", 0}}}};
  return {{"type", "TemplateProcessing"},
          {"single", {b, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
          {"pair", {b, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, b, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
          {"special_tokens", {{bos, {{"id", bos}, {"ids", {id}}, {"tokens", {bos}}}}}}};
}

void make_tokenizer(const GgufFile& g, const std::string& path, int64_t context, const fs::path& out) {
  const std::string model = g.get_string("tokenizer.ggml.model");
  TLLM_CHECK_ARG(model == "gpt2", path, ": tokenizer.ggml.model \"", model,
                 "\" is not supported (supported: gpt2, the byte-level BPE of Qwen and Llama 3)");
  const std::string pre_name = g.has("tokenizer.ggml.pre") ? g.get_string("tokenizer.ggml.pre") : "gpt-2";
  const PreTokenizer* pre = pre_tokenizer(pre_name);
  TLLM_CHECK_ARG(pre, path, ": tokenizer.ggml.pre \"", pre_name,
                 "\" is not supported (supported: qwen2, llama-bpe, gpt-2)");
  const std::vector<std::string> tokens = g.get_strings("tokenizer.ggml.tokens");
  std::vector<int64_t> types(tokens.size(), kNormal);
  if (g.has("tokenizer.ggml.token_type")) {
    types = g.get_ints("tokenizer.ggml.token_type");
    TLLM_CHECK_ARG(types.size() == tokens.size(), path, ": tokenizer.ggml.token_type has ", types.size(),
                   " entries for ", tokens.size(), " tokens");
  }
  json vocab = json::object(), added = json::array();
  for (size_t id = 0; id < tokens.size(); ++id) {
    const int64_t t = types[id];
    if (t == kUnused) continue;
    if (t == kControl || t == kUserDefined || t == kUnknown) {
      added.push_back({{"id", id},
                       {"content", tokens[id]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", t != kUserDefined}});
      continue;
    }
    TLLM_CHECK_ARG(t == kNormal, path, ": token ", id, " has type ", t,
                   " (byte tokens belong to SentencePiece vocabularies, not byte-level BPE)");
    TLLM_CHECK_ARG(vocab.emplace(tokens[id], id).second, path, ": token \"", tokens[id], "\" appears twice (id ", id,
                   ")");
  }
  json pretok = {{"type", "Sequence"},
                 {"pretokenizers",
                  {{{"type", "Split"}, {"pattern", {{"Regex", pre->regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                   {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}}}};
  json tok = {{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", added},
              {"normalizer", pre->nfc ? json{{"type", "NFC"}} : json(nullptr)},
              {"pre_tokenizer", pretok},
              {"post_processor", post_processor(g, tokens)},
              {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", pre->ignore_merges},
                {"vocab", vocab},
                {"merges", g.has("tokenizer.ggml.merges") ? json(g.get_strings("tokenizer.ggml.merges")) : json::array()}}}};
  write_json(out / "tokenizer.json", tok);

  auto token_of = [&](const char* key) -> json {
    if (!g.has(key)) return nullptr;
    const int64_t id = g.get_int(key);
    TLLM_CHECK_ARG(id >= 0 && id < static_cast<int64_t>(tokens.size()), path, ": ", key, " ", id,
                   " is not a token id (", tokens.size(), " tokens)");
    return tokens[id];
  };
  json tc = {{"bos_token", token_of("tokenizer.ggml.bos_token_id")},
             {"eos_token", token_of("tokenizer.ggml.eos_token_id")},
             {"pad_token", token_of("tokenizer.ggml.padding_token_id")},
             {"add_bos_token", g.has("tokenizer.ggml.add_bos_token") && g.get_bool("tokenizer.ggml.add_bos_token")},
             {"model_max_length", context}};
  if (g.has("tokenizer.chat_template")) tc["chat_template"] = g.get_string("tokenizer.chat_template");
  write_json(out / "tokenizer_config.json", tc);

  json gen = json::object();
  std::vector<int64_t> eos;
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    if (!g.has(key)) continue;
    token_of(key);  // checks the id
    const int64_t id = g.get_int(key);
    if (std::find(eos.begin(), eos.end(), id) == eos.end()) eos.push_back(id);
  }
  if (!eos.empty()) gen["eos_token_id"] = eos;
  if (g.has("tokenizer.ggml.bos_token_id")) gen["bos_token_id"] = g.get_int("tokenizer.ggml.bos_token_id");
  write_json(out / "generation_config.json", gen);
}

std::string default_cache_root() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/tinyllm/gguf";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.cache/tinyllm/gguf";
}

}  // namespace

bool is_gguf_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::string(magic, 4) == "GGUF";
}

std::string materialize_gguf(const std::string& gguf_path, const std::string& cache_root) {
  const fs::path src = fs::absolute(gguf_path).lexically_normal();
  std::error_code ec;
  const auto size = fs::file_size(src, ec);
  TLLM_CHECK_ARG(!ec, gguf_path, ": ", ec.message());
  const auto mtime = fs::last_write_time(src, ec).time_since_epoch().count();
  const std::string key = src.string() + "|" + std::to_string(size) + "|" + std::to_string(mtime) + "|" +
                          std::to_string(kFormatVersion);
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016zx", std::hash<std::string>{}(key));
  const fs::path root = cache_root.empty() ? fs::path(default_cache_root()) : fs::path(cache_root);
  const fs::path dir = root / (src.stem().string() + "-" + hex);
  if (fs::exists(dir / "gguf_tensors.json", ec)) return dir.string();

  const std::shared_ptr<GgufFile> g = GgufFile::open(src.string());
  const std::string path = src.string();
  const std::string arch = g->get_string("general.architecture");
  TLLM_CHECK_ARG(arch == "qwen2" || arch == "qwen3" || arch == "llama" || arch == "qwen2moe" || arch == "qwen3moe",
                 path, ": general.architecture \"", arch,
                 "\" is not supported from GGUF (supported: qwen2, qwen3, llama, qwen2moe, qwen3moe)");
  const fs::path tmp = root / (dir.filename().string() + ".tmp" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp);
  try {
    json tensor_map = json::object();
    const json config = make_config(*g, path, arch, tensor_map);
    write_json(tmp / "config.json", config);
    if (g->has("tokenizer.ggml.model"))
      make_tokenizer(*g, path, config["max_position_embeddings"].get<int64_t>(), tmp);
    else
      TLLM_LOG(Warn, "gguf: ", path, " holds no tokenizer (tokenizer.ggml.*): token ids only");
    write_json(tmp / "gguf_tensors.json",
               {{"gguf", "model.gguf"}, {"tensors", tensor_map}});
    fs::create_symlink(src, tmp / "model.gguf");
    fs::rename(tmp, dir, ec);
    if (ec && !fs::exists(dir / "gguf_tensors.json")) throw fs::filesystem_error("rename", tmp, dir, ec);
    fs::remove_all(tmp, ec);  // another process wrote it first
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  TLLM_LOG(Info, "gguf: ", path, " (", arch, ") as the model folder ", dir.string());
  return dir.string();
}

}  // namespace tllm
