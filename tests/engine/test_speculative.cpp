// Speculative decoding (engine/speculative.h) on the CPU with the shipped demo model and its
// draft. Verification keeps a draft only where the target draws that very token with the
// plain decode's seed and offset, so the outputs must be the plain engine's: the same tokens,
// texts and finish reasons, log-probs within the float rounding of a (k+1)-token forward
// against a one-token one. The drafts must also be taken (counters), and every block freed.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../server/test_util.h"
#include "engine_cases.h"
#include "core/error.h"
#include "engine/engine.h"
#include "engine/json_schema.h"
#include "engine/speculative.h"
#include "io/json.h"
#include "kernels/backend.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace tllm {
namespace {

#define REQUIRE_DEMO_MODELS()                                                                       \
  if (::tllm::testing::tiny_model_dir().empty() || ::tllm::testing::tiny_draft_dir().empty())       \
  GTEST_SKIP() << "tiny-qwen2-demo / tiny-qwen2-demo-draft not found (models/ or ../shared/models/)"

EngineConfig config(int k, int max_batched = 64, int kv_tokens = 2048, std::string draft = "") {
  EngineConfig c;
  c.model_dir = ::tllm::testing::tiny_model_dir();
  c.threads = 2;
  c.block_size = 4;
  c.max_num_batched_tokens = max_batched;
  c.num_kv_blocks = kv_tokens / c.block_size;
  if (k > 0) {
    c.speculative.model_dir = draft.empty() ? ::tllm::testing::tiny_draft_dir() : draft;
    c.speculative.num_tokens = k;
  }
  return c;
}

SamplingParams params(int max_tokens, float temperature = 0.0f, uint64_t seed = 1) {
  return ::tllm::testing::test_params(max_tokens, temperature, seed);
}

std::vector<std::vector<int32_t>> prompts(LLMEngine& engine) { return ::tllm::testing::demo_prompts(engine); }

// Log-probs within the rounding of a (k+1)-token forward against a one-token one.
void expect_plain(const std::vector<LLMEngine::Completion>& plain, const std::vector<LLMEngine::Completion>& spec,
                  const std::string& where) {
  ::tllm::testing::expect_same_outputs(plain, spec, where, 1e-4);
}

void drain(LLMEngine& engine, const std::string& where) {
  EXPECT_FALSE(engine.has_unfinished_requests()) << where;
  const EngineStats s = engine.stats();
  EXPECT_EQ(s.num_free_kv_blocks + s.num_cached_free_blocks, s.num_kv_blocks) << where << ": blocks still held";
}

// Greedy and seeded sampling (top-p, top-k + min-p), log-probs, prompt log-probs, min_tokens
// with eos live, a stop string, a logit bias, max_tokens of 1 and 2 (no room for a draft, or one),
// a penalised request and a JSON-mode one (both decode plainly beside the drafted ones), allowed
// token ids and bad words, at k = 1, 4 and 7.
std::vector<SamplingParams> mixed_params() {
  std::vector<SamplingParams> ps;
  ps.push_back(params(40));
  ps.back().logprobs = 3;
  ps.push_back(params(45, 0.8f, 7));
  ps.back().top_p = 0.9f;
  ps.push_back(params(30, 1.0f, 11));
  ps.back().top_k = 20;
  ps.back().min_p = 0.05f;
  ps.push_back(params(30));
  ps.back().prompt_logprobs = 2;
  ps.back().min_tokens = 6;
  ps.back().ignore_eos = false;
  ps.push_back(params(35, 0.7f, 3));
  ps.back().stop = {"Israel"};
  ps.push_back(params(1));
  ps.push_back(params(2, 0.9f, 5));
  ps.push_back(params(25, 0.9f, 8));
  ps.back().logit_bias = {{11, 2.0f}, {269, -5.0f}};
  ps.push_back(params(20, 0.7f, 3));
  ps.back().presence_penalty = 0.5f;
  ps.back().repetition_penalty = 1.2f;
  ps.push_back(params(30));
  ps.back().output_format = {OutputPiece::object()};
  ps.back().ignore_eos = false;
  // vLLM's allowed_token_ids and bad_words (two-token words: the ban depends on the drafts
  // before the row).
  ps.push_back(params(20, 0.8f, 9));
  for (int32_t t = 200; t < 400; ++t) ps.back().allowed_token_ids.push_back(t);
  ps.push_back(params(30));
  ps.back().bad_words_ids = {{259}, {11, 269}, {11, 307}, {342, 533}};
  return ps;
}

TEST(Speculative, OutputsAreThePlainDecodes) {
  REQUIRE_DEMO_MODELS();
  const std::vector<SamplingParams> ps = mixed_params();
  LLMEngine plain(config(0));
  auto p = prompts(plain);
  std::vector<std::vector<int32_t>> all;
  for (size_t i = 0; i < ps.size(); ++i) all.push_back(p[i % p.size()]);
  const auto want = plain.generate(all, ps);
  for (int k : {1, 4, 7}) {
    LLMEngine spec(config(k));
    const auto got = spec.generate(all, ps);
    const std::string where = "k = " + std::to_string(k);
    expect_plain(want, got, where);
    drain(spec, where);
    const EngineStats s = spec.stats();
    EXPECT_GT(s.spec_num_drafts, 20u) << where;
    EXPECT_LE(s.spec_num_draft_tokens, s.spec_num_drafts * static_cast<uint64_t>(k)) << where;
    EXPECT_LE(s.spec_num_accepted_tokens, s.spec_num_draft_tokens) << where;
    // The demo pair agrees on some of these tokens (10-20% of the drafts here, more on greedy
    // Bible text; TheTargetAsItsOwnDraftKeepsEveryDraft checks the bookkeeping closely).
    EXPECT_GT(s.spec_num_accepted_tokens * 20, s.spec_num_draft_tokens) << where;
    // Every generated token counts once, drafted or not.
    uint64_t n = 0;
    for (const auto& c : got) n += c.token_ids.size();
    EXPECT_EQ(s.generation_tokens_total, n) << where;
  }
}

TEST(Speculative, TheTargetAsItsOwnDraftKeepsEveryDraft) {
  REQUIRE_DEMO_MODELS();
  // With the target as the draft, both draw from (nearly) the same logits with the same seeds:
  // a draft is lost only to the rounding of a (k+1)-token forward. A draft cache that missed a
  // token, or held one at the wrong place, would lose most of them.
  const std::string self = ::tllm::testing::tiny_model_dir();
  std::vector<SamplingParams> ps = {params(60), params(60, 0.8f, 4), params(50, 1.0f, 9)};
  LLMEngine plain(config(0));
  auto p = prompts(plain);
  p.resize(ps.size());
  const auto want = plain.generate(p, ps);
  LLMEngine spec(config(5, 64, 2048, self));
  expect_plain(want, spec.generate(p, ps), "self-draft");
  const EngineStats s = spec.stats();
  EXPECT_GT(s.spec_num_draft_tokens, 100u);
  EXPECT_GE(s.spec_num_accepted_tokens * 100, s.spec_num_draft_tokens * 98)
      << s.spec_num_accepted_tokens << " of " << s.spec_num_draft_tokens;
  drain(spec, "self-draft");
}

TEST(Speculative, PrefixCacheAndChunkedPrefill) {
  REQUIRE_DEMO_MODELS();
  // Round 2's prompts are round 1's prompts and completions and more: the target reuses the
  // cached blocks, the draft computes those tokens itself. A 12-token step budget chunks the
  // prefills and leaves drafts little room.
  std::vector<SamplingParams> ps = {params(30), params(30, 0.8f, 2), params(20, 0.6f, 6), params(25), params(30)};
  std::vector<std::vector<LLMEngine::Completion>> got[2];
  for (int mode = 0; mode < 2; ++mode) {
    LLMEngine engine(config(mode ? 4 : 0, 12));
    const auto p = prompts(engine);
    got[mode].push_back(engine.generate(p, ps));
    auto longer = p;
    for (size_t i = 0; i < longer.size(); ++i) {
      const auto& done = got[mode][0][i].token_ids;
      longer[i].insert(longer[i].end(), done.begin(), done.end());
      longer[i].insert(longer[i].end(), p[1].begin(), p[1].end());
    }
    got[mode].push_back(engine.generate(longer, ps));
    EXPECT_GT(engine.stats().prefix_cache_hits, 0u) << mode;
    drain(engine, mode ? "spec" : "plain");
    if (mode) {
      EXPECT_GT(engine.stats().spec_num_accepted_tokens, 0u);
    }
  }
  for (size_t r = 0; r < 2; ++r) expect_plain(got[0][r], got[1][r], "round " + std::to_string(r));
}

TEST(Speculative, PreemptionUnderASmallCache) {
  REQUIRE_DEMO_MODELS();
  // A 96-token cache for 5 requests of ~10 + 30 tokens, drafts taking blocks ahead: sequences
  // are preempted and recomputed (their draft caches too).
  LLMEngine plain(config(0));
  const auto want = plain.generate(prompts(plain), {params(30)});
  LLMEngine spec(config(4, 64, 96));
  const auto got = spec.generate(prompts(spec), {params(30)});
  EXPECT_GT(spec.stats().num_preemptions, 0u);
  expect_plain(want, got, "preemption");
  drain(spec, "preemption");
}

TEST(Speculative, AtTheEndOfTheContext) {
  REQUIRE_DEMO_MODELS();
  // max_model_len 24: requests that end exactly at the context's end, drafts cut to fit.
  std::vector<SamplingParams> ps;
  std::vector<std::vector<int32_t>> p;
  LLMEngine plain([] {
    EngineConfig c = config(0);
    c.max_model_len = 24;
    return c;
  }());
  for (const auto& q : prompts(plain)) {
    p.push_back(q);
    ps.push_back(params(24 - static_cast<int>(q.size())));
  }
  const auto want = plain.generate(p, ps);
  EngineConfig c = config(6);
  c.max_model_len = 24;
  LLMEngine spec(c);
  const auto got = spec.generate(p, ps);
  expect_plain(want, got, "context end");
  for (const auto& g : got) EXPECT_EQ(g.finish_reason, FinishReason::Length);
  drain(spec, "context end");
}

TEST(Speculative, AbortsAndRandomArrivalsKeepTheBooks) {
  REQUIRE_DEMO_MODELS();
  // Requests arrive and are aborted at random between steps (engine_cases.h; a 64-token cache:
  // preemption); the books balance and every block is free at the end.
  LLMEngine engine(config(4, 16, 64));
  ::tllm::testing::random_arrivals_and_aborts(engine, 99, "speculative");
  drain(engine, "random");
  EXPECT_GT(engine.stats().spec_num_drafts, 0u);
}

TEST(Speculative, EveryArchitectureOfTheTestCheckpoints) {
  // The random-weight test checkpoints (no tokenizer: ids in and out), each its own draft, f32:
  // dense and MoE, Qwen2 and Qwen3, sliding window, YaRN / dynamic RoPE, head dims 64 / 128.
  // The outputs are the plain decodes (greedy and seeded), nearly every draft kept.
  namespace fs = std::filesystem;
  const fs::path models = fs::path(TLLM_SOURCE_DIR) / "tests" / "data" / "models";
  for (const char* name : {"qwen2_tied", "qwen2_sliding", "qwen2_mqa_yarn", "qwen2_dynamic", "qwen3_hd128", "qwen3_moe",
                           "qwen2_moe"}) {
    EngineConfig c;
    c.model_dir = (models / name).string();
    c.threads = 2;
    c.dtype = "float32";
    c.block_size = 4;
    c.num_kv_blocks = 256;
    c.max_num_batched_tokens = 64;
    c.skip_tokenizer_init = true;
    std::vector<std::vector<int32_t>> p = {{1, 2, 3, 4, 5, 6, 7}, {100, 90, 80}, {42}};
    std::vector<SamplingParams> ps = {params(20), params(20, 0.9f, 5), params(16, 0.7f, 9)};
    for (SamplingParams& sp : ps) sp.detokenize = false;
    LLMEngine plain(c);
    const auto want = plain.generate(p, ps);
    c.speculative.model_dir = c.model_dir;
    c.speculative.num_tokens = 3;
    LLMEngine spec(c);
    expect_plain(want, spec.generate(p, ps), name);
    const EngineStats s = spec.stats();
    EXPECT_GT(s.spec_num_draft_tokens, 20u) << name;
    EXPECT_GE(s.spec_num_accepted_tokens * 100, s.spec_num_draft_tokens * 95)
        << name << ": " << s.spec_num_accepted_tokens << " of " << s.spec_num_draft_tokens;
    drain(spec, name);
  }
}

// A draft with a smaller vocabulary than the target's (as Qwen2.5-0.5B's 151,936 ids beside
// 7B's 152,064): the target's tokens beyond it reach the draft as id 0, and the outputs stay the
// plain decodes. Here the demo model (4,096 ids) takes a random 384-id test checkpoint as its
// draft; its greedy outputs hold ids >= 384, which stopped the engine mid-request before.
TEST(Speculative, ADraftWithASmallerVocabularyReadsTheTargetsTokens) {
  REQUIRE_DEMO_MODELS();
  const std::string draft = std::string(TLLM_SOURCE_DIR) + "/tests/data/models/qwen3_hd128";
  LLMEngine plain(config(0));
  const auto p = prompts(plain);
  const std::vector<SamplingParams> ps = {params(24), params(24, 0.8f, 3)};
  const std::vector<std::vector<int32_t>> two = {p[0], p[1]};
  const auto want = plain.generate(two, ps);
  bool beyond = false;
  for (const auto& c : want)
    for (int32_t t : c.token_ids) beyond |= t >= 384;
  ASSERT_TRUE(beyond) << "no output id beyond the draft's vocabulary: the case is not exercised";
  EngineConfig c = config(3, 64, 2048, draft);
  c.max_model_len = 512;  // the draft's context
  LLMEngine spec(c);
  expect_plain(want, spec.generate(two, ps), "384-id draft");
  EXPECT_GT(spec.stats().spec_num_drafts, 0u);
  drain(spec, "384-id draft");
}

// The same 384-id draft under penalties and bans: the prompt's and output's ids beyond the
// draft's vocabulary are left out of the draft's draws (the sampler refused them: "penalty token
// id 2382 outside the vocabulary [0, 384)" stopped the engine at the first draft).
TEST(Speculative, ADraftWithASmallerVocabularyTakesPenaltiesAndBans) {
  REQUIRE_DEMO_MODELS();
  const std::string draft = std::string(TLLM_SOURCE_DIR) + "/tests/data/models/qwen3_hd128";
  LLMEngine plain(config(0));
  const auto p = prompts(plain);
  std::vector<SamplingParams> ps = {params(24), params(24, 0.8f, 3), params(24, 0.9f, 5), params(24)};
  ps[0].repetition_penalty = 1.3f;
  ps[1].presence_penalty = 0.5f;
  ps[1].frequency_penalty = 0.3f;
  ps[1].logprobs = 2;
  ps[2].repetition_penalty = 1.1f;
  ps[2].bad_words_ids = {{2382}, {3000, 11}, {5}};
  ps[3].bad_words_ids = {{1000}, {4000}, {259}};
  std::vector<std::vector<int32_t>> q;
  bool beyond = false;
  for (size_t i = 0; i < ps.size(); ++i) {
    q.push_back(p[i % p.size()]);
    for (int32_t t : q.back()) beyond |= t >= 384;
  }
  ASSERT_TRUE(beyond) << "no prompt id beyond the draft's vocabulary: the case is not exercised";
  const auto want = plain.generate(q, ps);
  EngineConfig c = config(3, 64, 2048, draft);
  c.max_model_len = 512;  // the draft's context
  LLMEngine spec(c);
  expect_plain(want, spec.generate(q, ps), "384-id draft, penalties");
  EXPECT_GT(spec.stats().spec_num_drafts, 0u);
  drain(spec, "384-id draft, penalties");
}

TEST(Speculative, NgramLookupTakesTheLatestLongestMatch) {
  NgramProposer p(/*num_tokens=*/3, /*min_n=*/1, /*max_n=*/3);
  using V = std::vector<int32_t>;
  // The last 3 tokens (7 8 9) occur at 1 and at 6: the later one's continuation.
  EXPECT_EQ(p.lookup({5, 7, 8, 9, 1, 2, 7, 8, 9, 3, 4, 0, 7, 8, 9}, 3), (V{3, 4, 0}));
  EXPECT_EQ(p.lookup({5, 7, 8, 9, 1, 2, 7, 8, 9, 3, 4, 0, 7, 8, 9}, 2), (V{3, 4}));
  // No 3-gram or 2-gram match: the 1-gram (9) at 2 gives 4, 6, 7.
  EXPECT_EQ(p.lookup({1, 2, 9, 4, 6, 7, 3, 9}, 3), (V{4, 6, 7}));
  // A longer match wins over a later shorter one: (2 9) at 1 over (9) at 4.
  EXPECT_EQ(p.lookup({1, 2, 9, 5, 9, 6, 2, 9}, 3), (V{5, 9, 6}));
  // The continuation stops at the end of the sequence.
  EXPECT_EQ(p.lookup({4, 4, 4}, 3), (V{4}));
  EXPECT_EQ(p.lookup({1, 2, 3, 1, 2}, 3), (V{3, 1, 2}));
  EXPECT_TRUE(p.lookup({1, 2, 3, 4}, 3).empty());
  EXPECT_TRUE(p.lookup({7}, 3).empty());
  // min_n 2: a lone repeated token is not enough.
  NgramProposer p2(3, 2, 4);
  EXPECT_TRUE(p2.lookup({1, 2, 9, 4, 6, 7, 3, 9}, 3).empty());
  EXPECT_EQ(p2.lookup({1, 3, 9, 4, 6, 3, 9}, 3), (V{4, 6, 3}));
}

TEST(Speculative, NgramOutputsAreThePlainDecodes) {
  REQUIRE_DEMO_MODELS();
  // The same mixed requests as OutputsAreThePlainDecodes, drafts from the sequences' own text
  // (vLLM's spelling "[ngram]" and the JSON form), plus greedy Bible text, which repeats itself.
  std::vector<SamplingParams> ps = mixed_params();
  ps.push_back(params(120));
  LLMEngine plain(config(0));
  auto p = prompts(plain);
  std::vector<std::vector<int32_t>> all;
  for (size_t i = 0; i < ps.size(); ++i) all.push_back(p[i % p.size()]);
  const auto want = plain.generate(all, ps);
  for (const char* how : {"[ngram]", "json"}) {
    EngineConfig c = config(0);
    if (std::string(how) == "json") {
      c.speculative = parse_speculative_config(R"({"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_max": 3})");
    } else {
      c.speculative.model_dir = "[ngram]";
      c.speculative.num_tokens = 3;
    }
    LLMEngine spec(c);
    expect_plain(want, spec.generate(all, ps), how);
    const EngineStats s = spec.stats();
    EXPECT_GT(s.spec_num_accepted_tokens, 20u) << how;
    EXPECT_LE(s.spec_num_accepted_tokens, s.spec_num_draft_tokens) << how;
    drain(spec, how);
  }
}

TEST(Speculative, PenaltiesAndStructuredOutputTakeDraftsToo) {
  REQUIRE_DEMO_MODELS();
  // Each verification row draws as a plain decode would after the drafts before it: penalty
  // counts and structured output's state include them (and drafts the format refuses are cut
  // before verification). Penalised requests, then JSON-mode ones, each kind in its own
  // engine so that the counters show it was drafted for; n-grams and the draft model.
  std::vector<std::vector<SamplingParams>> kinds(2);
  kinds[0] = {params(60), params(60, 0.8f, 4), params(50), params(60)};
  kinds[0][0].repetition_penalty = 1.3f;
  kinds[0][1].presence_penalty = 0.4f;
  kinds[0][1].frequency_penalty = 0.2f;
  kinds[0][2].frequency_penalty = 1.0f;
  kinds[0][3].presence_penalty = 1.5f;
  kinds[1] = {params(80), params(80, 0.7f, 6)};
  for (SamplingParams& sp : kinds[1]) {
    sp.output_format = {OutputPiece::object()};
    sp.ignore_eos = false;
  }
  for (size_t kind = 0; kind < kinds.size(); ++kind) {
    LLMEngine plain(config(0));  // fresh caches, as the speculative engines have
    const auto p = prompts(plain);
    std::vector<std::vector<int32_t>> q(p.begin(), p.begin() + static_cast<long>(kinds[kind].size()));
    const auto want = plain.generate(q, kinds[kind]);
    for (const std::string draft : {"[ngram]", ""}) {
      const std::string where = (kind ? "json mode, " : "penalties, ") + (draft.empty() ? "draft model" : draft);
      LLMEngine spec(config(3, 64, 2048, draft));
      expect_plain(want, spec.generate(q, kinds[kind]), where);
      const EngineStats s = spec.stats();
      EXPECT_GT(s.spec_num_accepted_tokens, 0u) << where;
      drain(spec, where);
    }
    if (kind == 1) {
      for (const auto& c : want) EXPECT_EQ(c.text.substr(0, 1), "{") << c.text;
    }
  }
}

TEST(Speculative, DisabledByBatchSize) {
  REQUIRE_DEMO_MODELS();
  // disable_by_batch_size 3: steps with 3 or more running sequences decode plainly. Requests of
  // 10, 20, 40, 60 and 80 tokens: the drafting starts once three have finished.
  std::vector<SamplingParams> ps = {params(10), params(20), params(40, 0.8f, 2), params(60), params(80)};
  LLMEngine plain(config(0));
  const auto p = prompts(plain);
  const auto want = plain.generate(p, ps);
  for (int off : {1, 3}) {
    EngineConfig c = config(4);
    c.speculative.disable_by_batch_size = off;
    LLMEngine spec(c);
    expect_plain(want, spec.generate(p, ps), "disable_by_batch_size " + std::to_string(off));
    const EngineStats s = spec.stats();
    if (off == 1) {
      EXPECT_EQ(s.spec_num_drafts, 0u);
    } else {
      // At most the last two requests' tokens past the 40th were drafted for: 2 x 40 + 20 steps.
      EXPECT_GT(s.spec_num_drafts, 0u);
      EXPECT_LE(s.spec_num_drafts, 60u);
    }
    drain(spec, "disable_by_batch_size");
  }
}

// Logits [P, V] (host) of `prompt` as one prefill of the model in `dir`.
Tensor prefill_logits(Backend& be, const std::string& dir, const std::vector<int32_t>& prompt) {
  ModelLoadOptions o;
  o.weight_dtype = DType::F32;
  o.max_num_tokens = static_cast<int>(prompt.size());
  o.max_num_seqs = 1;
  auto model = load_model(dir, be, o);
  const int P = static_cast<int>(prompt.size()), bs = 16, blocks = (P + bs - 1) / bs;
  KVCache kv = KVCache::allocate(be, model->config(), blocks, bs, DType::F32);
  ForwardBatch b;
  b.tokens = prompt;
  for (int i = 0; i < P; ++i) {
    b.positions.push_back(i);
    b.slot_mapping.push_back(i);
    b.logits_indices.push_back(i);
  }
  b.cu_seqlens_q = {0, P};
  b.seq_lens_k = {P};
  b.max_blocks_per_seq = blocks;
  for (int i = 0; i < blocks; ++i) b.block_tables.push_back(i);
  return be.download(model->forward(b, kv));
}

TEST(Speculative, CoupledDrawsAgreeAboutAsOftenAsRejectionSamplingAccepts) {
  REQUIRE_DEMO_MODELS();
  // At every position of a text, the target's and the draft's next-token distributions p and q
  // (temperature 1): rejection sampling keeps a draft with probability sum_i min(p_i, q_i) =
  // 1 - TV(p, q), the most any coupling of the two draws can agree. The sampler's draws of
  // both from the same (seed, offset) are such a coupling (the same exponential race over
  // p and q), and agree at least (1 - TV) / (1 + TV) of the time; independent draws would agree
  // sum_i p_i q_i. Estimated over 200 seeds at each of ~100 positions through the real sampler.
  auto be = make_cpu_backend({2});
  const std::string target = ::tllm::testing::tiny_model_dir(), draft = ::tllm::testing::tiny_draft_dir();
  const auto tok = Tokenizer::load(target);
  const std::vector<int32_t> text = tok->encode(
      "And God said, Let there be light: and there was light. And God saw the light, that it was good: and God "
      "divided the light from the darkness. A computer is a machine that does what you tell it, not what you want.");
  const Tensor lp = prefill_logits(*be, target, text), lq = prefill_logits(*be, draft, text);
  const int64_t P = lp.dim(0), V = lp.dim(1);
  ASSERT_EQ(lq.dim(1), V);
  constexpr int kSeeds = 200;
  double best = 0, bound = 0, independent = 0, coupled = 0;
  for (int64_t t = 0; t < P; ++t) {
    std::vector<double> p(V), q(V);
    for (auto [logits, dist] : {std::pair{&lp, &p}, std::pair{&lq, &q}}) {
      const float* x = logits->data<float>() + t * V;
      const double m = *std::max_element(x, x + V);
      double z = 0;
      for (int64_t i = 0; i < V; ++i) z += (*dist)[i] = std::exp(x[i] - m);
      for (double& v : *dist) v /= z;
    }
    double overlap = 0, dot = 0;
    for (int64_t i = 0; i < V; ++i) overlap += std::min(p[i], q[i]), dot += p[i] * q[i];
    best += overlap;
    bound += overlap / (2 - overlap);  // (1 - TV) / (1 + TV)
    independent += dot;
    // Both rows of one position with each seed, as the target and the draft draw them.
    Tensor rows = Tensor::empty({2 * kSeeds, V}, DType::F32);
    SampleBatch sb;
    for (int s = 0; s < kSeeds; ++s) {
      for (int m = 0; m < 2; ++m) {
        const float* x = (m ? lq : lp).data<float>() + t * V;
        std::copy(x, x + V, rows.data<float>() + (2 * s + m) * V);
        SamplingRow r;
        r.seed = 1000 + s;
        r.offset = static_cast<uint64_t>(t);
        sb.rows.push_back(r);
      }
    }
    const SampleResult res = be->sample(rows, sb);
    int agree = 0;
    for (int s = 0; s < kSeeds; ++s) agree += res.tokens[2 * s] == res.tokens[2 * s + 1];
    coupled += static_cast<double>(agree) / kSeeds;
  }
  best /= P, bound /= P, independent /= P, coupled /= P;
  std::printf("positions %lld: rejection sampling keeps %.3f, coupled draws agree %.3f (bound %.3f), independent %.3f\n",
              static_cast<long long>(P), best, coupled, bound, independent);
  EXPECT_LE(coupled, best + 0.01);
  EXPECT_GE(coupled, bound - 0.01);
  EXPECT_GT(coupled, independent + 0.1);
}

std::string error_of(const EngineConfig& c) {
  try {
    LLMEngine e(c);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

TEST(Speculative, RefusesWhatCannotWork) {
  REQUIRE_DEMO_MODELS();
  namespace fs = std::filesystem;
  EngineConfig c = config(4);
  c.speculative.model_dir = "/nonexistent/draft";
  EXPECT_NE(error_of(c).find("speculative model directory \"/nonexistent/draft\" does not exist"), std::string::npos)
      << error_of(c);

  c = config(17);
  EXPECT_NE(error_of(c).find("num_speculative_tokens must be in [1, 16], got 17"), std::string::npos) << error_of(c);

  c = config(0);
  c.speculative.method = "ngram";
  c.speculative.prompt_lookup_min = 5;
  c.speculative.prompt_lookup_max = 3;
  EXPECT_NE(error_of(c).find("prompt_lookup_min (5) and prompt_lookup_max (3) must satisfy"), std::string::npos)
      << error_of(c);
  c = config(4);
  c.speculative.method = "ngram";
  EXPECT_NE(error_of(c).find("ngram takes no draft model"), std::string::npos) << error_of(c);
  c = config(4);
  c.speculative.prompt_lookup_max = 2;
  EXPECT_NE(error_of(c).find("belong to method ngram"), std::string::npos) << error_of(c);
  c = config(4);
  c.speculative.method = "eagle";
  EXPECT_NE(error_of(c).find("speculative method \"eagle\" is not supported"), std::string::npos) << error_of(c);

  c = config(4);
  c.async_scheduling = "on";
  EXPECT_NE(error_of(c).find("synchronously"), std::string::npos) << error_of(c);

  // A draft whose tokenizer has one entry renamed, and one with a 512-token context.
  const fs::path tmp = fs::temp_directory_path() / ("tllm_spec_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  for (const char* name : {"tok", "short"}) {
    fs::create_directories(tmp / name);
    for (const auto& e : fs::directory_iterator(::tllm::testing::tiny_draft_dir()))
      fs::copy_file(e.path(), tmp / name / e.path().filename());
  }
  {
    nlohmann::json tj = read_json_file((tmp / "tok" / "tokenizer.json").string());
    auto& vocab = tj["model"]["vocab"];
    const std::string first = vocab.begin().key();
    const auto id = vocab[first];
    vocab.erase(first);
    vocab["renamed-entry"] = id;
    fs::permissions(tmp / "tok" / "tokenizer.json", fs::perms::owner_write, fs::perm_options::add);
    std::ofstream(tmp / "tok" / "tokenizer.json") << tj.dump();
    nlohmann::json cj = read_json_file((tmp / "short" / "config.json").string());
    cj["max_position_embeddings"] = 512;
    fs::permissions(tmp / "short" / "config.json", fs::perms::owner_write, fs::perm_options::add);
    std::ofstream(tmp / "short" / "config.json") << cj.dump();
  }
  c = config(4, 64, 2048, (tmp / "tok").string());
  EXPECT_NE(error_of(c).find("differs from the target's"), std::string::npos) << error_of(c);
  c = config(4, 64, 2048, (tmp / "short").string());
  EXPECT_NE(error_of(c).find("the draft model's context length 512"), std::string::npos) << error_of(c);
  EXPECT_NE(error_of(c).find("max_model_len 2048"), std::string::npos) << error_of(c);
  c.max_model_len = 512;  // fits now
  EXPECT_EQ(error_of(c), "");
  fs::remove_all(tmp);
}

TEST(Speculative, ParsesVllmSpeculativeConfig) {
  SpeculativeConfig c = parse_speculative_config(R"({"model": "/m/draft", "num_speculative_tokens": 5})");
  EXPECT_EQ(c.model_dir, "/m/draft");
  EXPECT_EQ(c.num_tokens, 5);
  EXPECT_EQ(c.disable_by_batch_size, 0);
  c = parse_speculative_config(R"({"method": "draft_model", "model": "d", "disable_by_batch_size": 8})");
  EXPECT_EQ(c.model_dir, "d");
  EXPECT_EQ(c.num_tokens, 0);
  EXPECT_EQ(c.disable_by_batch_size, 8);
  const auto error = [](const std::string& text) {
    try {
      parse_speculative_config(text);
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error(R"({"model": "d", "num_speculative_tokens": 0})").find("num_speculative_tokens"), std::string::npos);
  EXPECT_NE(error(R"({"model": "d", "num_speculative_tokens": 2.5})").find("num_speculative_tokens"), std::string::npos);
  EXPECT_NE(error(R"({"model": "d", "disable_by_batch_size": 0})").find("disable_by_batch_size"), std::string::npos);
  EXPECT_NE(error(R"({"model": "d", "method": "eagle"})").find("method \"eagle\" is not supported"), std::string::npos);
  EXPECT_NE(error(R"({"model": "d", "draft_tp": 2})").find("unknown field \"draft_tp\""), std::string::npos);
  EXPECT_NE(error(R"({"num_speculative_tokens": 3})").find("needs \"model\""), std::string::npos);
  c = parse_speculative_config(R"({"method": "ngram", "prompt_lookup_min": 2, "prompt_lookup_max": 5})");
  EXPECT_TRUE(c.ngram());
  EXPECT_EQ(c.prompt_lookup_min, 2);
  EXPECT_EQ(c.prompt_lookup_max, 5);
  EXPECT_NE(error(R"({"method": "ngram", "model": "d"})").find("ngram takes no \"model\""), std::string::npos);
  EXPECT_NE(error(R"({"method": "ngram", "prompt_lookup_max": 65})").find("prompt_lookup_max"), std::string::npos);
  // Defaults: k 4, n-grams of 4 down to 1; one length given sets the other.
  check_speculative_config(c = parse_speculative_config(R"({"method": "ngram"})"));
  EXPECT_EQ(c.num_tokens, 4);
  EXPECT_EQ(c.prompt_lookup_max, 4);
  EXPECT_EQ(c.prompt_lookup_min, 1);
  check_speculative_config(c = parse_speculative_config(R"({"method": "ngram", "prompt_lookup_min": 3})"));
  EXPECT_EQ(c.prompt_lookup_max, 3);
  check_speculative_config(c = parse_speculative_config(R"({"method": "ngram", "prompt_lookup_max": 6})"));
  EXPECT_EQ(c.prompt_lookup_min, 1);
  EXPECT_NE(error(R"({"model": "d",)").find("--speculative-config"), std::string::npos);
  EXPECT_NE(error(R"(["d"])").find("must be a JSON object"), std::string::npos);
}

}  // namespace
}  // namespace tllm
