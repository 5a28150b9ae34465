// End-to-end parity with HuggingFace transformers (goldens in tests/data/models, made by
// scripts/goldens/model_goldens.py: float64 for dense models, float32 for MoE models): the
// CPU f32 path must reproduce the 24 greedy tokens exactly and every top-20 log-prob within
// 1e-4, prompt positions included, whether a prompt runs alone, together with others in
// small prefill chunks mixed with other sequences' decode steps (block sizes 1 and 32), or
// a second time from the prefix cache. Every golden model runs: Qwen2 (tied/untied, bias,
// MQA + yarn, dynamic, linear, sliding window, sharded), Qwen3 (head_dim != hidden/heads,
// GQA 7, bias), Qwen2-MoE (shared expert, mlp_only_layers) and Qwen3-MoE.
//
// Llama: transformers' LlamaForCausalLM with attention_bias computes what Qwen2ForCausalLM
// computes once o_proj has a bias of zero (Qwen2 is Llama with q/k/v biases), so a Qwen2
// golden checkpoint rewritten in the Llama layout (config and a zero o_proj.bias per layer)
// keeps its goldens exactly; the tests below run those.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>

#include "engine/engine.h"
#include "io/gguf_model.h"
#include "goldens.h"

using namespace tllm;
using namespace tllm::goldens;

namespace {

EngineConfig engine_config_at(const fs::path& dir, int block_size, int max_batched, bool prefix_caching) {
  EngineConfig c;
  c.model_dir = dir.string();
  c.device = "cpu";
  c.dtype = "float32";
  c.threads = 2;
  c.block_size = block_size;
  c.max_num_batched_tokens = max_batched;
  c.num_kv_blocks = 4096 / block_size;
  c.skip_tokenizer_init = true;
  c.enable_prefix_caching = prefix_caching;
  return c;
}

EngineConfig engine_config(const std::string& name, int block_size, int max_batched, bool prefix_caching) {
  return engine_config_at(models_dir() / name, block_size, max_batched, prefix_caching);
}


}  // namespace

class Parity : public ::testing::TestWithParam<std::string> {};

TEST_P(Parity, EachPromptAlone) {
  const std::string name = GetParam();
  for (const Case& k : load_cases(name)) {
    LLMEngine engine(engine_config(name, 16, 512, false));
    auto out = engine.generate({k.prompt}, {greedy_params(k.greedy.size())});
    check_completion(k, out[0], name + " alone (prompt of " + std::to_string(k.prompt.size()) + ")");
  }
}

TEST_P(Parity, AllPromptsTogetherInSmallChunks) {
  // A budget of 7 tokens per step: prompts split into chunks that share forwards with the
  // other sequences' decode tokens (so MoE experts see mixed batches of 1..7 rows too).
  const std::string name = GetParam();
  const std::vector<Case> cases = load_cases(name);
  for (int block_size : {1, 32}) {
    LLMEngine engine(engine_config(name, block_size, 7, false));
    std::vector<std::vector<int32_t>> prompts;
    for (const Case& k : cases) prompts.push_back(k.prompt);
    auto out = engine.generate(prompts, {greedy_params(cases[0].greedy.size())});
    for (size_t i = 0; i < cases.size(); ++i)
      check_completion(cases[i], out[i],
                       name + " batched, block size " + std::to_string(block_size) + ", prompt " + std::to_string(i));
    EXPECT_FALSE(engine.has_unfinished_requests());
    EXPECT_EQ(engine.stats().num_free_kv_blocks, engine.stats().num_kv_blocks);
  }
}

TEST_P(Parity, PrefixCachingReusesBlocksWithSameResults) {
  // The longest prompt twice, one after the other: the second run starts from the cached
  // full blocks of the first and must still match the golden exactly. (Prompt log-probs
  // need every prompt position computed, so these runs ask for sampled-token log-probs only.)
  const std::string name = GetParam();
  const std::vector<Case> cases = load_cases(name);
  const Case* longest = &cases[0];
  for (const Case& k : cases)
    if (k.prompt.size() > longest->prompt.size()) longest = &k;
  ASSERT_GE(longest->prompt.size(), 9u);
  SamplingParams params = greedy_params(longest->greedy.size());
  params.prompt_logprobs = -1;
  auto check = [&](const LLMEngine::Completion& c, const std::string& where) {
    ASSERT_EQ(c.token_ids, longest->greedy) << where << ": greedy tokens differ";
    ASSERT_EQ(c.logprobs.size(), longest->steps.size()) << where;
    for (size_t s = 0; s < longest->steps.size(); ++s)
      expect_top_match(longest->steps[s], c.logprobs[s].top, where + " step " + std::to_string(s));
  };
  LLMEngine engine(engine_config(name, 4, 512, true));
  auto first = engine.generate({longest->prompt}, {params});
  check(first[0], name + " prefix caching, first run");
  auto second = engine.generate({longest->prompt}, {params});
  EXPECT_GE(second[0].num_cached_tokens, static_cast<int>(longest->prompt.size() / 4 * 4) - 4)
      << "the second run did not reuse the cached prompt blocks";
  check(second[0], name + " prefix caching, second run (" + std::to_string(second[0].num_cached_tokens) +
                       " cached tokens)");
}
// The Qwen2 goldens (bias, tied and untied embeddings, MQA with yarn) through the Llama
// layout: every prompt alone, then all together in 7-token chunks.
TEST(LlamaParity, Qwen2GoldensHoldInTheLlamaLayout) {
  for (const std::string name : {"qwen2_untied", "qwen2_tied", "qwen2_mqa_yarn"}) {
    const fs::path dir = rewrite(name, Rewrite::LlamaWithBias);
    const std::vector<Case> cases = load_cases(name);
    for (const Case& k : cases) {
      LLMEngine engine(engine_config_at(dir, 16, 512, false));
      ASSERT_EQ(engine.model_config().architecture, "LlamaForCausalLM");
      ASSERT_TRUE(engine.model_config().o_bias);
      auto out = engine.generate({k.prompt}, {greedy_params(k.greedy.size())});
      check_completion(k, out[0], "llama layout of " + name + " alone");
    }
    LLMEngine engine(engine_config_at(dir, 4, 7, false));
    std::vector<std::vector<int32_t>> prompts;
    for (const Case& k : cases) prompts.push_back(k.prompt);
    auto out = engine.generate(prompts, {greedy_params(cases[0].greedy.size())});
    for (size_t i = 0; i < cases.size(); ++i)
      check_completion(cases[i], out[i], "llama layout of " + name + " batched, prompt " + std::to_string(i));
    fs::remove_all(dir);
  }
}

// Without attention_bias a Llama checkpoint has no bias tensors; it computes what the Qwen2
// model with zero q/k/v biases computes, token for token and log-prob for log-prob.
TEST(LlamaParity, WithoutBiasesEqualsQwen2WithZeroBiases) {
  const std::string name = "qwen2_untied";
  const fs::path llama = rewrite(name, Rewrite::LlamaNoBias), qwen2 = rewrite(name, Rewrite::Qwen2ZeroBias);
  const Case k = load_cases(name)[0];
  LLMEngine a(engine_config_at(llama, 16, 512, false)), b(engine_config_at(qwen2, 16, 512, false));
  EXPECT_FALSE(a.model_config().qkv_bias);
  EXPECT_TRUE(b.model_config().qkv_bias);
  const auto x = a.generate({k.prompt}, {greedy_params(24)})[0];
  const auto y = b.generate({k.prompt}, {greedy_params(24)})[0];
  EXPECT_EQ(x.token_ids, y.token_ids);
  EXPECT_NE(x.token_ids, k.greedy);  // the biases matter: this is not the golden's function
  ASSERT_EQ(x.logprobs.size(), y.logprobs.size());
  for (size_t s = 0; s < x.logprobs.size(); ++s) {
    ASSERT_EQ(x.logprobs[s].top.size(), y.logprobs[s].top.size());
    for (size_t j = 0; j < x.logprobs[s].top.size(); ++j) {
      EXPECT_EQ(x.logprobs[s].top[j].first, y.logprobs[s].top[j].first) << "step " << s;
      EXPECT_EQ(x.logprobs[s].top[j].second, y.logprobs[s].top[j].second) << "step " << s;
    }
  }
  fs::remove_all(llama);
  fs::remove_all(qwen2);
}

// GGUF: golden checkpoints written as llama.cpp lays them out (scripts/gguf/write_gguf.py,
// f32: llama.cpp's names and shapes, Llama's q / k rows in its rotary order, Llama 3.1's
// scaling as rope_freqs) load through io/gguf_model.h and reproduce the goldens: the config,
// the tensor map, the row order and the llama3 scaling all come back from the file.
TEST(GgufParity, GoldenCheckpointsAsGgufFiles) {
  const std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const fs::path tmp = fs::path(::testing::TempDir()) / "tllm_gguf_parity";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  for (const std::string name : {"qwen2_untied", "qwen2_tied", "qwen3_hd128", "llama3_scaled", "llama_bias_hd64",
                                 "qwen3_moe", "qwen2_moe"}) {
    const fs::path file = tmp / (name + ".gguf");
    const std::string cmd = python + " " + TLLM_SOURCE_DIR + "/scripts/gguf/write_gguf.py model " +
                            (models_dir() / name).string() + " " + file.string();
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    const fs::path dir = materialize_gguf(file.string(), (tmp / "cache").string());
    const std::vector<Case> cases = load_cases(name);
    LLMEngine engine(engine_config_at(dir, 16, 512, false));
    EXPECT_EQ(engine.model_config().architecture,
              nlohmann::json::parse(std::ifstream(models_dir() / name / "config.json"))["architectures"][0]);
    for (const Case& k : cases) {
      auto out = engine.generate({k.prompt}, {greedy_params(k.greedy.size())});
      check_completion(k, out[0], name + " from GGUF");
    }
  }
  fs::remove_all(tmp);
}

INSTANTIATE_TEST_SUITE_P(HfGoldens, Parity,
                         ::testing::ValuesIn(model_names([](const nlohmann::json&) { return true; })),
                         [](const auto& info) { return info.param; });
