// Regular expressions for structured output (engine/regex.h), against std::regex (ECMAScript,
// full match) as the reference: every string up to a length over the pattern's alphabet is
// matched alike; a prefix the automaton keeps alive has a completion among those strings and a
// prefix it kills has none; UTF-8 characters are whole code points; unsupported syntax and
// patterns no text (or too many states) would need are refused naming the offset. Then the
// regex as an output piece: the shipped tiny model's outputs under guided_regex match, token
// by token the filter takes exactly the tokens whose bytes the format takes.
#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>
#include <vector>

#include "../server/test_util.h"
#include "filter_check.h"
#include "core/error.h"
#include "engine/engine.h"
#include "engine/output_format.h"
#include "engine/regex.h"
#include "tokenizer/unicode.h"
#include "tokenizer/tokenizer.h"

namespace tllm {
namespace {

using testing::all_strings;

bool alive(const Regex& re, const std::string& s) {
  int st = re.start();
  for (char c : s)
    if ((st = re.next(st, static_cast<unsigned char>(c))) == Regex::kDead) return false;
  return true;
}

struct Case {
  const char* pattern;  // the same text for std::regex
  const char* alphabet;
  size_t n;  // strings up to this length
};

// Full matches equal std::regex_match's on every string up to n characters.
TEST(Regex, MatchesAsStdRegex) {
  const std::vector<Case> cases = {
      {"a|b", "abc", 3},
      {"(ab)*c", "abc", 7},
      {"[a-c]{2,4}", "abcd", 5},
      {"a?b+c*", "abc", 5},
      {"\\d{3}-\\d{2}", "19-a", 7},
      {"(?:x|yz){0,3}w", "xyzw", 7},
      {"[^ab]c", "abcd\n", 3},
      {"\\w+@\\w+\\.com", "a_@.com", 8},
      {".{2}", "ab\n", 3},
      {"(a|ab)(c|bcd)", "abcd", 5},
      {"x{2,}", "xy", 5},
      {"[\\d_-]+", "1_-a", 4},
      {"a{0}b", "ab", 3},
      {"(a*)*b", "ab", 5},
      {"\\s?[A-Z][a-z]*\\.", "Ab. \t", 5},
      {"[.]\\.", ".ab", 3},
      {"(|a)b", "ab", 3},
      {"a{1,2}?b", "ab", 4},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.pattern);
    const auto re = Regex::compile(c.pattern);
    const std::regex ref(c.pattern, std::regex::ECMAScript);
    int matched = 0;
    for (const std::string& s : all_strings(c.alphabet, c.n)) {
      const bool want = std::regex_match(s, ref);
      ASSERT_EQ(re->full_match(s), want) << "\"" << s << "\"";
      matched += want;
    }
    EXPECT_GT(matched, 0);
  }
}

// A prefix is alive iff some string of the enumeration that extends it matches (patterns whose
// matches are at most n long); finished() iff alive, matching and nothing may follow.
TEST(Regex, LivePrefixesAreExactlyThoseWithCompletions) {
  const std::vector<Case> cases = {
      {"(ab|c){1,2}d", "abcd", 5}, {"[a-c]{2,3}", "abcd", 4}, {"a?b?c", "abc", 3},
      {"\\d{2}-\\d", "1-x", 4},    {"(x|xy|xyz)w?", "xyzw", 4}, {"a[^\\s\\S]|b", "ab", 2},  // "a" is dead
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.pattern);
    const auto re = Regex::compile(c.pattern);
    const std::regex ref(c.pattern, std::regex::ECMAScript);
    const std::vector<std::string> strings = all_strings(c.alphabet, c.n);
    std::vector<std::string> matches;
    for (const std::string& s : strings)
      if (std::regex_match(s, ref)) matches.push_back(s);
    for (const std::string& s : strings) {
      bool extendable = false, longer = false;
      for (const std::string& m : matches)
        if (m.compare(0, s.size(), s) == 0 && m.size() >= s.size()) extendable = true, longer |= m.size() > s.size();
      ASSERT_EQ(alive(*re, s), extendable) << "\"" << s << "\"";
      if (!extendable) continue;
      int st = re->start();
      for (char ch : s) st = re->next(st, static_cast<unsigned char>(ch));
      EXPECT_EQ(re->finished(st), !longer && std::regex_match(s, ref)) << "\"" << s << "\"";
    }
  }
}

// Characters are code points: `.` and classes take whole UTF-8 sequences, never a lone or
// invalid byte, never an encoded surrogate.
TEST(Regex, Utf8CharactersAreWhole) {
  const auto dot = Regex::compile(".");
  for (const char* one : {"a", "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\xEF\xBF\xBD", "\xF4\x8F\xBF\xBF"})
    EXPECT_TRUE(dot->full_match(one)) << one;
  for (const char* bad : {"", "\n", "ab", "\xC3", "\xE4\xB8", "\xFF", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                          "\xC3\xA9x"})
    EXPECT_FALSE(dot->full_match(bad)) << bad;
  EXPECT_TRUE(alive(*dot, "\xE4\xB8"));   // the start of a character
  EXPECT_FALSE(alive(*dot, "\xED\xA0"));  // a surrogate's
  const auto range = Regex::compile("[\xC3\xA0-\xC3\xBC]+");  // [à-ü]+
  EXPECT_TRUE(range->full_match("\xC3\xA9\xC3\xBC"));
  EXPECT_FALSE(range->full_match("a"));
  EXPECT_FALSE(range->full_match("\xC3\xBD"));  // ý
  const auto neg = Regex::compile("[^a]\\u00e9\\u{1F600}\\x41");
  EXPECT_TRUE(neg->full_match("\xE4\xB8\xAD\xC3\xA9\xF0\x9F\x98\x80" "A"));
  EXPECT_FALSE(neg->full_match("a\xC3\xA9\xF0\x9F\x98\x80" "A"));
  // Every code point of [\u0080-\u{10FFFF}] (bar surrogates) one by one against the encoder.
  const auto wide = Regex::compile("[\\u0080-\\u{10FFFF}]");
  for (char32_t cp = 0x80; cp <= 0x10FFFF; cp += (cp < 0x3000 ? 1 : 97)) {
    std::string s;
    tok::append_utf8(s, cp);
    ASSERT_EQ(wide->full_match(s), cp < 0xD800 || cp > 0xDFFF) << std::hex << static_cast<uint32_t>(cp);
  }
  // .{0,1000}: one state per count and pending continuation byte, within the limit.
  EXPECT_LT(Regex::compile(".{0,1000}")->num_states(), Regex::kMaxStates);
}

TEST(Regex, RefusesWhatItCannotDoNamingTheOffset) {
  auto error = [](const std::string& p) {
    try {
      Regex::compile(p);
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"(a", "missing ')' at offset 2"},
      {"a)", "unbalanced ')' at offset 1"},
      {"*a", "nothing to repeat at offset 0"},
      {"a**", "multiple repeat"},
      {"x(?=a)", "lookaround is not supported"},
      {"(a)\\1", "backreferences are not supported"},
      {"a\\b", "word boundaries"},
      {"[ab", "missing ']' at offset 0"},
      {"a{5,2}", "out of order"},
      {"a{2000}", "repeat bound above 1000"},
      {"(?i)a", "inline flags"},
      {"[z-a]", "class range out of order"},
      {"a$b", "'$' before the end"},
      {"a^", "'^' after the start"},
      {"\\q", "unknown escape \\q"},
      {"[^\\s\\S]", "no text matches the pattern"},
      {"(a|b)*a(a|b){16}", "more than 50000 automaton states"},
      {"\xFF", "not valid UTF-8"},
  };
  for (const auto& [p, want] : cases) EXPECT_NE(error(p).find(want), std::string::npos) << p << ": " << error(p);
  for (const char* ok : {"^a$", "(?P<year>\\d{4})-(?<m>\\d\\d)", "a{,}", "{", "a{1", "]", "[]a]", "a|", "a+?", "a++"})
    EXPECT_EQ(error(ok), "accepted") << ok;
  EXPECT_TRUE(Regex::compile("[]a]+")->full_match("]a]"));
  EXPECT_TRUE(Regex::compile("a|")->full_match(""));
}

// Where Python's re reads a pattern otherwise than std::regex: {,m} is {0,m} ({,} is {0,}),
// while {}, {,x} stay literal text; '$' only where nothing can follow it, as no text matches
// (a$)b or takes two copies of (a$)+ (the automaton has no anchors, it would allow them).
TEST(Regex, ReadsBoundsAndDollarAsPython) {
  const auto upto5 = Regex::compile("a{,5}");
  for (int n = 0; n <= 5; ++n) EXPECT_TRUE(upto5->full_match(std::string(static_cast<size_t>(n), 'a'))) << n;
  EXPECT_FALSE(upto5->full_match("aaaaaa"));
  EXPECT_FALSE(upto5->full_match("a{,5}"));
  EXPECT_TRUE(Regex::compile("a{,}")->full_match(""));
  EXPECT_TRUE(Regex::compile("a{,}")->full_match("aaaaaaa"));
  EXPECT_TRUE(Regex::compile("x{,2}y")->full_match("xxy"));
  EXPECT_TRUE(Regex::compile("a{}")->full_match("a{}"));
  EXPECT_TRUE(Regex::compile("a{,x}")->full_match("a{,x}"));
  for (const char* bad : {"(a$)b", "(a$)+", "(a$)*", "(a$|b)c", "(a$)?b", "((a)$)b", "a$$", "(?:a$){2}"}) {
    try {
      Regex::compile(bad);
      ADD_FAILURE() << bad << " accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("'$' before the end"), std::string::npos) << bad << ": " << e.what();
    }
  }
  // Where nothing follows, '$' is the end of the match it always was.
  for (const auto& [p, text] : std::vector<std::pair<const char*, const char*>>{
           {"(a$)", "a"}, {"a$|b", "b"}, {"(a$|b)", "a"}, {"((a)$)", "a"}, {"(a$)?", ""}, {"x(a|b$)", "xb"}})
    EXPECT_TRUE(Regex::compile(p)->full_match(text)) << p;
}

// Nested counted repeats make each automaton state a set of tens of thousands of NFA states:
// the subset construction counts its work and stops at kMaxSubsetWork, fast and small, long
// before kMaxStates would (it took minutes and gigabytes). What the probe found fast stays fast.
TEST(Regex, NestedCountedRepeatsAreRefusedFast) {
  for (const char* p : {"(.{1,99}){1,99}", "(a{0,150}){0,150}"}) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      Regex::compile(p);
      ADD_FAILURE() << p << " accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("too much work to compile (more than 8000000"), std::string::npos)
          << p << ": " << e.what();
    }
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0) << p;
  }
  std::string branches;
  for (int i = 0; i < 5000; ++i) branches += (i ? "|w" : "w") + std::to_string(i);
  for (const std::string& p : {std::string("(a*)*b"), std::string("(a|a)*c"), std::string("(x+x+)+y"),
                               std::string("(a|aa){1,200}"), std::string("(.{1,20}){1,20}"), branches}) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_NO_THROW(Regex::compile(p)) << p.substr(0, 40);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0) << p.substr(0, 40);
  }
  EXPECT_TRUE(Regex::compile("(a|aa){1,200}")->full_match(std::string(300, 'a')));
}

// As an output piece: the piece ends where the automaton finishes, or (when it may go on) at
// the next piece's first byte; a pattern matching only "" takes no text.
TEST(Regex, AsAnOutputPiece) {
  const std::vector<OutputPiece> fmt = {OutputPiece::text("id="), OutputPiece::matching(Regex::compile("\\d{1,3}")),
                                        OutputPiece::text(";"), OutputPiece::matching(Regex::compile("(ok|no)"))};
  for (const char* ok : {"id=7;ok", "id=123;no"}) {
    FormatPrefix p(&fmt);
    EXPECT_TRUE(p.feed(ok) && p.complete()) << ok;
  }
  for (const char* open : {"id=", "id=12", "id=12;o"}) {
    FormatPrefix p(&fmt);
    EXPECT_TRUE(p.feed(open) && !p.complete()) << open;
  }
  for (const char* bad : {"id=;", "id=1234", "id=12;ok!", "id=x"}) {
    FormatPrefix p(&fmt);
    EXPECT_FALSE(p.feed(bad)) << bad;
  }
  const std::vector<OutputPiece> empty = {OutputPiece::matching(Regex::compile("(|)")), OutputPiece::text("x")};
  FormatPrefix e(&empty);
  EXPECT_FALSE(e.complete());
  EXPECT_TRUE(e.feed("x") && e.complete());
}

// The shipped tiny model under a regex: every output that stopped matches whole (std::regex),
// one cut by max_tokens is a live prefix; the filter's tokens against a direct count.
TEST(Regex, TinyModelOutputsMatch) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const auto engine = testing::tiny_cpu_engine(dir);
  const std::string pattern = "(The|A) [a-z]+( [a-z]+){1,6}\\. (Yes|No)!";
  const auto re = Regex::compile(pattern);
  const std::regex ref(pattern, std::regex::ECMAScript);
  const std::vector<OutputPiece> fmt = {OutputPiece::matching(re)};
  const int stopped = testing::generate_under(*engine, fmt, [&](const std::string& text, bool whole) {
    if (whole) {
      EXPECT_TRUE(std::regex_match(text, ref));
    } else {
      EXPECT_TRUE(alive(*re, text));
    }
  });
  EXPECT_GT(stopped, 0);
  testing::expect_filter_is_direct_count(*engine->tokenizer(), engine->vocab_size(), fmt,
                                         {"", "The", "A man", "The king said. ", "The king said. Ye"});
}

}  // namespace
}  // namespace tllm
