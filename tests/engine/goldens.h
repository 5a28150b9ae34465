// HF transformers goldens of the random-weight test checkpoints (tests/data/models/<name>/
// golden.json, made by scripts/goldens/model_goldens.py): per prompt, the 24 greedy tokens,
// the top-20 log-probs of every generated step and of every prompt position, and (for the
// head_dim 64/128 models) HF's own bf16 error against the reference.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sampling_params.h"

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

}  // namespace tllm::goldens
