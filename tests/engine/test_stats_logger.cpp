// The serving loop's stats line (engine/stats_logger.h) from synthetic counters.
#include <gtest/gtest.h>

#include "engine/stats_logger.h"

namespace tllm {
namespace {

TEST(StatsLogger, RatesOverTheIntervalAndOnlyWhileThereIsWork) {
  StatsLogger log(10.0);
  EngineStats s;
  s.num_kv_blocks = 200;
  s.num_free_kv_blocks = 150;
  EXPECT_FALSE(log.update(s, 100.0));  // the first call starts the interval
  s.prompt_tokens_total = 100;
  EXPECT_FALSE(log.update(s, 105.0));  // within the interval
  s.generation_tokens_total = 250;
  s.num_running = 2;
  s.num_waiting = 1;
  s.prefix_cache_queries = 200;
  s.prefix_cache_hits = 50;
  s.spec_num_drafts = 10;
  s.spec_num_draft_tokens = 40;
  s.spec_num_accepted_tokens = 25;
  const auto line = log.update(s, 110.0);
  ASSERT_TRUE(line);
  for (const char* want :
       {"Avg prompt throughput: 10.0 tokens/s", "Avg generation throughput: 25.0 tokens/s", "Running: 2 reqs",
        "Waiting: 1 reqs", "KV cache usage: 25.0%", "Prefix cache hit rate: 25.0%", "Mean acceptance length: 3.50",
        "Accepted throughput: 2.5 tokens/s", "Drafted throughput: 4.0 tokens/s", "Accepted: 25 tokens",
        "Drafted: 40 tokens"})
    EXPECT_NE(line->find(want), std::string::npos) << want << " in " << *line;
  // Idle (nothing processed, nothing running or waiting): no line.
  s.num_running = s.num_waiting = 0;
  EXPECT_FALSE(log.update(s, 125.0));
  // Work again: rates over the 11 s since the idle check; no drafts in it, no SpecDecoding part.
  s.generation_tokens_total += 100;
  const auto next = log.update(s, 130.0);
  EXPECT_FALSE(next);  // 5 s after the idle check
  const auto later = log.update(s, 136.0);
  ASSERT_TRUE(later);
  EXPECT_NE(later->find("Avg generation throughput: 9.1 tokens/s"), std::string::npos) << *later;
  EXPECT_EQ(later->find("SpecDecoding"), std::string::npos) << *later;
  // The loop slept for an hour, then a request came: no line averaged over the hour; the
  // rates start from the wake-up.
  s.prompt_tokens_total += 500;
  EXPECT_FALSE(log.update(s, 3736.0));
  s.generation_tokens_total += 220;
  const auto woke = log.update(s, 3747.0);
  ASSERT_TRUE(woke);
  EXPECT_NE(woke->find("Avg prompt throughput: 0.0 tokens/s, Avg generation throughput: 20.0 tokens/s"),
            std::string::npos)
      << *woke;
}

}  // namespace
}  // namespace tllm
