// Requests preempted by a full KV cache and recomputed later give what they give in a roomy
// cache: the engine on the demo model, a 12-block cache for four 80-token requests.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../server/test_util.h"
#include "engine/engine.h"
#include "tokenizer/tokenizer.h"

namespace tllm {
namespace {

EngineConfig config(const std::string& dir, int num_kv_blocks) {
  EngineConfig c;
  c.model_dir = dir;
  c.device = "cpu";
  c.threads = 2;
  c.max_num_seqs = 4;
  c.num_kv_blocks = num_kv_blocks;
  return c;
}

// Prompt logprobs go out with a request's first output. A request preempted after that
// recomputes its prompt without them: it used to write them into the table it had handed
// over, which crashed the server (a soak found it through completions' echo + logprobs).
TEST(Preemption, PromptLogprobsGoOutOnceWhenThePromptIsRecomputed) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  LLMEngine small(config(dir, 12));
  LLMEngine roomy(config(dir, 256));
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 4; ++i)
    prompts.push_back(small.tokenizer()->encode(
        std::to_string(i + 1) + " And the LORD said unto Moses, Stretch out thine hand over the sea", true));
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = 60;
  p.ignore_eos = true;
  p.prompt_logprobs = 1;
  p.logprobs = 1;
  const std::vector<SamplingParams> ps(prompts.size(), p);
  const auto got = small.generate(prompts, ps);
  EXPECT_GT(small.stats().num_preemptions, 0u);
  const auto want = roomy.generate(prompts, ps);
  EXPECT_EQ(roomy.stats().num_preemptions, 0u);
  for (size_t i = 0; i < prompts.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].token_ids, want[i].token_ids);
    ASSERT_TRUE(got[i].prompt_logprobs && want[i].prompt_logprobs);
    const auto& g = *got[i].prompt_logprobs;
    const auto& w = *want[i].prompt_logprobs;
    ASSERT_EQ(g.size(), prompts[i].size());
    ASSERT_EQ(g.size(), w.size());
    EXPECT_FALSE(g[0].has_value());  // the first token has no logprob
    for (size_t k = 1; k < g.size(); ++k) {
      ASSERT_TRUE(g[k] && w[k]) << k;
      EXPECT_EQ(g[k]->token, prompts[i][k]);
      EXPECT_EQ(g[k]->token, w[k]->token);
      EXPECT_NEAR(g[k]->logprob, w[k]->logprob, 1e-4) << k;
      EXPECT_EQ(g[k]->rank, w[k]->rank) << k;
    }
  }
  const EngineStats s = small.stats();
  EXPECT_EQ(s.num_free_kv_blocks + s.num_cached_free_blocks, s.num_kv_blocks);
}

}  // namespace
}  // namespace tllm
