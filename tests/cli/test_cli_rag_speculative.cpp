// tinyllm rag ask with speculative decoding: the flags go to the generator (n-gram lookup
// suits an answer that quotes its passages), not to the embedding model, which only prefills
// (it was refused: "a pooling model has no decode to speculate on"). The greedy answer is the
// one without speculation, as speculative decoding writes exactly the plain decode. And
// tinyllm embed names --input-ids when an id is outside the vocabulary.
#include <unistd.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_run.h"

namespace fs = std::filesystem;

using namespace tllm::cli_test;

TEST(CliRag, AskTakesSpeculativeDecodingForItsGenerator) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  const std::string draft = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo-draft";
  if (!fs::exists(model) || !fs::exists(draft)) GTEST_SKIP() << "the demo models are not in models/";
  const fs::path root = fs::temp_directory_path() / ("tllm_cli_rag_spec_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  std::ofstream(root / "a.txt") << "And God said, Let there be light: and there was light. And God saw the light, "
                                   "that it was good.\nThe lighthouse keeper lit the lamp at dusk.\n";
  const std::string index = (root / "x.idx").string();
  const std::string common = "--model " + model + " --kv-cache-memory 64MiB --threads 2 ";
  const Result built = run("rag index " + common + "--input " + (root / "a.txt").string() + " --index " + index +
                               " --chunk-tokens 16 --chunk-overlap 0");
  ASSERT_EQ(built.status, 0) << built.out;
  const std::string ask = "rag ask " + common + "--index " + index + " --generator " + model +
                          " --query \"What did God say?\" --temperature 0 --max-tokens 40 --ignore-eos ";
  const Result plain = run_stdout(ask);
  ASSERT_EQ(plain.status, 0) << plain.out;
  ASSERT_NE(plain.out.find("Sources:\n[1] "), std::string::npos) << plain.out;
  for (const std::string& spec : std::vector<std::string>{"--speculative-model \"[ngram]\" --num-speculative-tokens 4",
                                 "--speculative-config '{\"method\": \"ngram\", \"prompt_lookup_max\": 3}'",
                                 "--speculative-model " + draft + " --num-speculative-tokens 3"}) {
    const Result r = run_stdout(ask + spec);
    EXPECT_EQ(r.status, 0) << spec << ": " << run(ask + spec).out;
    EXPECT_EQ(r.out, plain.out) << spec;
  }
  // Index and query have no decode: speculative flags there are still refused by name.
  const Result q = run("rag query " + common + "--index " + index + " --query light --speculative-model \"[ngram]\"");
  EXPECT_EQ(q.status, 1);
  EXPECT_NE(q.out.find("no decode to speculate on"), std::string::npos) << q.out;
  fs::remove_all(root);
}

// An id beyond the vocabulary is the option's fault, said as such (the engine's message named
// an internal request id, "request gen-0-0: token id 99999 ...").
TEST(CliEmbed, InputIdsOutsideTheVocabularyNameTheOption) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  if (!fs::exists(model)) GTEST_SKIP() << "the demo model is not in models/";
  const std::string base = "embed --model " + model + " --kv-cache-memory 64MiB --threads 2 ";
  const Result bad = run(base + "--input-ids 1,2,4096");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find("error: --input-ids: token id 4096 is outside the model's vocabulary [0, 4096)"),
            std::string::npos)
      << bad.out;
  const Result ok = run_stdout(base + "--input-ids 1,2,4095");
  EXPECT_EQ(ok.status, 0);
  EXPECT_NE(ok.out.find("\"tokens\":3"), std::string::npos) << ok.out;
}
