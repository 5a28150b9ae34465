// The token filter (engine/output_format.h) against a direct count: after each of `prefixes`
// of the format, OutputFilter::next allows exactly the tokens whose bytes FormatPrefix takes
// (never special tokens or ids the tokenizer does not know).
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

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

}  // namespace tllm::testing
