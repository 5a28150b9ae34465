// AsyncEngine over the real tiny model on CPU: outputs match LLMEngine driven directly,
// aborts (explicit, or by dropping the stream) free every KV block, the admission queue
// is bounded, and bad submissions are rejected on the caller's thread.
#include <gtest/gtest.h>

#include <thread>

#include "core/timer.h"
#include "engine/async_engine.h"
#include "test_util.h"

namespace tllm {
namespace {

EngineConfig tiny_config(const std::string& dir, int max_num_seqs = 8) {
  EngineConfig c;
  c.model_dir = dir;
  c.device = "cpu";
  c.threads = 2;
  c.max_num_seqs = max_num_seqs;
  c.kv_cache_memory = 64u << 20;
  return c;
}

SamplingParams greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

// Reads a stream to its end; returns the outputs.
std::vector<RequestOutput> collect(RequestStream& s, double timeout = 60.0) {
  std::vector<RequestOutput> outs;
  const double deadline = now_seconds() + timeout;
  while (!s.done() && now_seconds() < deadline) s.drain(outs, 0.1);
  EXPECT_TRUE(s.done()) << "stream did not finish in " << timeout << " s";
  return outs;
}

bool wait_until(const std::function<bool()>& cond, double timeout = 10.0) {
  const double deadline = now_seconds() + timeout;
  while (now_seconds() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

int used_blocks(const EngineStats& s) { return s.num_kv_blocks - s.num_free_kv_blocks - s.num_cached_free_blocks; }

TEST(AsyncEngine, MatchesTheEngineDrivenDirectly) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const std::vector<int32_t> prompt = {100, 200, 300, 400, 500, 600, 700};
  LLMEngine direct(tiny_config(dir));
  const auto want = direct.generate({prompt}, {greedy(12)});

  AsyncEngine async(std::make_unique<LLMEngine>(tiny_config(dir)));
  auto stream = async.submit("r1", prompt, greedy(12));
  EXPECT_EQ(stream->id(), "r1");
  std::vector<int32_t> ids;
  std::string text;
  const auto outs = collect(*stream);
  for (const auto& o : outs) {
    EXPECT_EQ(o.request_id, "r1");
    ids.insert(ids.end(), o.new_token_ids.begin(), o.new_token_ids.end());
    text += o.new_text;
  }
  ASSERT_FALSE(outs.empty());
  EXPECT_TRUE(outs.back().finished);
  EXPECT_EQ(outs.back().finish_reason, FinishReason::Length);
  EXPECT_EQ(ids, want[0].token_ids);
  EXPECT_EQ(text, want[0].text);
  EXPECT_FALSE(stream->next(0.0));  // nothing after the final output
}

TEST(AsyncEngine, SubmitManySharesOneStream) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  AsyncEngine async(std::make_unique<LLMEngine>(tiny_config(dir)));
  std::vector<AsyncEngine::Submission> subs;
  for (int i = 0; i < 3; ++i) subs.push_back({"g-" + std::to_string(i), {1, 2, 3, 4 + i}, greedy(4 + i)});
  auto stream = async.submit_many("g", std::move(subs));
  std::map<std::string, int> tokens, finals;
  for (const auto& o : collect(*stream)) {
    tokens[o.request_id] += static_cast<int>(o.new_token_ids.size());
    finals[o.request_id] += o.finished;
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(tokens["g-" + std::to_string(i)], 4 + i);
    EXPECT_EQ(finals["g-" + std::to_string(i)], 1);
  }
}

TEST(AsyncEngine, AbortAndDroppedStreamsFreeTheirBlocks) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  auto cfg = tiny_config(dir);
  cfg.enable_prefix_caching = false;  // so "free" means free, not cached
  AsyncEngine async(std::make_unique<LLMEngine>(cfg));
  std::vector<int32_t> prompt(300, 7);
  auto a = async.submit("a", prompt, greedy(1500));
  auto b = async.submit("b", prompt, greedy(1500));
  // Both decoding.
  ASSERT_TRUE(wait_until([&] { return async.stats().generation_tokens_total >= 10; }));
  EXPECT_GT(used_blocks(async.stats()), 0);

  async.abort("a");
  const auto outs = collect(*a, 5.0);
  ASSERT_FALSE(outs.empty());
  EXPECT_EQ(outs.back().finish_reason, FinishReason::Abort);
  async.abort("a");        // again: ignored
  async.abort("unknown");  // ignored

  b.reset();  // the reader went away without aborting
  ASSERT_TRUE(wait_until([&] {
    const auto s = async.stats();
    return s.num_running == 0 && s.num_waiting == 0 && used_blocks(s) == 0;
  })) << "used blocks: " << used_blocks(async.stats());
  // Still serving.
  auto c = async.submit("c", {1, 2, 3}, greedy(3));
  EXPECT_EQ(collect(*c).back().finish_reason, FinishReason::Length);
}

TEST(AsyncEngine, AsyncSchedulingStreamsTheSameTokensAndFreesAborts) {
  // With async scheduling the engine's outputs come one step() later and aborted or finished
  // sequences leave one step later; the loop must still deliver and free everything.
  TLLM_REQUIRE_TINY_MODEL(dir);
  const std::vector<int32_t> prompt = {100, 200, 300, 400, 500, 600, 700};
  LLMEngine direct(tiny_config(dir));
  const auto want = direct.generate({prompt, {5, 6, 7}}, {greedy(12)});

  auto cfg = tiny_config(dir);
  cfg.enable_prefix_caching = false;
  cfg.async_scheduling = "on";
  AsyncEngine async(std::make_unique<LLMEngine>(cfg));
  auto s1 = async.submit("r1", prompt, greedy(12));
  auto s2 = async.submit("r2", {5, 6, 7}, greedy(12));
  auto long_run = async.submit("long", std::vector<int32_t>(50, 9), greedy(1500));
  for (auto [stream, w] : {std::pair{&s1, 0}, std::pair{&s2, 1}}) {
    std::vector<int32_t> ids;
    const auto outs = collect(**stream);
    for (const auto& o : outs) ids.insert(ids.end(), o.new_token_ids.begin(), o.new_token_ids.end());
    ASSERT_FALSE(outs.empty());
    EXPECT_EQ(outs.back().finish_reason, FinishReason::Length);
    EXPECT_EQ(ids, want[w].token_ids);
  }
  ASSERT_TRUE(wait_until([&] { return async.stats().generation_tokens_total >= 40; }));
  async.abort("long");
  EXPECT_EQ(collect(*long_run, 5.0).back().finish_reason, FinishReason::Abort);
  ASSERT_TRUE(wait_until([&] {
    const auto s = async.stats();
    return s.num_running == 0 && s.num_waiting == 0 && used_blocks(s) == 0;
  })) << "used blocks: " << used_blocks(async.stats());
}

TEST(AsyncEngine, AdmissionQueueIsBounded) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  AsyncEngine async(std::make_unique<LLMEngine>(tiny_config(dir, /*max_num_seqs=*/1)), /*max_queue=*/1);
  auto running = async.submit("run", {1, 2, 3}, greedy(1500));
  ASSERT_TRUE(wait_until([&] { return async.stats().num_running == 1; }));
  auto waiting = async.submit("wait", {1, 2, 3}, greedy(5));
  EXPECT_THROW(async.submit("over", {1, 2, 3}, greedy(5)), AsyncEngine::QueueFull);
  async.abort("run");
  EXPECT_EQ(collect(*waiting).back().finish_reason, FinishReason::Length);
  auto again = async.submit("again", {1, 2, 3}, greedy(2));
  EXPECT_EQ(collect(*again).back().finish_reason, FinishReason::Length);
}

// The limit also holds while the loop is adding the waiting request to the engine: from the
// moment it takes the request off the queue until the step after publishes the engine's
// counts. Each step here lasts at least 0.2 s, and the attempts span several steps, so they
// land in that window too (CI once saw HTTP's FullQueueIs503 admit a third request there).
TEST(AsyncEngine, QueueLimitHoldsWhileTheLoopAdmits) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  AsyncEngine async(std::make_unique<LLMEngine>(tiny_config(dir, /*max_num_seqs=*/1)), /*max_queue=*/1,
                    /*log_stats_interval=*/0, /*step_pause=*/0.2);
  auto running = async.submit("run", {1, 2, 3}, greedy(1500));
  ASSERT_TRUE(wait_until([&] { return async.stats().num_running == 1; }));
  auto waiting = async.submit("wait", {1, 2, 3}, greedy(3));
  int accepted = 0, attempts = 0;
  for (const double end = now_seconds() + 1.0; now_seconds() < end; ++attempts) {
    try {
      async.submit("over" + std::to_string(attempts), {1, 2, 3}, greedy(3));
      ++accepted;
    } catch (const AsyncEngine::QueueFull&) {
    }
    EXPECT_EQ(async.stats().num_waiting, 1 + accepted);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(accepted, 0) << "of " << attempts << " attempts";
  async.abort("run");
  EXPECT_EQ(collect(*waiting).back().finish_reason, FinishReason::Length);
}

TEST(AsyncEngine, StatsCountASubmittedRequestAtOnce) {
  // A request is running or waiting in stats() from the moment submit() returns, also before
  // the engine's next step has taken it in (/metrics and /debug/engine report stats()).
  TLLM_REQUIRE_TINY_MODEL(dir);
  AsyncEngine async(std::make_unique<LLMEngine>(tiny_config(dir, /*max_num_seqs=*/1)));
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 6; ++i) {
    streams.push_back(async.submit("r" + std::to_string(i), {1, 2, 3}, greedy(1500)));
    const EngineStats s = async.stats();
    EXPECT_EQ(s.num_running + s.num_waiting, i + 1) << "after submission " << i;
    EXPECT_LE(s.num_running, 1);
  }
  ASSERT_TRUE(wait_until([&] { return async.stats().num_running == 1; }));
  EXPECT_EQ(async.stats().num_waiting, 5);
  for (int i = 0; i < 6; ++i) async.abort("r" + std::to_string(i));
  ASSERT_TRUE(wait_until([&] {
    const auto s = async.stats();
    return s.num_running == 0 && s.num_waiting == 0 && used_blocks(s) == 0;
  }));
}

TEST(AsyncEngine, BadSubmissionsThrowOnTheCaller) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  AsyncEngine async(std::make_unique<LLMEngine>(tiny_config(dir)));
  const int vocab = async.engine().vocab_size();
  const int max_len = async.engine().max_model_len();
  EXPECT_THROW(async.submit("e1", {}, greedy(2)), InvalidArgument);
  EXPECT_THROW(async.submit("e2", {1, vocab}, greedy(2)), InvalidArgument);
  EXPECT_THROW(async.submit("e3", {-1}, greedy(2)), InvalidArgument);
  EXPECT_THROW(async.submit("e4", std::vector<int32_t>(max_len, 1), greedy(1)), InvalidArgument);
  SamplingParams bad = greedy(2);
  bad.top_p = 0.0f;
  EXPECT_THROW(async.submit("e5", {1}, bad), InvalidArgument);
  // What add_request refuses by the engine's own rules too (it came back as the loop's error,
  // the server's 500): end ids that leave no token before min_tokens.
  SamplingParams ends = greedy(4);
  ends.min_tokens = 2;
  for (int i = 0; i < vocab; ++i) ends.stop_token_ids.push_back(i);
  EXPECT_THROW(async.submit("e6", {1}, ends), InvalidArgument);
  auto ok = async.submit("dup", {1, 2}, greedy(50));
  EXPECT_THROW(async.submit("dup", {1, 2}, greedy(2)), InvalidArgument);
  std::vector<AsyncEngine::Submission> twice = {{"x", {1}, greedy(1)}, {"x", {1}, greedy(1)}};
  EXPECT_THROW(async.submit_many("x", twice), InvalidArgument);
  collect(*ok);
}

// A request the whole KV cache cannot hold is refused on the caller (the server's 400), not
// failed on the engine thread; one that fits exactly still runs.
TEST(AsyncEngine, ARequestLargerThanTheCacheThrowsOnTheCaller) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  EngineConfig c = tiny_config(dir);
  c.num_kv_blocks = 2;
  AsyncEngine async(std::make_unique<LLMEngine>(c));
  const int block = c.block_size;
  // The context is what the cache holds (2 blocks), not the model's 2,048 tokens.
  EXPECT_EQ(async.engine().max_model_len(), 2 * block);
  try {
    async.submit("big", std::vector<int32_t>(block + 1, 1), greedy(block));
    ADD_FAILURE() << "a request of 3 blocks was taken by a cache of 2";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("This model's maximum context length is 32 tokens. However, you requested 33 tokens"), std::string::npos) << e.what();
  }
  const auto out = collect(*async.submit("fits", std::vector<int32_t>(block, 1), greedy(block)));
  ASSERT_FALSE(out.empty());
  EXPECT_TRUE(out.back().error.empty()) << out.back().error;
  EXPECT_EQ(out.back().finish_reason, FinishReason::Length);
  // Asked for explicitly, a context the cache cannot hold is refused at start, naming both.
  c.max_model_len = 2 * block + 1;
  try {
    LLMEngine e(c);
    ADD_FAILURE() << "max_model_len 33 was taken with a cache of 32 tokens";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("max_model_len 33 is larger than the 32 tokens the KV cache holds"),
              std::string::npos)
        << e.what();
  }
}

TEST(AsyncEngine, ShutdownEndsOpenStreams) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  AsyncEngine async(std::make_unique<LLMEngine>(tiny_config(dir)));
  auto s = async.submit("long", {1, 2, 3}, greedy(1500));
  ASSERT_TRUE(wait_until([&] { return async.stats().generation_tokens_total > 0; }));
  async.shutdown();
  const auto outs = collect(*s, 5.0);
  EXPECT_EQ(outs.back().finish_reason, FinishReason::Abort);
  EXPECT_THROW(async.submit("late", {1}, greedy(1)), Error);
}

}  // namespace
}  // namespace tllm
