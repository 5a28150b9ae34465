// Pooling (embedding) models on CUDA (bf16) against the CPU (f32): last-token and mean vectors
// of the demo prompts (one of them over several prefill chunks) point the same way (cosine
// >= 0.999, the bf16 forward's rounding) and are unit length; the RAG pipeline on CUDA finds a
// chunk's own text first. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>

#include "../server/test_util.h"
#include "engine/engine.h"
#include "engine_cases.h"
#include "kernels/backend.h"
#include "rag/pipeline.h"

namespace tllm {
namespace {

EngineConfig pooling(const std::string& dir, const std::string& device, const std::string& type) {
  EngineConfig c;
  c.model_dir = dir;
  c.device = device;
  c.threads = 2;
  c.dtype = device == "cpu" ? "float32" : "auto";
  c.runner = "pooling";
  c.pooling_type = type;
  c.num_kv_blocks = 256;
  c.max_num_batched_tokens = 16;  // long prompts over several chunks
  return c;
}

TEST(GpuPooling, VectorsMatchTheCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
  TLLM_REQUIRE_TINY_MODEL(dir);
  for (const char* type : {"last", "mean"}) {
    SCOPED_TRACE(type);
    LLMEngine cpu(pooling(dir, "cpu", type)), gpu(pooling(dir, "cuda", type));
    auto prompts = ::tllm::testing::demo_prompts(cpu);
    std::string long_text;
    for (int k = 0; k < 6; ++k) long_text += "And the LORD spake unto Moses in the wilderness of Sinai. ";
    prompts.push_back(cpu.tokenizer()->encode(long_text));  // several 16-token chunks
    const auto a = cpu.embed(prompts), b = gpu.embed(prompts);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      double dot = 0, na = 0, nb = 0;
      for (size_t j = 0; j < a[i].size(); ++j) dot += double(a[i][j]) * b[i][j], na += double(a[i][j]) * a[i][j], nb += double(b[i][j]) * b[i][j];
      EXPECT_NEAR(std::sqrt(nb), 1.0, 1e-3) << "prompt " << i;
      EXPECT_GE(dot / std::sqrt(na * nb), 0.999) << "prompt " << i << " (" << prompts[i].size() << " tokens)";
    }
  }
}

TEST(GpuPooling, RagFindsAChunksOwnText) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
  TLLM_REQUIRE_TINY_MODEL(dir);
  LLMEngine embedder(pooling(dir, "cuda", "auto"));
  VectorIndex index(embedder.hidden_size(), {{"model", dir}});
  const std::vector<std::string> texts = {"The lighthouse keeper lit the lamp at dusk.", "Ships passed the strait.",
                                          "Knead the dough for ten minutes.", "Let it rise for two hours."};
  for (const std::string& t : texts)
    index.add(embedder.embed({embedder.tokenizer()->encode(t, true)})[0], {"doc", 0, t.size(), t});
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto hits = retrieve(embedder, index, texts[i], 2);
    EXPECT_EQ(hits[0].id, i);
    EXPECT_NEAR(hits[0].score, 1.0f, 1e-3f);
  }
}

}  // namespace
}  // namespace tllm
