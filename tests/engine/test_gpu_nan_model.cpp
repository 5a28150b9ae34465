// A model whose logits are NaN (the demo model with a NaN final norm: what weights that
// overflow give) on CUDA, as test_token_constraints.cpp and test_pooling.cpp check it on the
// CPU: free requests still run on the stand-in id 0 and every draw is counted in the stats;
// requests whose constraints refuse that stand-in end with an error naming the cause, on the
// synchronous and the pipelined engine; pooled vectors fail. Skips without a GPU.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "../server/test_util.h"
#include "engine/engine.h"
#include "engine_cases.h"
#include "kernels/backend.h"
#include "nan_model.h"

namespace tllm {
namespace {

EngineConfig cuda_config(const std::string& dir) {
  EngineConfig c;
  c.model_dir = dir;
  c.device = "cuda";
  c.num_kv_blocks = 256;
  return c;
}

SamplingParams params(int max_tokens, float temperature) {
  return ::tllm::testing::test_params(max_tokens, temperature, 7);
}

TEST(GpuNanModel, FreeRequestsRunConstrainedOnesFailAndEveryDrawIsCounted) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
  TLLM_REQUIRE_TINY_MODEL(src);
  const std::filesystem::path dir = ::tllm::testing::write_nan_norm_model(src, "tinyllm_gpu_nan_model");
  for (const char* async : {"off", "on"}) {
    SCOPED_TRACE(async);
    EngineConfig c = cuda_config(dir.string());
    c.async_scheduling = async;
    LLMEngine engine(c);
    {  // one request alone: the batch-1 decode path (the decoder-stack kernel where it runs)
      engine.add_request("alone", {1, 2, 3}, params(5, 0.0f));
      auto [tokens, last] = ::tllm::testing::run_to_completion(engine);
      EXPECT_TRUE(last["alone"].finished && last["alone"].error.empty()) << last["alone"].error;
      EXPECT_EQ(tokens["alone"], std::vector<int32_t>(5, 0)) << "no finite logit: greedy's stand-in, id 0";
      EXPECT_EQ(engine.stats().nonfinite_logit_rows, 5u);
    }
    const uint64_t before = engine.stats().nonfinite_logit_rows;
    SamplingParams allowed = params(4, 0.8f), choice = params(4, 0.0f);
    allowed.allowed_token_ids = {5, 6, 7};
    choice.output_format = {OutputPiece::any_of({"yes", "no"})};
    engine.add_request("allowed", {1, 2, 3}, allowed);
    engine.add_request("choice", {1, 2, 3}, choice);
    engine.add_request("greedy", {1, 2, 3}, params(4, 0.0f));
    engine.add_request("sampled", {4, 5}, params(4, 0.8f));
    auto [tokens, last] = ::tllm::testing::run_to_completion(engine);
    for (const char* id : {"allowed", "choice"}) {
      EXPECT_TRUE(last[id].finished) << id;
      EXPECT_NE(last[id].error.find("the model's logits have no finite value"), std::string::npos)
          << id << ": " << last[id].error;
      EXPECT_TRUE(tokens[id].empty()) << id;
    }
    for (const char* id : {"greedy", "sampled"}) {
      EXPECT_TRUE(last[id].error.empty()) << id << ": " << last[id].error;
      EXPECT_EQ(tokens[id], std::vector<int32_t>(4, 0)) << id;
    }
    // 4 + 4 draws of the free requests and the failed first draws of the others; the
    // pipelined engine had also launched the failed requests' second draw.
    EXPECT_EQ(engine.stats().nonfinite_logit_rows - before, async == std::string("off") ? 10u : 12u);
  }
  {
    EngineConfig c = cuda_config(dir.string());
    c.runner = "pooling";
    LLMEngine engine(c);
    try {
      engine.embed({{1, 2, 3}});
      ADD_FAILURE() << "a NaN vector was returned";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("not finite"), std::string::npos) << e.what();
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tllm
