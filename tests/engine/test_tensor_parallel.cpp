// Tensor parallelism on CPU ranks (dist/tensor_parallel.h): the model's heads and MLP inner
// dimension split over 2 or 4 ranks, partial sums of o and down added over the ranks in
// host memory. Every golden model that splits must still reproduce HF's float64 goldens
// within the CPU f32 tolerance (1e-4): dense Qwen2 / Qwen3 / Llama (biases, the o bias added
// once, q/k norms, MQA with its one KV head kept by every rank, sliding windows, yarn,
// dynamic RoPE, tied and untied embeddings) and both MoE families (every expert's inner
// dimension split). The same code path runs NCCL between GPUs (test_gpu_tensor_parallel.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <tuple>

#include "../server/test_util.h"
#include "engine/engine.h"
#include "engine_cases.h"
#include "goldens.h"
#include "model/config.h"

using namespace tllm;
using namespace tllm::goldens;

namespace {

EngineConfig tp_config(const fs::path& dir, int tp, int max_batched = 512) {
  EngineConfig c;
  c.model_dir = dir.string();
  c.device = "cpu";
  c.dtype = "float32";
  c.threads = 2;
  c.tensor_parallel_size = tp;
  c.max_num_batched_tokens = max_batched;
  c.num_kv_blocks = 256;
  c.skip_tokenizer_init = true;
  return c;
}

// Float golden models whose heads split over `tp` ranks.
std::vector<std::string> splittable(int tp) {
  return model_names([tp](const nlohmann::json& c) {
    const int heads = c["num_attention_heads"].get<int>();
    const int kv = c.value("num_key_value_heads", heads);
    const int inter = c.contains("moe_intermediate_size") ? c["moe_intermediate_size"].get<int>()
                                                          : c["intermediate_size"].get<int>();
    return heads % tp == 0 && (kv % tp == 0 || tp % kv == 0) && inter % tp == 0 &&
           c["intermediate_size"].get<int>() % tp == 0;
  });
}

}  // namespace

class TensorParallelCpu : public ::testing::TestWithParam<std::string> {};

TEST_P(TensorParallelCpu, TwoRanksReproduceTheGoldens) {
  const std::string name = GetParam();
  const std::vector<Case> cases = load_cases(name);
  // Every prompt alone, then all together in 7-token chunks mixed with decode steps.
  for (const Case& k : cases) {
    LLMEngine engine(tp_config(models_dir() / name, 2));
    auto out = engine.generate({k.prompt}, {greedy_params(k.greedy.size())});
    check_completion(k, out[0], name + " over 2 ranks, alone");
  }
  LLMEngine engine(tp_config(models_dir() / name, 2, 7));
  std::vector<std::vector<int32_t>> prompts;
  for (const Case& k : cases) prompts.push_back(k.prompt);
  auto out = engine.generate(prompts, {greedy_params(cases[0].greedy.size())});
  for (size_t i = 0; i < cases.size(); ++i)
    check_completion(cases[i], out[i], name + " over 2 ranks, batched, prompt " + std::to_string(i));
  const EngineStats st = engine.stats();  // every block back (free, or free holding a cached prefix)
  EXPECT_EQ(st.num_free_kv_blocks + st.num_cached_free_blocks, st.num_kv_blocks);
}

INSTANTIATE_TEST_SUITE_P(HfGoldens, TensorParallelCpu, ::testing::ValuesIn(splittable(2)),
                         [](const auto& info) { return info.param; });

// Four ranks: with 2 KV heads (qwen2_tied) each is kept by two ranks; with 4 (qwen2_untied)
// each rank has its own; Qwen3-MoE's experts split four ways.
TEST(TensorParallel, FourRanksReproduceTheGoldens) {
  const std::vector<std::string> four = splittable(4);
  for (const std::string name : {"qwen2_tied", "qwen2_untied", "qwen3_moe"}) {
    ASSERT_NE(std::find(four.begin(), four.end(), name), four.end()) << name << " does not split over 4 ranks";
    const std::vector<Case> cases = load_cases(name);
    LLMEngine engine(tp_config(models_dir() / name, 4));
    std::vector<std::vector<int32_t>> prompts;
    for (const Case& k : cases) prompts.push_back(k.prompt);
    auto out = engine.generate(prompts, {greedy_params(cases[0].greedy.size())});
    for (size_t i = 0; i < cases.size(); ++i)
      check_completion(cases[i], out[i], name + " over 4 ranks, prompt " + std::to_string(i));
  }
}

// Weights quantized on load: each rank keeps its block of the one-device model's codes, so
// two ranks give what one device gives, up to the order of the sums (f32: within 1e-4).
TEST(TensorParallel, QuantizedOnLoadSplitsTheOneDeviceCodes) {
  for (const auto& [name, quantization, group] :
       std::vector<std::tuple<std::string, std::string, int>>{{"qwen3_hd128", "int4", 32}, {"qwen2_tied", "int8", 64},
                                                              {"qwen3_moe", "int8", 64}}) {
    const Case k = load_cases(name)[0];
    std::vector<LLMEngine::Completion> out;
    for (int tp : {1, 2}) {
      EngineConfig c = tp_config(models_dir() / name, tp);
      c.quantization = quantization;
      c.quant_group_size = group;
      LLMEngine engine(c);
      out.push_back(engine.generate({k.prompt}, {greedy_params(k.greedy.size())})[0]);
    }
    const std::string where = name + " " + quantization + " g" + std::to_string(group);
    ASSERT_EQ(out[1].token_ids, out[0].token_ids) << where;
    ASSERT_EQ(out[1].logprobs.size(), out[0].logprobs.size()) << where;
    for (size_t s = 0; s < out[0].logprobs.size(); ++s) {
      Top one;
      for (auto& [id, lp] : out[0].logprobs[s].top) one.emplace_back(id, lp);
      expect_top_match(one, out[1].logprobs[s].top, where + " step " + std::to_string(s));
    }
    // Quantized, the model is not the golden's float one (its log-probs move).
    double moved = 0;
    for (size_t s = 0; s < k.steps.size(); ++s)
      for (const auto& [id, lp] : out[0].logprobs[s].top)
        for (const auto& [rid, rlp] : k.steps[s])
          if (rid == id) moved = std::max(moved, std::fabs(lp - rlp));
    EXPECT_GT(moved, 1e-3) << where;
  }
}

// What cannot be split is refused when the engine starts, naming the reason.
TEST(TensorParallel, RefusesWhatItCannotSplit) {
  auto refused = [](const EngineConfig& c, const std::string& what) {
    try {
      LLMEngine engine(c);
      ADD_FAILURE() << "accepted: " << c.model_dir << " over " << c.tensor_parallel_size << " ranks";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  const fs::path m = models_dir();
  refused(tp_config(m / "qwen3_gqa7_bias", 2), "num_attention_heads 7 is not divisible by the tensor parallel size 2");
  refused(tp_config(m / "qwen3_gqa7_bias", 7), "intermediate_size 160 is not divisible by the tensor parallel size 7");
  EngineConfig q = tp_config(m / "qwen3_hd128", 2);  // down: 96 of 192 columns per rank
  q.quantization = "int4";
  q.quant_group_size = 64;
  refused(q, "down_proj.weight: the 96 columns of one tensor-parallel rank are not whole groups of 64");
  EngineConfig a = tp_config(m / "qwen2_tied", 2);
  a.async_scheduling = "on";
  refused(a, "drop --async-scheduling on");
  refused(tp_config(m / "qwen2_tied", 0), "tensor parallel size must be >= 1, got 0");
}

TEST(TensorParallel, ShardConfigNamesTheFieldThatDoesNotDivide) {
  ModelConfig c;
  c.architecture = "Qwen2ForCausalLM";
  c.num_layers = 2;
  c.num_heads = 12;
  c.num_kv_heads = 4;
  c.head_dim = 16;
  c.intermediate_size = 96;
  const ModelConfig two = c.shard(2);
  EXPECT_EQ(two.num_heads, 6);
  EXPECT_EQ(two.num_kv_heads, 2);
  EXPECT_EQ(two.intermediate_size, 48);
  EXPECT_THROW(c.shard(8), std::exception);  // 12 heads do not split 8 ways
  try {
    (void)c.shard(3);  // 12 heads split, 4 KV heads neither divide by 3 nor 3 by them
    ADD_FAILURE() << "shard(3) accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("num_key_value_heads 4 neither divides nor is a multiple of the tensor "
                                         "parallel size 3"),
              std::string::npos)
        << e.what();
  }
  c.num_kv_heads = 2;
  const ModelConfig six = c.shard(6);  // 2 KV heads over 6 ranks: each kept by 3
  EXPECT_EQ(six.num_heads, 2);
  EXPECT_EQ(six.num_kv_heads, 1);
  EXPECT_EQ(six.intermediate_size, 16);
}

// The shipped demo model over 2 ranks gives what one device gives: greedy and sampled (the
// draws see logits equal up to the order of the sums), with its draft model speculating
// (drafted on rank 0's backend, verified over both ranks), and as a pooling model.
TEST(TensorParallel, DemoModelSampledSpeculatedAndPooled) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  auto config = [&](int tp) {
    EngineConfig c;
    c.model_dir = dir;
    c.threads = 2;
    c.tensor_parallel_size = tp;
    c.num_kv_blocks = 512;
    return c;
  };
  std::vector<SamplingParams> params = {::tllm::testing::test_params(24), ::tllm::testing::test_params(24, 0.8f, 7)};
  for (SamplingParams& p : params) p.logprobs = 5;
  for (const SamplingParams& p : params) {
    LLMEngine one(config(1)), two(config(2));
    const auto prompts = ::tllm::testing::demo_prompts(one);
    const auto a = one.generate(prompts, {p});
    const std::string what = p.temperature > 0 ? "sampled" : "greedy";
    ::tllm::testing::expect_same_outputs(a, two.generate(prompts, {p}), what + ", 1 and 2 ranks", 1e-4);
    if (::tllm::testing::tiny_draft_dir().empty()) continue;
    EngineConfig c = config(2);
    c.speculative.model_dir = ::tllm::testing::tiny_draft_dir();
    c.speculative.num_tokens = 3;
    LLMEngine spec(c);
    ::tllm::testing::expect_same_outputs(a, spec.generate(prompts, {p}), what + ", 2 ranks with the draft", 1e-4);
    EXPECT_GT(spec.stats().spec_num_accepted_tokens, 0u) << what;
  }
  std::vector<std::vector<float>> vecs;
  for (int tp : {1, 2}) {
    EngineConfig c = config(tp);
    c.runner = "pooling";
    c.dtype = "float32";
    LLMEngine pool(c);
    for (auto& v : pool.embed({{5, 17, 200, 33, 81, 9}})) vecs.push_back(v);
  }
  ASSERT_EQ(vecs[0].size(), vecs[1].size());
  for (size_t i = 0; i < vecs[0].size(); ++i) EXPECT_NEAR(vecs[0][i], vecs[1][i], 1e-5) << "pooled vector, " << i;
}
