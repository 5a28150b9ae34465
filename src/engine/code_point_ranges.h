// Sets of Unicode code points as sorted inclusive ranges: the character classes of regular
// expressions (engine/regex.h) and grammars (engine/grammar.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

namespace tllm {

inline constexpr uint32_t kMaxCodePoint = 0x10FFFF;

using CodePointRanges = std::vector<std::pair<uint32_t, uint32_t>>;  // inclusive

// Sorted, merged, surrogates (U+D800..U+DFFF) removed.
inline CodePointRanges normalize_ranges(CodePointRanges r) {
  std::sort(r.begin(), r.end());
  CodePointRanges merged;
  for (const auto& [lo, hi] : r) {
    if (!merged.empty() && lo <= merged.back().second + 1) merged.back().second = std::max(merged.back().second, hi);
    else merged.push_back({lo, hi});
  }
  CodePointRanges out;
  for (const auto& [lo, hi] : merged) {
    if (hi < 0xD800 || lo > 0xDFFF) {
      out.push_back({lo, hi});
      continue;
    }
    if (lo < 0xD800) out.push_back({lo, 0xD7FF});
    if (hi > 0xDFFF) out.push_back({0xE000, hi});
  }
  return out;
}

// Every code point not in r (r normalized), surrogates excluded.
inline CodePointRanges complement_ranges(const CodePointRanges& r) {
  CodePointRanges out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : r) {
    if (lo > next) out.push_back({next, lo - 1});
    next = hi + 1;
  }
  if (next <= kMaxCodePoint) out.push_back({next, kMaxCodePoint});
  return normalize_ranges(out);
}

// Whether cp is in r (r normalized).
inline bool ranges_contain(const CodePointRanges& r, uint32_t cp) {
  const auto it = std::upper_bound(r.begin(), r.end(), std::make_pair(cp, kMaxCodePoint + 1));
  return it != r.begin() && std::prev(it)->second >= cp;
}

}  // namespace tllm
