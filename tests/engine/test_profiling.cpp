// TLLM_PROFILE=1 wraps the engine's backend in ProfilingBackend (kernels/profiling_backend.h):
// every op is forwarded to the real backend and timed. A profiled engine must produce what
// the plain one does (the HF goldens' greedy tokens, the same log-probs to the bit), and its
// report, printed when the engine ends, must name the ops the forward ran: the composite ones
// (q|k|v + RoPE + cache write, the residual norms, the gate|up activation) included, for a
// Qwen2 model (no q/k norms) and a Qwen3 one (q/k norms).
#include <gtest/gtest.h>

#include <cstdlib>

#include "engine/engine.h"
#include "goldens.h"

using namespace tllm;
using namespace tllm::goldens;

namespace {

EngineConfig config(const std::string& name) {
  EngineConfig c;
  c.model_dir = (models_dir() / name).string();
  c.device = "cpu";
  c.dtype = "float32";
  c.threads = 2;
  c.block_size = 16;
  c.num_kv_blocks = 64;
  c.skip_tokenizer_init = true;
  return c;
}

SamplingParams greedy(int n) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = n;
  p.ignore_eos = true;
  p.logprobs = 5;
  p.detokenize = false;
  return p;
}

class Profiling : public ::testing::TestWithParam<std::string> {};

TEST_P(Profiling, ProfiledEngineGivesThePlainResultsAndReportsItsOps) {
  const std::string name = GetParam();
  const std::vector<Case> cases = load_cases(name);
  ASSERT_FALSE(cases.empty());
  const Case& k = cases.front();
  const int n = static_cast<int>(k.greedy.size());

  std::vector<LLMEngine::Completion> plain;
  {
    LLMEngine engine(config(name));
    plain = engine.generate({k.prompt}, {greedy(n)});
  }
  std::vector<LLMEngine::Completion> profiled;
  ::setenv("TLLM_PROFILE", "1", 1);
  ::testing::internal::CaptureStderr();
  {
    LLMEngine engine(config(name));
    profiled = engine.generate({k.prompt}, {greedy(n)});
  }  // the report is printed here
  const std::string report = ::testing::internal::GetCapturedStderr();
  ::unsetenv("TLLM_PROFILE");

  ASSERT_EQ(plain.size(), 1u);
  ASSERT_EQ(profiled.size(), 1u);
  EXPECT_EQ(plain[0].token_ids, k.greedy) << name;
  EXPECT_EQ(profiled[0].token_ids, plain[0].token_ids) << name;
  ASSERT_EQ(profiled[0].logprobs.size(), plain[0].logprobs.size());
  for (size_t s = 0; s < plain[0].logprobs.size(); ++s) {
    ASSERT_EQ(profiled[0].logprobs[s].top.size(), plain[0].logprobs[s].top.size());
    for (size_t i = 0; i < plain[0].logprobs[s].top.size(); ++i)
      EXPECT_EQ(profiled[0].logprobs[s].top[i], plain[0].logprobs[s].top[i]) << name << " step " << s;
  }
  EXPECT_NE(report.find("[profiling]"), std::string::npos) << report;
  for (const char* op : {"embedding", "linear_rope_kv_write", "attention", "linear_residual_norm",
                         "linear_silu_mul", "gather_rows"})
    EXPECT_NE(report.find(op), std::string::npos) << name << ": no " << op << " in\n" << report;
  // Decode steps run the attention's first half with one token.
  EXPECT_NE(report.find("linear_rope_kv_write T=1"), std::string::npos) << report;
}

INSTANTIATE_TEST_SUITE_P(Models, Profiling, ::testing::Values("qwen2_untied", "qwen3_hd128"));

}  // namespace
