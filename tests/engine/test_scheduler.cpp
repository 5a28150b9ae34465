// Scheduler and block manager, driven without a model: budgets, chunked prefill, mixed
// batches, preemption and resumption, prefix-cache hits, eviction, abort.
#include <gtest/gtest.h>

#include <memory>
#include <numeric>

#include "engine/block_manager.h"
#include "engine/scheduler.h"

using namespace tllm;

namespace {

std::unique_ptr<Sequence> make_seq(const std::string& id, int prompt_len, int first_token = 1) {
  auto s = std::make_unique<Sequence>();
  s->id = id;
  s->tokens.resize(prompt_len);
  std::iota(s->tokens.begin(), s->tokens.end(), first_token);
  s->num_prompt_tokens = prompt_len;
  return s;
}

// Simulates the engine's bookkeeping after a forward: every sequence whose chunk reached
// the end of its tokens gets one new (sampled) token.
void finish_step(Scheduler& sched, const SchedulerOutput& out, int32_t next_token = 7) {
  sched.update_after_step(out);
  for (const ScheduledSequence& s : out.scheduled)
    if (s.samples()) s.seq->tokens.push_back(next_token);
}

int total_blocks_held(Scheduler& sched) {
  int n = 0;
  for (Sequence* s : sched.running()) n += static_cast<int>(s->block_table.size());
  return n;
}

}  // namespace

TEST(BlockManager, AllocatesAndReleasesEveryBlock) {
  BlockManager bm(10, 4, false);
  auto s = make_seq("a", 9);
  EXPECT_TRUE(bm.allocate(*s, 9));
  EXPECT_EQ(s->block_table.size(), 3u);
  EXPECT_EQ(bm.num_free_blocks(), 7);
  s->num_computed_tokens = 9;
  EXPECT_TRUE(bm.allocate(*s, 3));  // 12 tokens: still 3 blocks
  EXPECT_EQ(s->block_table.size(), 3u);
  EXPECT_TRUE(bm.allocate(*s, 4));  // 13 tokens: 4 blocks
  EXPECT_EQ(s->block_table.size(), 4u);
  auto big = make_seq("b", 40);
  EXPECT_FALSE(bm.allocate(*big, 40));  // needs 10, 6 free: refused without change
  EXPECT_TRUE(big->block_table.empty());
  EXPECT_EQ(bm.num_free_blocks(), 6);
  bm.release(*s);
  EXPECT_EQ(bm.num_free_blocks(), 10);
  EXPECT_EQ(s->num_computed_tokens, 0);
}

TEST(BlockManager, PrefixCacheHitsChainedPrefixesOnly) {
  BlockManager bm(16, 4, true);
  auto a = make_seq("a", 10);  // blocks [1..4] [5..8] + partial
  bm.acquire_cached_prefix(*a);
  EXPECT_EQ(a->num_computed_tokens, 0);
  ASSERT_TRUE(bm.allocate(*a, 10));
  a->num_computed_tokens = 10;
  bm.commit_computed(*a);  // two full blocks registered
  const std::vector<int32_t> a_blocks = a->block_table;

  auto b = make_seq("b", 11);  // same first 10 tokens
  EXPECT_EQ(bm.acquire_cached_prefix(*b), 8);
  EXPECT_EQ(b->num_cached_tokens, 8);
  EXPECT_EQ(b->block_table[0], a_blocks[0]);
  EXPECT_EQ(b->block_table[1], a_blocks[1]);

  // Same second block contents after a different first block: no hit for block 2.
  auto c = make_seq("c", 8);
  c->tokens[0] = 999;
  EXPECT_EQ(bm.acquire_cached_prefix(*c), 0);

  // A prompt that is entirely cached still computes its last block (for its logits).
  auto d = make_seq("d", 8);
  EXPECT_EQ(bm.acquire_cached_prefix(*d), 4);
  EXPECT_EQ(bm.prefix_queries(), 10u + 11u + 8u + 8u);
  EXPECT_EQ(bm.prefix_hits(), 0u + 8u + 0u + 4u);
}

// cache_salt: a salted prompt shares blocks only with prompts of the same salt, and neither
// salted nor unsalted requests find the other's blocks.
TEST(BlockManager, PrefixCacheIsSharedWithinOneSaltOnly) {
  BlockManager bm(32, 4, true);
  auto computed = [&](std::unique_ptr<Sequence> s) {
    bm.acquire_cached_prefix(*s);
    EXPECT_TRUE(bm.allocate(*s, s->num_tokens() - s->num_computed_tokens));
    s->num_computed_tokens = s->num_tokens();
    bm.commit_computed(*s);
    return s;
  };
  auto salted = [](const std::string& id, const std::string& salt) {
    auto s = make_seq(id, 9);
    s->params.cache_salt = salt;
    return s;
  };
  auto plain = computed(make_seq("plain", 9));
  auto tenant_a = salted("a1", "tenant-a");
  EXPECT_EQ(bm.acquire_cached_prefix(*tenant_a), 0);  // the unsalted blocks are not its
  tenant_a->num_computed_tokens = 0;
  bm.release(*tenant_a);
  tenant_a = computed(salted("a1", "tenant-a"));
  auto again = salted("a2", "tenant-a");
  EXPECT_EQ(bm.acquire_cached_prefix(*again), 8);
  EXPECT_EQ(again->block_table[0], tenant_a->block_table[0]);
  auto other = salted("b", "tenant-b");
  EXPECT_EQ(bm.acquire_cached_prefix(*other), 0);
  auto prefix_salt = salted("c", "tenant-");  // a salt that is another's prefix is another salt
  EXPECT_EQ(bm.acquire_cached_prefix(*prefix_salt), 0);
  auto unsalted = make_seq("d", 9);
  EXPECT_EQ(bm.acquire_cached_prefix(*unsalted), 8);
  EXPECT_EQ(unsalted->block_table[0], plain->block_table[0]);
  EXPECT_NE(BlockManager::salt_hash("x"), BlockManager::salt_hash("y"));
  EXPECT_EQ(BlockManager::salt_hash(""), 0u);
}

TEST(BlockManager, CachedFreeBlocksAreReusedThenEvictedLru) {
  BlockManager bm(4, 2, true);
  auto a = make_seq("a", 4);
  bm.acquire_cached_prefix(*a);
  ASSERT_TRUE(bm.allocate(*a, 4));
  a->num_computed_tokens = 4;
  bm.commit_computed(*a);
  bm.release(*a);
  EXPECT_EQ(bm.num_free_blocks(), 4);
  EXPECT_EQ(bm.num_cached_free_blocks(), 2);

  // Reuse: a request with the same prefix finds the first block.
  auto b = make_seq("b", 4);
  EXPECT_EQ(bm.acquire_cached_prefix(*b), 2);
  EXPECT_EQ(bm.num_cached_free_blocks(), 1);
  bm.release(*b);

  // Filling the pool with other tokens evicts the cached blocks.
  auto c = make_seq("c", 8, 100);
  bm.acquire_cached_prefix(*c);
  ASSERT_TRUE(bm.allocate(*c, 8));
  EXPECT_EQ(bm.num_cached_free_blocks(), 0);
  bm.release(*c);
  auto d = make_seq("d", 4);
  EXPECT_EQ(bm.acquire_cached_prefix(*d), 0);
}

TEST(Scheduler, BudgetChunksLongPromptsAndMixesDecode) {
  BlockManager bm(64, 4, false);
  Scheduler sched({/*max_num_seqs=*/8, /*max_num_batched_tokens=*/10, /*max_model_len=*/256}, bm);
  sched.add(make_seq("short", 3));
  sched.add(make_seq("long", 25));

  SchedulerOutput s1 = sched.schedule();
  ASSERT_EQ(s1.scheduled.size(), 2u);
  EXPECT_EQ(s1.scheduled[0].num_new_tokens, 3);
  EXPECT_EQ(s1.scheduled[1].num_new_tokens, 7);  // chunk of the long prompt
  EXPECT_EQ(s1.num_batched_tokens, 10);
  EXPECT_TRUE(s1.scheduled[0].samples());
  EXPECT_FALSE(s1.scheduled[1].samples());
  finish_step(sched, s1);

  // Decode of `short` first, then the next prefill chunk of `long`, in one batch.
  SchedulerOutput s2 = sched.schedule();
  ASSERT_EQ(s2.scheduled.size(), 2u);
  EXPECT_EQ(s2.scheduled[0].seq->id, "short");
  EXPECT_EQ(s2.scheduled[0].num_new_tokens, 1);
  EXPECT_EQ(s2.scheduled[1].num_new_tokens, 9);
  EXPECT_EQ(s2.scheduled[1].first_token, 7);
  finish_step(sched, s2);

  SchedulerOutput s3 = sched.schedule();
  EXPECT_EQ(s3.scheduled[1].num_new_tokens, 9);  // 7 + 9 + 9 = 25: prompt done
  EXPECT_TRUE(s3.scheduled[1].samples());
  finish_step(sched, s3);
  for (int i = 0; i < 3; ++i) {
    SchedulerOutput s = sched.schedule();
    for (const ScheduledSequence& x : s.scheduled) EXPECT_EQ(x.num_new_tokens, 1);
    EXPECT_LE(s.num_batched_tokens, 10);
    finish_step(sched, s);
  }
}

TEST(Scheduler, MaxNumSeqsCapsRunning) {
  BlockManager bm(64, 4, false);
  Scheduler sched({2, 100, 256}, bm);
  for (int i = 0; i < 5; ++i) sched.add(make_seq("r" + std::to_string(i), 3));
  SchedulerOutput s = sched.schedule();
  EXPECT_EQ(s.scheduled.size(), 2u);
  EXPECT_EQ(sched.num_waiting(), 3);
}

TEST(Scheduler, PreemptsNewestWhenBlocksRunOutAndResumes) {
  // 6 blocks of 2 tokens: two sequences of 4-token prompts fill 4 blocks; growth needs more.
  BlockManager bm(6, 2, false);
  Scheduler sched({4, 64, 256}, bm);
  sched.add(make_seq("old", 4));
  sched.add(make_seq("new", 4, 50));
  SchedulerOutput s = sched.schedule();
  ASSERT_EQ(s.scheduled.size(), 2u);
  finish_step(sched, s);  // both now have 5 tokens, 4 computed
  int preempted = 0;
  int steps = 0;
  while (sched.has_unfinished() && steps < 40) {
    SchedulerOutput o = sched.schedule();
    preempted += static_cast<int>(o.preempted.size());
    for (Sequence* p : o.preempted) {
      EXPECT_EQ(p->id, "new");
      EXPECT_TRUE(p->block_table.empty());
      EXPECT_EQ(p->num_computed_tokens, 0);
    }
    EXPECT_LE(total_blocks_held(sched), 6);
    finish_step(sched, o);
    ++steps;
    // Finish a sequence after it has 8 output tokens to let the other resume.
    for (Sequence* r : std::vector<Sequence*>(sched.running()))
      if (r->num_output_tokens() >= 4 && r->num_computed_tokens == r->num_tokens() - 1) sched.remove(r->id);
  }
  EXPECT_GT(preempted, 0);
  EXPECT_FALSE(sched.has_unfinished());
  EXPECT_EQ(bm.num_free_blocks(), 6);
}

TEST(Scheduler, ResumedSequenceRecomputesItsOutputs) {
  BlockManager bm(3, 2, false);
  Scheduler sched({4, 64, 256}, bm);
  sched.add(make_seq("a", 3));
  sched.add(make_seq("b", 2, 10));
  SchedulerOutput s = sched.schedule();
  finish_step(sched, s, 42);  // a: 4 tokens (3 computed), b: 3 tokens (2 computed), 3 blocks held
  SchedulerOutput s2 = sched.schedule();  // a needs no new block; b needs one -> preempted? a first
  finish_step(sched, s2, 43);
  // Whoever was preempted comes back with its outputs intact and recomputes everything.
  Sequence* b = sched.find("b");
  ASSERT_NE(b, nullptr);
  if (b->num_preemptions > 0) {
    sched.remove("a");
    SchedulerOutput s3 = sched.schedule();
    ASSERT_EQ(s3.scheduled.size(), 1u);
    EXPECT_EQ(s3.scheduled[0].first_token, 0);
    EXPECT_EQ(s3.scheduled[0].num_new_tokens, b->num_tokens());
    EXPECT_EQ(b->tokens[2], 42);
  }
}

TEST(Scheduler, RemoveFreesBlocksAtOnce) {
  BlockManager bm(8, 4, true);
  Scheduler sched({4, 64, 256}, bm);
  sched.add(make_seq("a", 13));
  SchedulerOutput s = sched.schedule();
  EXPECT_EQ(bm.num_free_blocks(), 4);
  finish_step(sched, s);
  auto removed = sched.remove("a");
  ASSERT_NE(removed, nullptr);
  EXPECT_EQ(bm.num_free_blocks(), 8);
  EXPECT_EQ(bm.num_cached_free_blocks(), 3);  // its full blocks stay reusable
  EXPECT_EQ(sched.remove("a"), nullptr);
  EXPECT_FALSE(sched.has_unfinished());
}

TEST(Scheduler, PrefixHitSkipsCachedTokens) {
  BlockManager bm(32, 4, true);
  Scheduler sched({4, 64, 256}, bm);
  sched.add(make_seq("a", 12));
  SchedulerOutput s = sched.schedule();
  finish_step(sched, s);
  sched.add(make_seq("b", 14));  // shares a's 12 prompt tokens
  SchedulerOutput s2 = sched.schedule();
  ASSERT_EQ(s2.scheduled.size(), 2u);
  EXPECT_EQ(s2.scheduled[1].seq->id, "b");
  EXPECT_EQ(s2.scheduled[1].first_token, 12);
  EXPECT_EQ(s2.scheduled[1].num_new_tokens, 2);
  EXPECT_EQ(s2.scheduled[1].seq->num_cached_tokens, 12);
}
