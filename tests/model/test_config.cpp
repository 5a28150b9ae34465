#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/config.h"
#include "../io/test_helpers.h"  // expect_error_with

using namespace tllm;
using nlohmann::json;
using tllm::testing::expect_error_with;

namespace {

// A Qwen2.5-0.5B-like config.json (as on the hub), small enough to edit per test.
json qwen2_base() {
  return json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
    "vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864,
    "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
    "max_position_embeddings": 32768, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "hidden_act": "silu", "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "use_sliding_window": false, "sliding_window": 32768, "max_window_layers": 21,
    "rope_scaling": null, "bos_token_id": 151643, "eos_token_id": 151643, "attention_dropout": 0.0,
    "use_cache": true, "transformers_version": "4.43.1"
  })");
}

json qwen3_base() {
  json j = qwen2_base();
  j["architectures"] = {"Qwen3ForCausalLM"};
  j["model_type"] = "qwen3";
  j["hidden_size"] = 1024;
  j["num_attention_heads"] = 16;
  j["num_key_value_heads"] = 8;
  j["head_dim"] = 128;
  j["attention_bias"] = false;
  j["max_position_embeddings"] = 40960;
  j["eos_token_id"] = 151645;
  return j;
}

json moe_base(const char* arch) {
  json j = std::string(arch) == "Qwen3MoeForCausalLM" ? qwen3_base() : qwen2_base();
  j["architectures"] = {arch};
  j["model_type"] = std::string(arch) == "Qwen3MoeForCausalLM" ? "qwen3_moe" : "qwen2_moe";
  j["num_hidden_layers"] = 4;
  j["num_experts"] = 60;
  j["num_experts_per_tok"] = 4;
  j["moe_intermediate_size"] = 1408;
  if (std::string(arch) == "Qwen2MoeForCausalLM") j["shared_expert_intermediate_size"] = 5632;
  return j;
}

// Llama-3.1-8B-Instruct's config.json as on the hub.
json llama31_base() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
    "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256
  })");
}

ModelConfig parse(const json& j) { return ModelConfig::from_json_text(j.dump(), "test/config.json"); }

// Parses `j` with `key` set to `value` (or erased when value is the string "<erase>").
ModelConfig parse_with(json j, const std::string& key, const json& value) {
  if (value.is_string() && value.get<std::string>() == "<erase>")
    j.erase(key);
  else
    j[key] = value;
  return parse(j);
}

std::string data_dir() { return std::string(TLLM_SOURCE_DIR) + "/tests/data/models"; }

}  // namespace

TEST(ModelConfig, Qwen2HubConfig) {
  ModelConfig c = parse(qwen2_base());
  EXPECT_EQ(c.architecture, "Qwen2ForCausalLM");
  EXPECT_EQ(c.model_type, "qwen2");
  EXPECT_EQ(c.vocab_size, 151936);
  EXPECT_EQ(c.hidden_size, 896);
  EXPECT_EQ(c.intermediate_size, 4864);
  EXPECT_EQ(c.num_layers, 24);
  EXPECT_EQ(c.num_heads, 14);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.kv_groups(), 7);
  EXPECT_EQ(c.q_size(), 896);
  EXPECT_EQ(c.kv_size(), 128);
  EXPECT_EQ(c.max_position_embeddings, 32768);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.rope_scaling.type, RopeType::Default);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.dtype, DType::BF16);
  EXPECT_EQ(c.layer_sliding_window, std::vector<int>(24, 0));
  EXPECT_EQ(c.bos_token_id, 151643);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{151643});
  EXPECT_FALSE(c.is_moe());
  EXPECT_FALSE(c.layer_is_moe(0));
}

TEST(ModelConfig, Qwen3Fields) {
  ModelConfig c = parse(qwen3_base());
  EXPECT_EQ(c.model_type, "qwen3");
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.q_size(), 2048);  // head_dim * heads need not equal hidden_size
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  ModelConfig b = parse_with(qwen3_base(), "attention_bias", true);
  EXPECT_TRUE(b.qkv_bias);
  EXPECT_TRUE(b.o_bias);
  // Qwen3Config defaults head_dim to 128, not hidden_size / num_attention_heads.
  EXPECT_EQ(parse_with(qwen3_base(), "head_dim", "<erase>").head_dim, 128);
  EXPECT_EQ(parse_with(qwen3_base(), "head_dim", nullptr).head_dim, 128);
  // Qwen2 hard-codes its biases whatever attention_bias says.
  ModelConfig q2 = parse_with(qwen2_base(), "attention_bias", false);
  EXPECT_TRUE(q2.qkv_bias);
  EXPECT_FALSE(q2.o_bias);
  // Qwen2 with an explicit head_dim.
  EXPECT_EQ(parse_with(qwen2_base(), "head_dim", 32).head_dim, 32);
}

TEST(ModelConfig, LlamaFields) {
  ModelConfig c = parse(llama31_base());
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.kv_groups(), 4);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.is_moe());
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 5e5);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_EQ(c.rope_scaling.type, RopeType::Llama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{128001, 128008, 128009}));
  EXPECT_EQ(c.layer_sliding_window, std::vector<int>(32, 0));
  // attention_bias puts biases on q, k, v and o, as LlamaAttention does.
  ModelConfig b = parse_with(llama31_base(), "attention_bias", true);
  EXPECT_TRUE(b.qkv_bias);
  EXPECT_TRUE(b.o_bias);
  // LlamaConfig's defaults: 2048 positions, head_dim = hidden / heads, no RoPE scaling.
  json bare = llama31_base();
  for (const char* k : {"max_position_embeddings", "rope_scaling", "rope_theta", "attention_bias", "mlp_bias"})
    bare.erase(k);
  ModelConfig d = parse(bare);
  EXPECT_EQ(d.max_position_embeddings, 2048);
  EXPECT_EQ(d.rope_scaling.type, RopeType::Default);
  EXPECT_DOUBLE_EQ(d.rope_theta, 1e4);
  EXPECT_FALSE(d.qkv_bias);
  // The 5.x spelling, and original_max_position_embeddings at the top level.
  json v5 = llama31_base();
  json params = v5["rope_scaling"];
  params["rope_theta"] = 500000.0;
  params.erase("original_max_position_embeddings");
  v5.erase("rope_scaling");
  v5["rope_parameters"] = params;
  v5["original_max_position_embeddings"] = 8192;
  ModelConfig n = parse(v5);
  EXPECT_EQ(n.rope_scaling.type, RopeType::Llama3);
  EXPECT_EQ(n.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(n.rope_theta, 5e5);
  // Llama 3.2's 1B: tied embeddings, factor 32, head_dim 64.
  json l32 = llama31_base();
  l32["hidden_size"] = 2048;
  l32["num_hidden_layers"] = 16;
  l32["intermediate_size"] = 8192;
  l32["head_dim"] = 64;
  l32["tie_word_embeddings"] = true;
  l32["rope_scaling"]["factor"] = 32.0;
  ModelConfig t = parse(l32);
  EXPECT_TRUE(t.tie_word_embeddings);
  EXPECT_EQ(t.head_dim, 64);
  EXPECT_DOUBLE_EQ(t.rope_scaling.factor, 32.0);
}

TEST(ModelConfig, DtypeAndTokenSpellings) {
  json j = qwen2_base();
  j.erase("torch_dtype");
  j["dtype"] = "float16";
  EXPECT_EQ(parse(j).dtype, DType::F16);
  j["torch_dtype"] = "float16";
  EXPECT_EQ(parse(j).dtype, DType::F16);
  EXPECT_EQ(parse_with(qwen2_base(), "torch_dtype", "float32").dtype, DType::F32);
  EXPECT_EQ(parse_with(qwen2_base(), "torch_dtype", "<erase>").dtype, DType::BF16);

  EXPECT_EQ(parse_with(qwen2_base(), "eos_token_id", json::array({151645, 151643})).eos_token_ids,
            (std::vector<int>{151645, 151643}));
  EXPECT_TRUE(parse_with(qwen2_base(), "eos_token_id", nullptr).eos_token_ids.empty());
  EXPECT_FALSE(parse_with(qwen2_base(), "bos_token_id", nullptr).bos_token_id.has_value());
  EXPECT_FALSE(parse_with(qwen2_base(), "tie_word_embeddings", "<erase>").tie_word_embeddings);
  // "num_key_value_heads": null means multi-head attention.
  EXPECT_EQ(parse_with(qwen2_base(), "num_key_value_heads", nullptr).num_kv_heads, 14);
  // Optional fields take transformers' class defaults.
  json d = qwen2_base();
  for (const char* k : {"max_position_embeddings", "rms_norm_eps", "rope_theta", "hidden_act", "use_sliding_window",
                        "sliding_window", "max_window_layers", "rope_scaling", "model_type"})
    d.erase(k);
  ModelConfig c = parse(d);
  EXPECT_EQ(c.max_position_embeddings, 32768);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.hidden_act, "silu");
  // Integral floats are accepted for integer fields.
  EXPECT_EQ(parse_with(qwen2_base(), "max_position_embeddings", 4096.0).max_position_embeddings, 4096);
}

TEST(ModelConfig, RopeSpellings) {
  // Classic: rope_theta + rope_scaling with "type".
  ModelConfig c = parse_with(qwen2_base(), "rope_scaling", json{{"type", "linear"}, {"factor", 4.0}});
  EXPECT_EQ(c.rope_scaling.type, RopeType::Linear);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 4.0);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  // rope_scaling with "rope_type"; both spellings agreeing is fine.
  EXPECT_EQ(parse_with(qwen2_base(), "rope_scaling", json{{"rope_type", "dynamic"}, {"factor", 2}}).rope_scaling.type,
            RopeType::Dynamic);
  EXPECT_EQ(parse_with(qwen2_base(), "rope_scaling", json{{"rope_type", "linear"}, {"type", "linear"}, {"factor", 2}})
                .rope_scaling.type,
            RopeType::Linear);
  // transformers 5.x: rope_parameters carries the theta too, and it wins.
  json j = qwen2_base();
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 5e5}};
  c = parse(j);
  EXPECT_EQ(c.rope_scaling.type, RopeType::Default);
  EXPECT_DOUBLE_EQ(c.rope_theta, 5e5);
  j.erase("rope_theta");
  EXPECT_DOUBLE_EQ(parse(j).rope_theta, 5e5);
  // rope_parameters without a theta uses the top-level one.
  EXPECT_DOUBLE_EQ(parse_with(qwen2_base(), "rope_parameters", json{{"rope_type", "default"}}).rope_theta, 1e6);
  // Both given and identical: fine.
  json both = qwen2_base();
  both["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  both["rope_parameters"] = both["rope_scaling"];
  EXPECT_EQ(parse(both).rope_scaling.type, RopeType::Linear);
  // Empty dict and null both mean default.
  EXPECT_EQ(parse_with(qwen2_base(), "rope_scaling", json::object()).rope_scaling.type, RopeType::Default);
  EXPECT_EQ(parse_with(qwen2_base(), "rope_scaling", nullptr).rope_scaling.type, RopeType::Default);
  // partial_rotary_factor 1.0 is a no-op.
  EXPECT_EQ(parse_with(qwen2_base(), "partial_rotary_factor", 1.0).head_dim, 64);
}

TEST(ModelConfig, YarnAndDynamicParameters) {
  // Qwen2.5 / Qwen3 long-context recipe.
  ModelConfig y = parse_with(qwen3_base(), "rope_scaling",
                             json{{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}});
  const RopeScaling& s = y.rope_scaling;
  EXPECT_EQ(s.type, RopeType::Yarn);
  EXPECT_DOUBLE_EQ(s.factor, 4.0);  // the explicit factor, not 40960 / 32768
  EXPECT_EQ(s.original_max_position_embeddings, 32768);
  EXPECT_DOUBLE_EQ(s.beta_fast, 32.0);
  EXPECT_DOUBLE_EQ(s.beta_slow, 1.0);
  EXPECT_FALSE(s.attention_factor.has_value());
  EXPECT_TRUE(s.truncate);

  ModelConfig full = parse_with(qwen2_base(), "rope_scaling",
                                json{{"type", "yarn"}, {"factor", 40}, {"attention_factor", 1.5}, {"beta_fast", 16},
                                     {"beta_slow", 2}, {"mscale", 0.707}, {"mscale_all_dim", 0.707}, {"truncate", false}});
  EXPECT_EQ(full.rope_scaling.original_max_position_embeddings, 32768);  // defaults to max_position_embeddings
  EXPECT_DOUBLE_EQ(*full.rope_scaling.attention_factor, 1.5);
  EXPECT_DOUBLE_EQ(full.rope_scaling.beta_fast, 16.0);
  EXPECT_DOUBLE_EQ(full.rope_scaling.beta_slow, 2.0);
  EXPECT_DOUBLE_EQ(*full.rope_scaling.mscale, 0.707);
  EXPECT_DOUBLE_EQ(*full.rope_scaling.mscale_all_dim, 0.707);
  EXPECT_FALSE(full.rope_scaling.truncate);

  // `beta_fast or 32`: zero means the default.
  EXPECT_DOUBLE_EQ(parse_with(qwen2_base(), "rope_scaling", json{{"type", "yarn"}, {"factor", 2}, {"beta_fast", 0}})
                       .rope_scaling.beta_fast,
                   32.0);
  // No factor: the ratio of the context lengths (transformers 5.x).
  json nf = qwen2_base();
  nf["max_position_embeddings"] = 131072;
  nf["rope_scaling"] = {{"rope_type", "yarn"}, {"original_max_position_embeddings", 32768}};
  EXPECT_DOUBLE_EQ(parse(nf).rope_scaling.factor, 4.0);
  nf["rope_scaling"]["factor"] = nullptr;
  EXPECT_DOUBLE_EQ(parse(nf).rope_scaling.factor, 4.0);
  // A top-level original_max_position_embeddings takes priority (5.x standardization).
  nf["original_max_position_embeddings"] = 16384;
  EXPECT_EQ(parse(nf).rope_scaling.original_max_position_embeddings, 16384);

  // dynamic scales against max_position_embeddings, whatever rope_scaling says.
  ModelConfig d = parse_with(qwen2_base(), "rope_scaling",
                             json{{"type", "dynamic"}, {"factor", 2.0}, {"original_max_position_embeddings", 1024}});
  EXPECT_EQ(d.rope_scaling.type, RopeType::Dynamic);
  EXPECT_EQ(d.rope_scaling.original_max_position_embeddings, 32768);
}

TEST(ModelConfig, SlidingWindowLayers) {
  json j = qwen2_base();
  j["num_hidden_layers"] = 5;
  j["max_window_layers"] = 3;
  j["sliding_window"] = 4096;
  // Off: no layer slides, even with layer_types saying so (transformers sets sliding_window = None).
  EXPECT_EQ(parse(j).layer_sliding_window, std::vector<int>(5, 0));
  j["layer_types"] = {"sliding_attention", "full_attention", "full_attention", "full_attention", "full_attention"};
  EXPECT_EQ(parse(j).layer_sliding_window, std::vector<int>(5, 0));
  j.erase("layer_types");
  // On: layers i >= max_window_layers slide.
  j["use_sliding_window"] = true;
  EXPECT_EQ(parse(j).layer_sliding_window, (std::vector<int>{0, 0, 0, 4096, 4096}));
  j["max_window_layers"] = 0;
  EXPECT_EQ(parse(j).layer_sliding_window, std::vector<int>(5, 4096));
  // layer_types, when given, wins.
  j["layer_types"] = {"sliding_attention", "full_attention", "sliding_attention", "full_attention", "full_attention"};
  EXPECT_EQ(parse(j).layer_sliding_window, (std::vector<int>{4096, 0, 4096, 0, 0}));
  // sliding_window null: nothing slides.
  j.erase("layer_types");
  j["sliding_window"] = nullptr;
  EXPECT_EQ(parse(j).layer_sliding_window, std::vector<int>(5, 0));
}

TEST(ModelConfig, MoeFields) {
  ModelConfig c = parse(moe_base("Qwen2MoeForCausalLM"));
  EXPECT_TRUE(c.is_moe());
  EXPECT_EQ(c.model_type, "qwen2_moe");
  EXPECT_EQ(c.num_experts, 60);
  EXPECT_EQ(c.num_experts_per_tok, 4);
  EXPECT_EQ(c.moe_intermediate_size, 1408);
  EXPECT_EQ(c.shared_expert_intermediate_size, 5632);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_EQ(c.decoder_sparse_step, 1);
  EXPECT_TRUE(c.mlp_only_layers.empty());
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  for (int l = 0; l < 4; ++l) EXPECT_TRUE(c.layer_is_moe(l));
  EXPECT_FALSE(parse_with(moe_base("Qwen2MoeForCausalLM"), "qkv_bias", false).qkv_bias);

  json j = moe_base("Qwen3MoeForCausalLM");
  j["decoder_sparse_step"] = 2;
  j["mlp_only_layers"] = {3};
  j["norm_topk_prob"] = true;
  j.erase("head_dim");
  c = parse(j);
  EXPECT_EQ(c.model_type, "qwen3_moe");
  EXPECT_EQ(c.head_dim, 64);  // Qwen3MoeConfig derives it
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.shared_expert_intermediate_size, 0);
  EXPECT_TRUE(c.norm_topk_prob);
  // HF: not in mlp_only_layers and (l + 1) % decoder_sparse_step == 0.
  EXPECT_FALSE(c.layer_is_moe(0));
  EXPECT_TRUE(c.layer_is_moe(1));
  EXPECT_FALSE(c.layer_is_moe(2));
  EXPECT_FALSE(c.layer_is_moe(3));
}

TEST(ModelConfig, CheckpointsMadeByTransformers) {
  // The goldens' configs (transformers 5.17 made models from them).
  ModelConfig s = ModelConfig::load(data_dir() + "/qwen2_sliding");
  EXPECT_EQ(s.layer_sliding_window, (std::vector<int>{0, 16, 16}));
  ModelConfig y = ModelConfig::load(data_dir() + "/qwen2_mqa_yarn");
  EXPECT_EQ(y.num_kv_heads, 1);
  EXPECT_EQ(y.rope_scaling.type, RopeType::Yarn);
  EXPECT_DOUBLE_EQ(y.rope_scaling.factor, 4.0);
  EXPECT_EQ(y.rope_scaling.original_max_position_embeddings, 64);
  ModelConfig l = ModelConfig::load(data_dir() + "/qwen2_linear_newspelling");
  EXPECT_EQ(l.rope_scaling.type, RopeType::Linear);
  EXPECT_DOUBLE_EQ(l.rope_theta, 50000.0);
  EXPECT_EQ(l.dtype, DType::BF16);
  ModelConfig d = ModelConfig::load(data_dir() + "/qwen2_dynamic");
  EXPECT_EQ(d.rope_scaling.type, RopeType::Dynamic);
  EXPECT_EQ(d.max_position_embeddings, 48);
  ModelConfig g = ModelConfig::load(data_dir() + "/qwen3_gqa7_bias");
  EXPECT_EQ(g.head_dim, 16);
  EXPECT_EQ(g.num_heads, 7);
  EXPECT_TRUE(g.o_bias);
  ModelConfig m2 = ModelConfig::load(data_dir() + "/qwen2_moe");
  EXPECT_EQ(m2.mlp_only_layers, std::vector<int>{1});
  EXPECT_TRUE(m2.layer_is_moe(0));
  EXPECT_FALSE(m2.layer_is_moe(1));
  ModelConfig m3 = ModelConfig::load(data_dir() + "/qwen3_moe");
  EXPECT_EQ(m3.num_experts_per_tok, 3);
  EXPECT_TRUE(m3.norm_topk_prob);
  for (const auto& e : std::filesystem::directory_iterator(data_dir())) {
    if (!e.is_directory()) continue;
    SCOPED_TRACE(e.path().string());
    ModelConfig c = ModelConfig::load(e.path().string());
    EXPECT_EQ(c.eos_token_ids, std::vector<int>{2});
    GenerationConfig gc = GenerationConfig::load(e.path().string());
    (void)gc;
  }
}

TEST(ModelConfig, Errors) {
  const std::string src = "test/config.json";
  auto err = [&](json j, const std::vector<std::string>& needles) {
    std::vector<std::string> n = needles;
    n.push_back(src);
    expect_error_with([&] { parse(j); }, n);
  };
  auto with = [](json j, const std::string& k, const json& v) {
    if (v.is_string() && v.get<std::string>() == "<erase>")
      j.erase(k);
    else
      j[k] = v;
    return j;
  };
  const json q2 = qwen2_base();

  err(with(q2, "architectures", "<erase>"), {"'architectures'", "Qwen2ForCausalLM"});
  err(with(q2, "architectures", json::array()), {"'architectures'"});
  err(with(q2, "architectures", json::array({"MistralForCausalLM"})),
      {"'architectures'", "MistralForCausalLM", "LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3MoeForCausalLM"});
  err(with(q2, "architectures", "Qwen2ForCausalLM"), {"'architectures'", "list of strings"});
  err(with(q2, "model_type", "llama"), {"'model_type'", "llama", "qwen2"});
  err(with(q2, "vocab_size", "<erase>"), {"'vocab_size'", "required"});
  err(with(q2, "hidden_size", 0), {"'hidden_size' = 0", ">= 1"});
  err(with(q2, "hidden_size", int64_t{1} << 31), {"'hidden_size' = 2147483648", "too large", "2147483647"});
  err(with(q2, "max_position_embeddings", int64_t{1} << 40), {"'max_position_embeddings'", "too large"});
  err(with(q2, "num_hidden_layers", -2), {"'num_hidden_layers' = -2"});
  err(with(q2, "intermediate_size", "4864"), {"'intermediate_size'", "integer"});
  err(with(q2, "num_attention_heads", 2.5), {"'num_attention_heads' = 2.5"});
  err(with(q2, "num_key_value_heads", 3), {"'num_key_value_heads' = 3", "must divide num_attention_heads = 14"});
  err(with(q2, "num_key_value_heads", "<erase>"), {"'num_key_value_heads'", "required"});
  err(with(q2, "num_attention_heads", 12), {"'num_attention_heads' = 12", "hidden_size = 896"});  // 896 / 12
  err(with(q2, "num_attention_heads", 128), {"'num_attention_heads' = 128", "odd head_dim"});
  err(with(q2, "head_dim", 33), {"'head_dim' = 33", "even"});
  err(with(q2, "rms_norm_eps", 0), {"'rms_norm_eps' = 0", "positive"});
  err(with(q2, "rms_norm_eps", -1e-6), {"'rms_norm_eps'", "positive"});
  err(with(q2, "rope_theta", 0.0), {"'rope_theta'", "positive"});
  err(with(q2, "max_position_embeddings", 0), {"'max_position_embeddings' = 0"});
  err(with(q2, "hidden_act", "gelu"), {"'hidden_act' = \"gelu\"", "supported: silu"});
  err(with(q2, "torch_dtype", "int8"), {"'torch_dtype' = \"int8\"", "float32, bfloat16, float16"});
  err(with(q2, "dtype", "float16"), {"'dtype' = \"float16\"", "torch_dtype"});
  err(with(q2, "torch_dtype", 16), {"'torch_dtype' = 16", "string"});
  err(with(q2, "eos_token_id", -1), {"'eos_token_id' = -1"});
  err(with(q2, "eos_token_id", json::array({1, "x"})), {"'eos_token_id'", "\"x\""});
  err(with(q2, "bos_token_id", "<s>"), {"'bos_token_id'"});
  err(with(q2, "tie_word_embeddings", 1), {"'tie_word_embeddings' = 1", "true or false"});

  // RoPE.
  err(with(q2, "rope_scaling", json{{"type", "longrope"}, {"factor", 2.0}}),
      {"'rope_scaling.type' = \"longrope\"", "supported: default, linear, dynamic, yarn, llama3"});
  err(with(q2, "rope_scaling", json{{"rope_type", "llama3"}, {"factor", 8.0}}),
      {"'rope_scaling.low_freq_factor'", "required for RoPE type llama3"});
  err(with(q2, "rope_parameters", json{{"rope_type", "su"}}), {"'rope_parameters.rope_type' = \"su\""});
  err(with(q2, "rope_scaling", json{{"rope_type", "linear"}, {"type", "dynamic"}, {"factor", 2}}),
      {"'rope_scaling.type' = \"dynamic\"", "rope_type = \"linear\""});
  err(with(q2, "rope_scaling", json{{"type", "linear"}}), {"'rope_scaling.factor'", "required", "linear"});
  err(with(q2, "rope_scaling", json{{"type", "dynamic"}, {"factor", 0}}), {"'rope_scaling.factor' = 0", "positive"});
  err(with(q2, "rope_scaling", json{{"type", "linear"}, {"factor", "2"}}), {"'rope_scaling.factor'", "number"});
  err(with(q2, "rope_scaling", "yarn"), {"'rope_scaling' = \"yarn\"", "object"});
  err(with(with(q2, "rope_scaling", json{{"type", "linear"}, {"factor", 2}}), "rope_parameters",
           json{{"rope_type", "linear"}, {"factor", 4}}),
      {"'rope_scaling'", "conflicts with rope_parameters"});
  err(with(q2, "rope_parameters", json{{"full_attention", {{"rope_type", "default"}}}}),
      {"'rope_parameters.full_attention'", "per-layer-type"});
  err(with(q2, "rope_scaling", json{{"type", "default"}, {"mrope_section", {16, 24, 24}}}),
      {"'rope_scaling.mrope_section'", "not supported"});
  err(with(q2, "partial_rotary_factor", 0.5), {"'partial_rotary_factor' = 0.5", "not supported"});
  err(with(q2, "rope_parameters", json{{"rope_type", "default"}, {"rope_theta", -5}}),
      {"'rope_parameters.rope_theta' = -5", "positive"});
  err(with(q2, "rope_scaling", json{{"type", "yarn"}, {"factor", 4}, {"original_max_position_embeddings", 0}}),
      {"'rope_scaling.original_max_position_embeddings' = 0"});
  err(with(q2, "rope_scaling", json{{"type", "yarn"}, {"factor", 4}, {"attention_factor", -1}}),
      {"'rope_scaling.attention_factor' = -1"});
  err(with(q2, "rope_scaling", json{{"type", "yarn"}, {"factor", 4}, {"truncate", "yes"}}),
      {"'rope_scaling.truncate'", "true or false"});

  // Llama.
  const json l3 = llama31_base();
  json l3_rope = l3["rope_scaling"];
  for (const char* k : {"factor", "high_freq_factor", "original_max_position_embeddings"}) {
    json r = l3_rope;
    r.erase(k);
    err(with(l3, "rope_scaling", r), {std::string("'rope_scaling.") + k + "'", "required for RoPE type llama3"});
  }
  l3_rope["high_freq_factor"] = 1.0;
  err(with(l3, "rope_scaling", l3_rope), {"'rope_scaling.high_freq_factor' = 1", "must exceed low_freq_factor = 1"});
  l3_rope["high_freq_factor"] = 4.0;
  l3_rope["low_freq_factor"] = 0;
  err(with(l3, "rope_scaling", l3_rope), {"'rope_scaling.low_freq_factor' = 0", "positive"});
  err(with(l3, "mlp_bias", true), {"'mlp_bias' = true", "not supported"});
  err(with(l3, "model_type", "qwen2"), {"'model_type' = \"qwen2\"", "LlamaForCausalLM", "\"llama\""});
  err(with(l3, "attention_bias", "no"), {"'attention_bias'", "true or false"});

  // Layers.
  json lt = with(q2, "num_hidden_layers", 2);
  err(with(lt, "layer_types", json::array({"full_attention"})), {"'layer_types'", "1 entries", "num_hidden_layers = 2"});
  err(with(lt, "layer_types", json::array({"full_attention", "chunked_attention"})),
      {"'layer_types'", "chunked_attention", "full_attention, sliding_attention"});
  err(with(with(q2, "use_sliding_window", true), "sliding_window", 0), {"'sliding_window' = 0"});
  err(with(q2, "use_sliding_window", "true"), {"'use_sliding_window'", "true or false"});
  err(with(q2, "max_window_layers", -1), {"'max_window_layers' = -1"});

  // MoE.
  const json m2 = moe_base("Qwen2MoeForCausalLM");
  err(with(m2, "num_experts", "<erase>"), {"'num_experts'", "required"});
  err(with(m2, "num_experts_per_tok", 61), {"'num_experts_per_tok' = 61", "[1, 60]"});
  err(with(m2, "moe_intermediate_size", 0), {"'moe_intermediate_size' = 0"});
  err(with(m2, "shared_expert_intermediate_size", "<erase>"), {"'shared_expert_intermediate_size'", "required"});
  err(with(m2, "decoder_sparse_step", 0), {"'decoder_sparse_step' = 0"});
  err(with(m2, "mlp_only_layers", json::array({0, 4})), {"'mlp_only_layers'", "layer index 4", "[0, 4)"});
  err(with(m2, "norm_topk_prob", 0), {"'norm_topk_prob'"});

  // Not JSON / not an object.
  expect_error_with([&] { ModelConfig::from_json_text("{\"vocab_size\": ", src); }, {src, "invalid JSON"});
  expect_error_with([&] { ModelConfig::from_json_text("[]", src); }, {src, "JSON object"});
  expect_error_with([&] { ModelConfig::from_json_text(R"({"vocab_size": 1, "vocab_size": 2})", src); },
                    {src, "duplicate key \"vocab_size\""});
  expect_error_with([&] { ModelConfig::load("/nonexistent/model"); }, {"/nonexistent/model/config.json"});
}

TEST(ModelConfig, SupportedArchitectures) {
  auto a = ModelConfig::supported_architectures();
  EXPECT_EQ(a.size(), 5u);
  for (const char* name :
       {"Qwen2ForCausalLM", "Qwen3ForCausalLM", "Qwen2MoeForCausalLM", "Qwen3MoeForCausalLM", "LlamaForCausalLM"})
    EXPECT_NE(std::find(a.begin(), a.end(), name), a.end()) << name;
  EXPECT_STREQ(rope_type_name(RopeType::Yarn), "yarn");
  EXPECT_STREQ(rope_type_name(RopeType::Llama3), "llama3");
  EXPECT_STREQ(rope_type_name(RopeType::Default), "default");
}

// ---------------------------------------------------------------------------------------
// generation_config.json

TEST(GenerationConfig, Fields) {
  // Qwen2.5-Instruct's file.
  GenerationConfig g = GenerationConfig::from_json_text(R"({
    "bos_token_id": 151643, "pad_token_id": 151643, "do_sample": true,
    "eos_token_id": [151645, 151643], "repetition_penalty": 1.05, "temperature": 0.7,
    "top_p": 0.8, "top_k": 20, "min_p": 0.0, "max_new_tokens": 512, "transformers_version": "4.37.0"
  })",
                                                        "gen.json");
  EXPECT_EQ(g.eos_token_ids, (std::vector<int>{151645, 151643}));
  EXPECT_EQ(g.bos_token_id, 151643);
  EXPECT_EQ(g.pad_token_id, 151643);
  EXPECT_TRUE(g.do_sample);
  EXPECT_DOUBLE_EQ(*g.temperature, 0.7);
  EXPECT_DOUBLE_EQ(*g.top_p, 0.8);
  EXPECT_EQ(*g.top_k, 20);
  EXPECT_DOUBLE_EQ(*g.min_p, 0.0);
  EXPECT_DOUBLE_EQ(*g.repetition_penalty, 1.05);
  EXPECT_EQ(*g.max_new_tokens, 512);

  GenerationConfig one = GenerationConfig::from_json_text(R"({"eos_token_id": 2, "pad_token_id": null})", "gen.json");
  EXPECT_EQ(one.eos_token_ids, std::vector<int>{2});
  EXPECT_FALSE(one.pad_token_id.has_value());
  EXPECT_FALSE(one.do_sample);
  EXPECT_FALSE(one.temperature.has_value());
  EXPECT_FALSE(one.top_k.has_value());
}

TEST(GenerationConfig, MissingFileGivesDefaults) {
  GenerationConfig g = GenerationConfig::load("/nonexistent/model");
  EXPECT_TRUE(g.eos_token_ids.empty());
  EXPECT_FALSE(g.do_sample);
  EXPECT_FALSE(g.bos_token_id.has_value());
  EXPECT_FALSE(g.max_new_tokens.has_value());
  GenerationConfig d = GenerationConfig::load(data_dir() + "/qwen2_tied");
  EXPECT_EQ(d.eos_token_ids, (std::vector<int>{2, 3}));
  EXPECT_EQ(d.bos_token_id, 1);
}

TEST(GenerationConfig, Errors) {
  const std::string src = "gen.json";
  auto err = [&](const std::string& text, const std::vector<std::string>& needles) {
    std::vector<std::string> n = needles;
    n.push_back(src);
    expect_error_with([&] { GenerationConfig::from_json_text(text, src); }, n);
  };
  err(R"({"eos_token_id": "2"})", {"'eos_token_id'"});
  err(R"({"eos_token_id": [2, -1]})", {"'eos_token_id'", "[0, 2^31)"});
  err(R"({"bos_token_id": 1.5})", {"'bos_token_id' = 1.5"});
  err(R"({"do_sample": "yes"})", {"'do_sample'", "true or false"});
  err(R"({"temperature": -0.1})", {"'temperature' = -0.1", "[0, 1e30]"});
  err(R"({"temperature": 1e308})", {"'temperature' = 1e+308", "[0, 1e30]"});  // inf as a float
  err(R"({"top_p": 0})", {"'top_p' = 0", "(0, 1]"});
  err(R"({"top_p": 1.5})", {"'top_p' = 1.5"});
  err(R"({"top_k": -1})", {"'top_k' = -1"});
  err(R"({"min_p": 2})", {"'min_p' = 2", "[0, 1]"});
  err(R"({"repetition_penalty": 0})", {"'repetition_penalty' = 0", "(0, 1e30]"});
  err(R"({"max_new_tokens": 0})", {"'max_new_tokens' = 0"});
  err(R"({"top_k": 5,)", {"invalid JSON"});

  // A malformed file in a model dir names the file.
  const std::string dir = ::testing::TempDir() + "/tllm_genconfig_bad";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/generation_config.json") << "{\"top_k\": }";
  expect_error_with([&] { GenerationConfig::load(dir); }, {dir + "/generation_config.json", "invalid JSON"});
  std::filesystem::remove_all(dir);
}
