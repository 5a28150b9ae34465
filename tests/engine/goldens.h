// HF transformers goldens of the random-weight test checkpoints (tests/data/models/<name>/
// golden.json, made by scripts/goldens/model_goldens.py): per prompt, the 24 greedy tokens,
// the top-20 log-probs of every generated step and of every prompt position, and (for the
// head_dim 64/128 models) HF's own bf16 error against the reference.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <map>

#include "core/tensor.h"
#include "engine/engine.h"
#include "engine/sampling_params.h"
#include "io/safetensors.h"

namespace tllm::goldens {

namespace fs = std::filesystem;
using Top = std::vector<std::pair<int32_t, double>>;  // (token, log-prob), most likely first

struct Case {
  std::vector<int32_t> prompt;
  std::vector<int32_t> greedy;
  std::vector<Top> steps;       // distribution at each generated step
  std::vector<Top> prompt_top;  // distribution at each prompt position (predicting the next)
  double hf_bf16_mean = -1;     // HF's own bf16 |log-prob error|, when recorded
  double hf_bf16_max = -1;
};

// TLLM_GOLDEN_MODELS, or TLLM_TEST_SOURCE_DIR/tests/data/models (the GPU machine runs the
// tests from another path), or the source tree this test was built from.
inline fs::path models_dir() {
  if (const char* m = std::getenv("TLLM_GOLDEN_MODELS"); m && *m) return m;
  if (const char* s = std::getenv("TLLM_TEST_SOURCE_DIR"); s && *s) return fs::path(s) / "tests/data/models";
  return fs::path(TLLM_SOURCE_DIR) / "tests/data/models";
}

// The sampling the goldens were made with: greedy for n_new tokens past any eos, the top-20
// log-probs of every step and prompt position, token ids only.
inline SamplingParams greedy_params(size_t n_new) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = static_cast<int>(n_new);
  p.ignore_eos = true;
  p.logprobs = 20;
  p.prompt_logprobs = 20;
  p.detokenize = false;
  return p;
}

inline Top parse_top(const nlohmann::json& j) {
  Top v;
  for (const auto& e : j["top"]) v.emplace_back(e[0].get<int32_t>(), e[1].get<double>());
  return v;
}

inline std::vector<Case> load_cases(const std::string& name) {
  std::ifstream f(models_dir() / name / "golden.json");
  EXPECT_TRUE(f.good()) << "missing golden.json for " << name << " in " << models_dir();
  const nlohmann::json g = nlohmann::json::parse(f);
  std::vector<Case> cases;
  for (const auto& c : g["cases"]) {
    Case k;
    k.prompt = c["prompt"].get<std::vector<int32_t>>();
    k.greedy = c["greedy"].get<std::vector<int32_t>>();
    for (const auto& s : c["steps"]) k.steps.push_back(parse_top(s));
    for (const auto& s : c["prompt_top"]) k.prompt_top.push_back(parse_top(s));
    if (c.contains("hf_bf16_err")) {
      k.hf_bf16_mean = c["hf_bf16_err"]["mean"].get<double>();
      k.hf_bf16_max = c["hf_bf16_err"]["max"].get<double>();
    }
    cases.push_back(std::move(k));
  }
  return cases;
}

// The CPU f32 path against the float64 goldens.
inline constexpr double kCpuTol = 1e-4;

// Every token in either top-20 list agrees within kCpuTol; a token missing from the other
// list is allowed only at the boundary (within kCpuTol of the other list's 20th value).
inline void expect_top_match(const std::vector<std::pair<int32_t, double>>& ref,
                      const std::vector<std::pair<int32_t, float>>& got, const std::string& where) {
  ASSERT_EQ(got.size(), ref.size()) << where;
  std::map<int32_t, double> g, r;
  for (auto& [id, lp] : got) g[id] = lp;
  for (auto& [id, lp] : ref) r[id] = lp;
  const double ref_last = ref.back().second, got_last = got.back().second;
  for (auto& [id, lp] : ref) {
    auto it = g.find(id);
    if (it == g.end()) {
      EXPECT_LE(lp, got_last + kCpuTol) << where << ": token " << id << " (" << lp << ") missing from our top list";
    } else {
      EXPECT_NEAR(it->second, lp, kCpuTol) << where << ": token " << id;
    }
  }
  for (auto& [id, lp] : got) {
    if (!r.count(id)) {
      EXPECT_LE(lp, ref_last + kCpuTol) << where << ": extra token " << id << " (" << lp << ")";
    }
  }
}

// |log-prob error| of the reference's 5 most likely tokens (1.0 when missing from ours).
inline void add_errors(const Top& ref, const std::vector<std::pair<int32_t, float>>& got, std::vector<double>& errs) {
  std::map<int32_t, float> g(got.begin(), got.end());
  for (size_t i = 0; i < std::min<size_t>(5, ref.size()); ++i) {
    auto it = g.find(ref[i].first);
    errs.push_back(it == g.end() ? 1.0 : std::fabs(it->second - ref[i].second));
  }
}

// A greedy completion with log-probs (greedy_params) against golden case k: the same tokens,
// every top-20 list within kCpuTol, prompt positions included.
inline void check_completion(const Case& k, const LLMEngine::Completion& c, const std::string& where) {
  ASSERT_EQ(c.token_ids, k.greedy) << where << ": greedy tokens differ";
  ASSERT_EQ(c.logprobs.size(), k.steps.size()) << where;
  for (size_t s = 0; s < k.steps.size(); ++s) {
    expect_top_match(k.steps[s], c.logprobs[s].top, where + " step " + std::to_string(s));
    EXPECT_EQ(c.logprobs[s].token, k.greedy[s]);
  }
  ASSERT_TRUE(c.prompt_logprobs.has_value()) << where;
  const auto& pl = *c.prompt_logprobs;
  ASSERT_EQ(pl.size(), k.prompt.size()) << where;
  EXPECT_FALSE(pl[0].has_value());
  for (size_t j = 1; j < k.prompt.size(); ++j) {
    ASSERT_TRUE(pl[j].has_value()) << where << " prompt position " << j;
    EXPECT_EQ(pl[j]->token, k.prompt[j]);
    expect_top_match(k.prompt_top[j - 1], pl[j]->top, where + " prompt position " + std::to_string(j - 1));
  }
  expect_top_match(k.prompt_top.back(), c.logprobs[0].top, where + " last prompt position");
}

// Names of the golden models (sorted); `keep(config_json)` filters them.
template <typename Keep>
std::vector<std::string> model_names(Keep keep) {
  std::vector<std::string> names;
  if (!fs::exists(models_dir())) return names;
  for (const auto& e : fs::directory_iterator(models_dir())) {
    if (!fs::exists(e.path() / "golden.json")) continue;
    std::ifstream f(e.path() / "config.json");
    if (keep(nlohmann::json::parse(f))) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Golden model `name` (Qwen2) rewritten as a LlamaForCausalLM in a temporary folder. With
// `attention_bias`: its tensors plus a zero o_proj.bias per layer (the same function, so
// its goldens hold). Without: its q/k/v biases dropped (not the golden's function).
// `qwen2_zero_bias`: instead the Qwen2 checkpoint itself with its q/k/v biases set to zero
// (the function of the Llama copy without biases).
enum class Rewrite { LlamaWithBias, LlamaNoBias, Qwen2ZeroBias };
inline fs::path rewrite(const std::string& name, Rewrite how) {
  const fs::path src = models_dir() / name;
  const char* tag = how == Rewrite::LlamaWithBias ? "llama_bias" : how == Rewrite::LlamaNoBias ? "llama" : "qwen2_zero";
  const fs::path dst = fs::path(::testing::TempDir()) / ("tllm_" + std::string(tag) + "_" + name);
  fs::remove_all(dst);
  fs::create_directories(dst);
  nlohmann::json cfg = nlohmann::json::parse(std::ifstream(src / "config.json"));
  EXPECT_EQ(cfg["architectures"][0], "Qwen2ForCausalLM") << name;
  EXPECT_FALSE(cfg.value("use_sliding_window", false)) << name;
  if (how != Rewrite::Qwen2ZeroBias) {
    cfg["architectures"] = {"LlamaForCausalLM"};
    cfg["model_type"] = "llama";
    cfg["attention_bias"] = how == Rewrite::LlamaWithBias;
    cfg["mlp_bias"] = false;
    for (const char* k : {"use_sliding_window", "sliding_window", "max_window_layers"}) cfg.erase(k);
  }
  std::ofstream(dst / "config.json") << cfg.dump(2);
  const Checkpoint ck = Checkpoint::open(src.string());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& n : ck.names()) {
    const bool bias = n.size() > 5 && n.compare(n.size() - 5, 5, ".bias") == 0;
    if (bias && how == Rewrite::LlamaNoBias) continue;
    Tensor t = ck.get(n);
    if (bias && how == Rewrite::Qwen2ZeroBias) t = Tensor::zeros(t.shape(), t.dtype());
    tensors.emplace_back(n, t);
  }
  if (how == Rewrite::LlamaWithBias) {
    const int64_t H = cfg["hidden_size"].get<int64_t>();
    for (int l = 0; l < cfg["num_hidden_layers"].get<int>(); ++l)
      tensors.emplace_back("model.layers." + std::to_string(l) + ".self_attn.o_proj.bias",
                           Tensor::zeros({H}, DType::BF16));
  }
  write_safetensors((dst / "model.safetensors").string(), tensors, {{"format", "pt"}});
  return dst;
}

}  // namespace tllm::goldens
