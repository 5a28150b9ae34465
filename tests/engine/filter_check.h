// The token filter (engine/output_format.h) against a direct count: after each of `prefixes`
// of the format, OutputFilter::next allows exactly the tokens whose bytes FormatPrefix takes
// (never special tokens or ids the tokenizer does not know). And the shipped tiny model
// generating under a format, for the recognizers' end-to-end tests.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/output_format.h"
#include "tokenizer/token_bytes.h"
#include "tokenizer/tokenizer.h"

namespace tllm::testing {

inline void expect_filter_is_direct_count(const Tokenizer& tok, int vocab_size, const std::vector<OutputPiece>& fmt,
                                          std::initializer_list<const char*> prefixes) {
  OutputFilter filter(tok, vocab_size);
  for (const char* so_far : prefixes) {
    SCOPED_TRACE(so_far);
    FormatPrefix format(&fmt);
    ASSERT_TRUE(format.feed(so_far));
    const TokenSet& next = filter.next(format);
    for (int32_t id = 0; id < vocab_size; ++id) {
      FormatPrefix s = format;
      const std::string b = id < tok.vocab_size() && !tok.is_special(id) ? token_bytes(tok, id) : "";
      ASSERT_EQ(next.contains(id), !b.empty() && s.feed(b)) << "token " << id << " " << b;
    }
  }
}

// Every string of length <= n over `alphabet` (the recognizers' exhaustive tests).
inline std::vector<std::string> all_strings(const std::string& alphabet, size_t n) {
  std::vector<std::string> out = {""};
  for (size_t begin = 0, len = 0; len < n; ++len) {
    const size_t end = out.size();
    for (size_t i = begin; i < end; ++i)
      for (char c : alphabet) out.push_back(out[i] + c);
    begin = end;
  }
  return out;
}

// The tiny model in `dir` on the CPU.
inline std::unique_ptr<LLMEngine> tiny_cpu_engine(const std::string& dir) {
  EngineConfig c;
  c.model_dir = dir;
  c.device = "cpu";
  c.threads = 2;
  c.kv_cache_memory = 64u << 20;
  return std::make_unique<LLMEngine>(c);
}

// Up to 48 tokens under `fmt` after "And the LORD said unto Moses," for seeds 0..7 (greedy at
// 0, else temperature 1); check(text, stopped) on each. Returns how many stopped (the format
// whole) rather than ran out of tokens.
inline int generate_under(LLMEngine& engine, const std::vector<OutputPiece>& fmt,
                          const std::function<void(const std::string& text, bool stopped)>& check) {
  const std::vector<int32_t> prompt = engine.tokenizer()->encode("And the LORD said unto Moses,", true);
  int stopped = 0;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    SamplingParams p;
    p.output_format = fmt;
    p.seed = seed;
    p.temperature = seed == 0 ? 0.0f : 1.0f;
    p.max_tokens = 48;
    const auto out = engine.generate({prompt}, {p})[0];
    SCOPED_TRACE(out.text);
    const bool stop = out.finish_reason == FinishReason::Stop;
    stopped += stop;
    check(out.text, stop);
  }
  return stopped;
}

}  // namespace tllm::testing
