// Pooling (embedding) models (engine/pooling.h) on the CPU. References: the demo model ties
// its lm_head to its embedding matrix E, so its logits are E h for the final-normed hidden
// state h that last-token pooling returns; mean pooling is the average of every prefix's
// last-token vector (causal attention); first-token (cls) pooling is the one-token prompt's.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "../server/test_util.h"
#include "core/error.h"
#include "engine/engine.h"
#include "engine/pooling.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "nan_model.h"
#include "tokenizer/tokenizer.h"

namespace tllm {
namespace {

namespace fs = std::filesystem;

EngineConfig pooling_config(const std::string& dir, const std::string& type = "auto",
                            std::optional<bool> normalize = std::nullopt) {
  EngineConfig c;
  c.model_dir = dir;
  c.threads = 2;
  c.dtype = "float32";
  c.runner = "pooling";
  c.pooling_type = type;
  c.pooling_normalize = normalize;
  c.block_size = 4;
  c.num_kv_blocks = 256;
  c.max_num_batched_tokens = 8;  // prompts over several chunks
  return c;
}

double norm(const std::vector<float>& v) {
  double n = 0;
  for (float x : v) n += static_cast<double>(x) * x;
  return std::sqrt(n);
}

TEST(Pooling, LastTokenIsWhatTheLogitsAreMadeOf) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  // The plain engine's top-20 log-probs of the next token after each prompt: log-prob
  // differences are logit differences, E_j h - E_k h = |h| (E_j e - E_k e) for the normalised
  // vector e, so the top-20 ids ordered by E e are those, and the ratio is one number |h|.
  EngineConfig gc;
  gc.model_dir = dir;
  gc.threads = 2;
  gc.dtype = "float32";
  gc.num_kv_blocks = 256;
  gc.block_size = 4;
  LLMEngine gen(gc);
  LLMEngine pool(pooling_config(dir));
  EXPECT_TRUE(pool.pooling());
  auto file = SafetensorsFile::open((fs::path(dir) / "model.safetensors").string());
  const Tensor E = file->get("model.embed_tokens.weight");
  ASSERT_EQ(E.dtype(), DType::BF16);
  const int64_t V = E.dim(0), H = E.dim(1);
  const auto& tok = *gen.tokenizer();
  std::vector<std::vector<int32_t>> prompts;
  for (const char* s : {"And the LORD said unto Moses,", "A computer is a machine that", "In the beginning"})
    prompts.push_back(tok.encode(s));
  const auto vecs = pool.embed(prompts);
  SamplingParams sp;
  sp.temperature = 0;
  sp.max_tokens = 1;
  sp.logprobs = 20;
  const auto want = gen.generate(prompts, {sp});
  for (size_t p = 0; p < prompts.size(); ++p) {
    const std::vector<float>& e = vecs[p];
    ASSERT_EQ(static_cast<int64_t>(e.size()), H);
    EXPECT_NEAR(norm(e), 1.0, 1e-5);
    std::vector<double> score(V);
    for (int64_t j = 0; j < V; ++j) {
      double d = 0;
      for (int64_t i = 0; i < H; ++i) d += bf16_to_f32(E.data<uint16_t>()[j * H + i]) * static_cast<double>(e[i]);
      score[j] = d;
    }
    const auto& top = want[p].logprobs[0].top;
    ASSERT_EQ(top.size(), 20u);
    const double scale = (top[0].second - top[19].second) / (score[top[0].first] - score[top[19].first]);
    EXPECT_GT(scale, 1.0);
    for (size_t k = 1; k < top.size(); ++k) {
      EXPECT_GE(score[top[k - 1].first], score[top[k].first] - 1e-6) << "prompt " << p << ", rank " << k;
      const double got = scale * (score[top[0].first] - score[top[k].first]);
      EXPECT_NEAR(got, top[0].second - top[k].second, 1e-3) << "prompt " << p << ", rank " << k;
    }
  }
}

TEST(Pooling, MeanAndClsFromEveryPrefixesLastToken) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  LLMEngine last(pooling_config(dir, "last", false));
  LLMEngine mean(pooling_config(dir, "mean", false));
  LLMEngine cls(pooling_config(dir, "cls", false));
  const std::vector<int32_t> p = last.tokenizer()->encode("And God said, Let there be light: and there was light.");
  ASSERT_GT(p.size(), 8u);  // over two 8-token chunks
  std::vector<std::vector<int32_t>> prefixes;
  for (size_t n = 1; n <= p.size(); ++n) prefixes.emplace_back(p.begin(), p.begin() + static_cast<long>(n));
  const auto each = last.embed(prefixes);
  const auto m = mean.embed({p, p})[1];  // the second one after the first: no state carried over
  const auto c = cls.embed({p})[0];
  for (size_t i = 0; i < m.size(); ++i) {
    double avg = 0;
    for (const auto& v : each) avg += v[i];
    avg /= static_cast<double>(each.size());
    EXPECT_NEAR(m[i], avg, 1e-4 * (1 + std::fabs(avg))) << i;
    EXPECT_NEAR(c[i], each[0][i], 1e-4 * (1 + std::fabs(each[0][i]))) << i;
  }
  EXPECT_GT(norm(m), 1.5);  // not normalised (the demo's final norm leaves |h| >> 1)
}

// The random-weight checkpoint with its tensors renamed as transformers' Qwen3Model saves them
// (no "model." prefix, no lm_head): the same vectors as the original.
// A pooled vector with NaN in it (a model whose weights overflow): the request fails naming
// why, and embed() throws it, for every pooling type, normalised or not. (The server wrote
// such a vector's values as -9999.0, and scores of 0.)
TEST(Pooling, VectorsThatAreNotFiniteFailTheRequest) {
  const fs::path dir = ::tllm::testing::write_nan_norm_model(::tllm::testing::tiny_model_dir(), "tinyllm_nan_pool");
  for (const char* type : {"last", "mean", "cls"})
    for (bool normalize : {true, false}) {
      LLMEngine engine(pooling_config(dir.string(), type, normalize));
      try {
        engine.embed({{1, 2, 3}});
        ADD_FAILURE() << type << " " << normalize << ": embedded";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("not finite (NaN or inf)"), std::string::npos) << e.what();
      }
      engine.add_request("r", {4, 5}, SamplingParams{});
      RequestOutput last;
      while (engine.has_unfinished_requests())
        for (RequestOutput& o : engine.step()) last = o;
      EXPECT_TRUE(last.finished && last.embedding.empty()) << type;
      EXPECT_NE(last.error.find("pooled vector has values that are not finite"), std::string::npos) << last.error;
    }
  fs::remove_all(dir);
}

TEST(Pooling, BareDecoderCheckpointsLoad) {
  const fs::path src = fs::path(TLLM_SOURCE_DIR) / "tests" / "data" / "models" / "qwen2_untied";
  const fs::path dst = fs::temp_directory_path() / ("tllm_bare_" + std::to_string(::getpid()));
  fs::remove_all(dst);
  fs::create_directories(dst);
  fs::copy_file(src / "config.json", dst / "config.json");
  auto file = SafetensorsFile::open((src / "model.safetensors").string());
  std::vector<std::pair<std::string, Tensor>> renamed;
  for (const auto& [name, info] : file->tensors()) {
    if (name == "lm_head.weight") continue;
    renamed.emplace_back(name.rfind("model.", 0) == 0 ? name.substr(6) : name, file->get(name));
  }
  write_safetensors((dst / "model.safetensors").string(), renamed);
  EngineConfig a = pooling_config(src.string()), b = pooling_config(dst.string());
  a.skip_tokenizer_init = b.skip_tokenizer_init = true;
  LLMEngine ea(a), eb(b);
  const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {42}};
  const auto va = ea.embed(prompts), vb = eb.embed(prompts);
  ASSERT_EQ(va.size(), vb.size());
  for (size_t i = 0; i < va.size(); ++i) EXPECT_EQ(va[i], vb[i]) << i;
  // Without an lm_head it cannot generate: the loader says which tensor is missing.
  EngineConfig g = b;
  g.runner = "generate";
  try {
    LLMEngine e(g);
    ADD_FAILURE() << "generation without an lm_head";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("lm_head.weight"), std::string::npos) << e.what();
  }
  fs::remove_all(dst);
}

TEST(Pooling, SentenceTransformersFilesAndRefusals) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const fs::path tmp = fs::temp_directory_path() / ("tllm_pool_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp / "1_Pooling");
  std::ofstream(tmp / "1_Pooling" / "config.json") << R"({"word_embedding_dimension": 256, "pooling_mode_mean_tokens": true})";
  std::ofstream(tmp / "modules.json") << R"([{"idx": 0, "type": "sentence_transformers.models.Transformer"}])";
  PoolingConfig c = PoolingConfig::resolve(tmp.string(), "auto");
  EXPECT_EQ(c.type, PoolingType::Mean);
  EXPECT_FALSE(c.normalize);  // modules.json without a Normalize module
  std::ofstream(tmp / "modules.json") << R"([{"type": "sentence_transformers.models.Normalize"}])";
  std::ofstream(tmp / "1_Pooling" / "config.json") << R"({"pooling_mode_lasttoken": true})";
  c = PoolingConfig::resolve(tmp.string(), "auto");
  EXPECT_EQ(c.type, PoolingType::Last);
  EXPECT_TRUE(c.normalize);
  EXPECT_EQ(PoolingConfig::resolve(tmp.string(), "cls", false).type, PoolingType::Cls);
  EXPECT_FALSE(PoolingConfig::resolve(tmp.string(), "cls", false).normalize);
  EXPECT_THROW(PoolingConfig::resolve(tmp.string(), "max"), InvalidArgument);
  // Modes this engine does not pool are refused, not served as the last token; so are two
  // modes at once (sentence-transformers concatenates them). --pooling-type overrides either.
  const std::pair<const char*, const char*> refused[] = {
      {R"({"pooling_mode_max_tokens": true, "pooling_mode_lasttoken": false})", "pooling_mode_max_tokens is not supported"},
      {R"({"pooling_mode_weightedmean_tokens": true})", "pooling_mode_weightedmean_tokens is not supported"},
      {R"({"pooling_mode_mean_tokens": true, "pooling_mode_cls_token": true})",
       "turns on both pooling_mode_mean_tokens and pooling_mode_cls_token"}};
  for (const auto& [file, message] : refused) {
    std::ofstream(tmp / "1_Pooling" / "config.json") << file;
    try {
      PoolingConfig::resolve(tmp.string(), "auto");
      ADD_FAILURE() << file << " was accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
    EXPECT_EQ(PoolingConfig::resolve(tmp.string(), "mean").type, PoolingType::Mean);
  }
  std::ofstream(tmp / "1_Pooling" / "config.json") << R"({"pooling_mode_cls_token": false})";
  EXPECT_EQ(PoolingConfig::resolve(tmp.string(), "auto").type, PoolingType::Last);
  fs::remove_all(tmp);

  EngineConfig e = pooling_config(dir);
  e.speculative.method = "ngram";
  EXPECT_THROW(LLMEngine x(e), InvalidArgument);
  e = pooling_config(dir);
  e.runner = "rerank";
  EXPECT_THROW(LLMEngine x(e), InvalidArgument);
  EngineConfig g = pooling_config(dir);
  g.runner = "generate";
  LLMEngine gen(g);
  EXPECT_FALSE(gen.pooling());
  EXPECT_THROW(gen.embed({{1, 2}}), InvalidArgument);
  // A pooling request may fill the context (no tokens to generate), not exceed it.
  EngineConfig s = pooling_config(dir);
  s.max_model_len = 16;
  LLMEngine pool(s);
  EXPECT_EQ(pool.embed({std::vector<int32_t>(16, 7)})[0].size(), 256u);
  EXPECT_THROW(pool.embed({std::vector<int32_t>(17, 7)}), InvalidArgument);
}

// modules.json as vLLM reads it: the Pooling module's config lives where its "path" says (not
// always 1_Pooling), and a Dense module (a projection of the pooled vector, whose weights this
// engine does not apply) is refused rather than served as the model's vectors. The pooling the
// files pick is the one the engine pools: mean from a 2_Pooling folder, against the average of
// every prefix's last-token vector.
TEST(Pooling, ModulesJsonNamesThePoolingFolderAndDenseIsRefused) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const fs::path tmp = fs::temp_directory_path() / ("tllm_pool_modules_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp / "2_Pooling");
  for (const auto& e : fs::directory_iterator(dir)) fs::copy_file(e.path(), tmp / e.path().filename());
  std::ofstream(tmp / "2_Pooling" / "config.json") << R"({"pooling_mode_mean_tokens": true})";
  std::ofstream(tmp / "modules.json")
      << R"([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
             {"idx": 1, "name": "1", "path": "1_Dropout", "type": "sentence_transformers.models.Dropout"},
             {"idx": 2, "name": "2", "path": "2_Pooling", "type": "sentence_transformers.models.Pooling"},
             {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"}])";
  const PoolingConfig c = PoolingConfig::resolve(tmp.string(), "auto");
  EXPECT_EQ(c.type, PoolingType::Mean);
  EXPECT_TRUE(c.normalize);
  LLMEngine files(pooling_config(tmp.string())), last(pooling_config(dir, "last", false));
  const std::vector<int32_t> p = last.tokenizer()->encode("And God said, Let there be light.");
  std::vector<std::vector<int32_t>> prefixes;
  for (size_t n = 1; n <= p.size(); ++n) prefixes.emplace_back(p.begin(), p.begin() + static_cast<long>(n));
  const auto each = last.embed(prefixes);
  std::vector<float> avg(each[0].size(), 0.0f);
  for (size_t i = 0; i < avg.size(); ++i) {
    double a = 0;
    for (const auto& v : each) a += v[i];
    avg[i] = static_cast<float>(a / static_cast<double>(each.size()));
  }
  l2_normalize(avg);
  const auto got = files.embed({p})[0];
  ASSERT_EQ(got.size(), avg.size());
  EXPECT_NEAR(norm(got), 1.0, 1e-5);
  for (size_t i = 0; i < avg.size(); ++i) EXPECT_NEAR(got[i], avg[i], 1e-4) << i;

  std::ofstream(tmp / "modules.json")
      << R"([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
             {"idx": 1, "name": "1", "path": "2_Pooling", "type": "sentence_transformers.models.Pooling"},
             {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
             {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"}])";
  for (const char* type : {"auto", "last"}) {
    try {
      PoolingConfig::resolve(tmp.string(), type);
      ADD_FAILURE() << "a Dense module was accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("the module 2_Dense (sentence_transformers.models.Dense) projects the pooled "
                                           "vector"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(LLMEngine x(pooling_config(tmp.string())), InvalidArgument);
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace tllm
