// Grammars for structured output (engine/grammar.h). A grammar of a regular language against
// the same language as a regular expression (engine/regex.h, whose automaton keeps only live
// states, so it is the reference for live prefixes too) on every string up to a length;
// recursive languages against hand-written recognizers; UTF-8 characters whole; mistakes
// refused naming the line and column. Then the grammar as an output piece: the shipped tiny
// model's outputs are sentences, and the filter takes exactly the tokens the format takes.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../server/test_util.h"
#include "core/error.h"
#include "engine/engine.h"
#include "engine/grammar.h"
#include "engine/output_format.h"
#include "engine/regex.h"
#include "filter_check.h"
#include "tokenizer/tokenizer.h"

namespace tllm {
namespace {

using testing::all_strings;

// Whether the grammar takes every byte of s (s is a live prefix).
bool takes(const Grammar& g, const std::string& s, Grammar::State* end = nullptr) {
  Grammar::State st = g.start();
  for (char c : s)
    if (!st.feed(static_cast<unsigned char>(c))) return false;
  if (end) *end = st;
  return true;
}

bool regex_alive(const Regex& re, const std::string& s, int* end = nullptr) {
  int st = re.start();
  for (char c : s)
    if ((st = re.next(st, static_cast<unsigned char>(c))) == Regex::kDead) return false;
  if (end) *end = st;
  return true;
}

struct RegularCase {
  const char* grammar;
  const char* regex;  // the same language
  const char* alphabet;
  size_t n;
};

TEST(Grammar, RegularLanguagesAsTheirRegex) {
  const std::vector<RegularCase> cases = {
      {R"(root ::= "a" | "b")", "a|b", "abc", 3},
      {R"(root ::= ("ab")* "c")", "(ab)*c", "abc", 7},
      {R"(root ::= [a-c]{2,4})", "[a-c]{2,4}", "abcd", 5},
      {R"(root ::= "a"? "b"+ "c"*)", "a?b+c*", "abc", 5},
      {"root ::= item (\",\" item)*\nitem ::= [0-9]+", "[0-9]+(,[0-9]+)*", "01,", 7},
      {R"(root ::= [^ab] "c")", "[^ab]c", "abcd\n", 3},
      {R"(root ::= . .)", "[\\s\\S]{2}", "ab\n", 3},
      {R"(root ::= "x"{2,})", "x{2,}", "xy", 5},
      {R"(root ::= ("a" | "ab") ("c" | "bcd"))", "(a|ab)(c|bcd)", "abcd", 5},
      {R"(root ::= "a"{0} "b")", "b", "ab", 3},
      {R"(root ::= ("" | "a") "b")", "(|a)b", "ab", 3},
      {R"(root ::= ("ab" | "c"){1,3} "d"?)", "(ab|c){1,3}d?", "abcd", 6},
      {"# greetings\nroot ::= greeting \" \" name  # then a name\ngreeting ::= \"hi\"\n         | \"yo\"\nname ::= [a-b]{1,2}",
       "(hi|yo) [ab]{1,2}", "hiyo ab", 5},
      {R"(root ::= "\x41\u0042\t" [\-\]] "\"")", "AB\\t[\\-\\]]\"", "AB\t-]\"", 6},
  };
  for (const RegularCase& c : cases) {
    SCOPED_TRACE(c.grammar);
    const auto g = Grammar::compile(c.grammar);
    const auto re = Regex::compile(c.regex);
    int matched = 0;
    for (const std::string& s : all_strings(c.alphabet, c.n)) {
      Grammar::State gs;
      int rs = 0;
      const bool live = regex_alive(*re, s, &rs);
      ASSERT_EQ(takes(*g, s, &gs), live) << "\"" << s << "\"";
      if (!live) continue;
      ASSERT_EQ(gs.complete(), re->accepting(rs)) << "\"" << s << "\"";
      ASSERT_EQ(gs.finished(), re->finished(rs)) << "\"" << s << "\"";
      ASSERT_EQ(g->full_match(s), re->full_match(s)) << "\"" << s << "\"";
      matched += re->accepting(rs);
    }
    EXPECT_GT(matched, 0);
  }
}

// Balanced parentheses, and arithmetic: not regular. Full matches as a hand-written
// recognizer; every live prefix has a completion (found by a search the grammar prunes).
TEST(Grammar, RecursiveLanguages) {
  const auto parens = Grammar::compile(R"g(root ::= "" | "(" root ")" root)g");
  for (const std::string& s : all_strings("()", 12)) {
    int depth = 0;
    bool live = true;
    for (char c : s) {
      depth += c == '(' ? 1 : -1;
      live &= depth >= 0;
    }
    Grammar::State st;
    ASSERT_EQ(takes(*parens, s, &st), live) << s;
    if (live) {
      ASSERT_EQ(st.complete(), depth == 0) << s;
    }
  }

  const auto arith = Grammar::compile(R"g(
      root ::= expr
      expr ::= term (("+" | "*") term)*
      term ::= [0-9] | "(" expr ")"
  )g");
  // expr ::= term (op term)*, term ::= digit | ( expr ), by recursive descent.
  std::function<bool(const std::string&, size_t&)> expr, term;
  term = [&](const std::string& s, size_t& i) {
    if (i < s.size() && s[i] >= '0' && s[i] <= '9') return ++i, true;
    if (i < s.size() && s[i] == '(') {
      ++i;
      if (!expr(s, i) || i >= s.size() || s[i] != ')') return false;
      return ++i, true;
    }
    return false;
  };
  expr = [&](const std::string& s, size_t& i) {
    if (!term(s, i)) return false;
    while (i < s.size() && (s[i] == '+' || s[i] == '*')) {
      ++i;
      if (!term(s, i)) return false;
    }
    return true;
  };
  std::function<bool(const Grammar::State&, int)> completes = [&](const Grammar::State& st, int budget) {
    if (st.complete()) return true;
    if (budget == 0) return false;
    for (char c : std::string("1+*()")) {
      Grammar::State next = st;
      if (next.feed(static_cast<unsigned char>(c)) && completes(next, budget - 1)) return true;
    }
    return false;
  };
  int sentences = 0;
  for (const std::string& s : all_strings("1+*()", 7)) {
    size_t i = 0;
    const bool want = expr(s, i) && i == s.size();
    ASSERT_EQ(arith->full_match(s), want) << s;
    sentences += want;
    Grammar::State st;
    if (takes(*arith, s, &st)) {
      ASSERT_TRUE(completes(st, 8)) << "a live prefix without a completion: " << s;
    }
  }
  EXPECT_GT(sentences, 50);
}

// A long run of rules that can be empty: the recognizer's expansion is a loop, not a
// recursion per rule, and a state holds every place the next "a" may be.
TEST(Grammar, LongRunsOfOptionalItems) {
  for (int n : {30, 3000}) {
    std::string text = "root ::=";
    for (int i = 0; i < n; ++i) text += " x";
    text += "\nx ::= \"a\"?";
    const auto g = Grammar::compile(text);
    EXPECT_TRUE(g->full_match(""));
    EXPECT_TRUE(g->full_match("aaaaa"));
    EXPECT_FALSE(g->full_match("ab"));
    if (n == 30) {
      EXPECT_TRUE(g->full_match(std::string(30, 'a')));
      EXPECT_FALSE(g->full_match(std::string(31, 'a')));
    }
  }
}

// An ambiguous grammar: after n letters, p ::= [a-z ] p [0-9] | [a-z ] p [A-Z] | [a-z ] p "." | ""
// has 3^n parse stacks (one per sequence of pending closers). They were kept up to 4096, and
// the token filter copies and feeds a state per node of the vocabulary's trie: a mask cost
// seconds per token on the tiny model (minutes on a 150k vocabulary), stalling the engine.
// Now a state holds at most kMaxStacks stacks and kMaxStackData elements, so a feed is cheap
// whatever came before, and what is kept still leads to sentences.
TEST(Grammar, AmbiguousGrammarsKeepFewStacks) {
  const auto g = Grammar::compile("root ::= p\np ::= [a-z ] p [0-9] | [a-z ] p [A-Z] | [a-z ] p \".\" | \"\"");
  std::string text;
  for (int i = 0; i < 6; ++i) text += "the pirates sail the seven seas ";
  const auto t0 = std::chrono::steady_clock::now();
  Grammar::State st;
  ASSERT_TRUE(takes(*g, text, &st));
  // Each stack is its length and elements: the key is a few words more than their total.
  EXPECT_LE(st.key().size(), 4 * (Grammar::kMaxStackData + Grammar::kMaxStacks + 2));
  int taken = 0;
  for (int i = 0; i < 5000; ++i) {  // about a mask's worth of trie nodes on the tiny model
    Grammar::State t = st;
    taken += t.feed(static_cast<unsigned char>("ab "[i % 3]));  // a letter goes on, whatever was dropped
  }
  EXPECT_EQ(taken, 5000);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
  // What is kept still ends in sentences: close what the text opened, with whichever closer
  // is taken.
  std::string closed = text;
  for (size_t i = 0; i < text.size() && !st.complete(); ++i) {
    bool fed = false;
    for (char c : std::string("9Z.")) {
      if (st.feed(static_cast<unsigned char>(c))) {
        closed += c;
        fed = true;
        break;
      }
    }
    ASSERT_TRUE(fed) << closed;
  }
  EXPECT_EQ(closed.size(), 2 * text.size());
  EXPECT_TRUE(g->full_match(closed));
  EXPECT_TRUE(g->full_match("abZ9") && g->full_match("abc.Z9") && !g->full_match("ab9"));
  // A whole mask over the tiny model's vocabulary after that text (seconds per token before),
  // and the filter still takes exactly what the state takes.
  TLLM_REQUIRE_TINY_MODEL(dir);
  const auto engine = testing::tiny_cpu_engine(dir);
  const std::vector<OutputPiece> fmt = {OutputPiece::sentence(g)};
  OutputFilter filter(*engine->tokenizer(), engine->vocab_size());
  FormatPrefix format(&fmt);
  ASSERT_TRUE(format.feed(text));
  const auto t1 = std::chrono::steady_clock::now();
  EXPECT_FALSE(filter.next(format).ids.empty());
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count(), 0.5);
  testing::expect_filter_is_direct_count(*engine->tokenizer(), engine->vocab_size(), fmt, {"the pirates "});
}

// Characters are code points: classes and '.' take whole UTF-8 sequences, a partial one while
// some character of the class may begin with it, never invalid or surrogate encodings.
TEST(Grammar, Utf8CharactersAreWhole) {
  const auto greek = Grammar::compile(R"(root ::= [α-ω]+ "!")");  // U+03B1..U+03C9: CE B1 .. CF 89
  EXPECT_TRUE(greek->full_match("αβω!"));
  EXPECT_FALSE(greek->full_match("a!"));
  EXPECT_FALSE(greek->full_match("αΩ!"));  // U+03A9, outside
  for (unsigned char lead : {0xCE, 0xCF}) {
    Grammar::State st = greek->start();
    EXPECT_TRUE(st.feed(lead)) << int(lead);
    EXPECT_FALSE(st.complete());
    EXPECT_FALSE(st.feed('A'));  // not a continuation byte
  }
  for (unsigned char lead : {0xD0, 0xC0, 0x80, 0xFF}) EXPECT_FALSE(greek->start().feed(lead)) << int(lead);
  Grammar::State st = greek->start();
  EXPECT_TRUE(st.feed(0xCE));
  EXPECT_FALSE(st.feed(0x90));  // U+0390, below alpha

  const auto any = Grammar::compile(R"(root ::= . "x")");
  EXPECT_TRUE(any->full_match("😀x"));
  EXPECT_TRUE(any->full_match("\nx"));
  EXPECT_FALSE(any->full_match("\xED\xA0\x80x"));  // an encoded surrogate
  EXPECT_FALSE(any->full_match("\xC0\x80x"));      // overlong
  EXPECT_FALSE(any->full_match("\xF4\x90\x80\x80x"));  // above U+10FFFF
}

TEST(Grammar, RefusesMistakesNamingTheLineAndColumn) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"(root ::= foo)", "line 1, column 10: rule 'foo' is not defined"},
      {R"(start ::= "a")", "no 'root' rule"},
      {R"(root ::= "a)", "line 1, column 10: unterminated string"},
      {R"(root ::= [b-a])", "end comes before its start"},
      {R"(root ::= root "a" | "b")", "'root' is left-recursive"},
      {"list ::= list \",\" \"a\" | \"a\"\nroot ::= list", "'list' is left-recursive"},
      {R"(root ::= x "a" | "b"  x ::= ""? root)", "left-recursive"},  // through a rule that can be empty
      // A repetition of something that can be empty: named as such, not as a left recursion.
      {R"(root ::= ("" | "a")*)", "line 1, column 20: rule 'root' repeats (with *, + or {m,}) something that can match the empty text"},
      {R"(root ::= "b" x+  x ::= "a"?)", "rule 'root' repeats"},
      {R"(root ::= x{2,}  x ::= "a"* "b"?)", "rule 'root' repeats"},
      {R"(root ::= item*  item ::= root? "a")", "left-recursive"},  // a real recursion through a repetition
      {R"(root ::= "a" root)", "can never end"},
      {R"(root ::= "a"{3,2})", "n < m"},
      {R"(root ::= "a"{1001})", "above 1000"},
      {R"(root ::= "a"{2)", "a bad repetition"},
      {R"(root ::= ("a")", "unclosed '('"},
      {"root ::= \"a\"\nroot ::= \"b\"", "line 2, column 1: rule 'root' is defined twice"},
      {R"(root = "a")", "expected '::='"},
      {R"(root ::= "\q")", "unknown escape"},
      {R"(root ::= [^\x00-\U0010FFFF])", "matches no character"},
      {R"(root ::= "a" ))", "unbalanced ')'"},
      {R"(root ::= "a" ; )", "unexpected character ';'"},
      {"root ::= \"\xff\"", "not valid UTF-8"},
      {R"(root ::= "\uD800")", "not a Unicode character"},
      {"", "no 'root' rule"},
      {"root ::= " + std::string(300, '(') + "\"a\"" + std::string(300, ')'), "nested too deeply"},
  };
  std::vector<std::pair<std::string, std::string>> all = cases;
  std::string many = "root ::=";
  for (int i = 0; i < 21; ++i) many += " \"c\"{0,1000}";  // a rule per optional repeat
  all.push_back({many, "too many rules"});
  std::string big = "root ::=";
  for (int i = 0; i < 300; ++i) big += " \"ab\"{1000}";  // 300,000 items written out
  all.push_back({big, "too large"});
  for (const auto& [text, want] : all) {
    try {
      Grammar::compile(text);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << text << "\n  -> " << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("grammar: ", 0), 0u) << e.what();
    }
  }
}

// Damaged grammars (bytes of valid ones replaced, dropped or repeated, fixed seed): each either
// compiles, and then its recognizer steps through a text, or is refused with an
// InvalidArgument; nothing else escapes (no crash, no other exception).
TEST(Grammar, DamagedTextIsCompiledOrRefused) {
  const std::vector<std::string> seeds = {
      "root ::= expr\nexpr ::= term ((\"+\" | \"*\") term)*\nterm ::= [0-9]+ | \"(\" expr \")\"",
      "root ::= (\"a\" | [b-d]){1,3} \"\\n\" .? # comment\n",
      "root ::= item (\",\" item)*\nitem ::= [^,\\x00]+",
  };
  const std::string noise = "()[]{}|*+?.\"\\:=-^#, \nab0129x";
  std::mt19937 rng(11);
  int compiled = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string t = seeds[static_cast<size_t>(trial) % seeds.size()];
    for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k) {
      const size_t at = rng() % t.size();
      switch (rng() % 3) {
        case 0: t[at] = noise[rng() % noise.size()]; break;
        case 1: t.erase(at, 1); break;
        default: t.insert(at, 1, t[at]); break;
      }
    }
    try {
      const auto g = Grammar::compile(t);
      ++compiled;
      Grammar::State st = g->start();
      for (char c : std::string("a1(b,+)x\n")) st.feed(static_cast<unsigned char>(c));
    } catch (const InvalidArgument&) {
    }
  }
  EXPECT_GT(compiled, 100);
}

TEST(Grammar, AsAnOutputPiece) {
  const std::vector<OutputPiece> fmt = {OutputPiece::text("n="), OutputPiece::sentence(Grammar::compile("root ::= [0-9]+")),
                                        OutputPiece::text(";"),
                                        OutputPiece::sentence(Grammar::compile(R"(root ::= "ok" | "no")"))};
  for (const char* ok : {"n=7;ok", "n=123;no"}) {
    FormatPrefix p(&fmt);
    EXPECT_TRUE(p.feed(ok) && p.complete()) << ok;
  }
  for (const char* open : {"n=", "n=12", "n=12;o"}) {
    FormatPrefix p(&fmt);
    EXPECT_TRUE(p.feed(open) && !p.complete()) << open;
  }
  for (const char* bad : {"n=;", "n=12;ok!", "n=x", "n=1;nok"}) {
    FormatPrefix p(&fmt);
    EXPECT_FALSE(p.feed(bad)) << bad;
  }
  // Equal states, equal keys; different states, different keys.
  FormatPrefix a(&fmt), b(&fmt), c(&fmt);
  ASSERT_TRUE(a.feed("n=12") && b.feed("n=34") && c.feed("n=12;"));
  EXPECT_EQ(a.key(), b.key());
  EXPECT_NE(a.key(), c.key());
  const std::vector<OutputPiece> empty = {OutputPiece::sentence(Grammar::compile(R"(root ::= "")")), OutputPiece::text("x")};
  FormatPrefix e(&empty);
  EXPECT_FALSE(e.complete());
  EXPECT_TRUE(e.feed("x") && e.complete());
}

// The shipped tiny model under a grammar: every output that stopped is a sentence, one cut by
// max_tokens a live prefix; the filter's tokens against a direct count.
TEST(Grammar, TinyModelOutputsAreSentences) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const auto engine = testing::tiny_cpu_engine(dir);
  const auto g = Grammar::compile(R"(
      root    ::= subject " " verb " " object "."
      subject ::= ("The" | "A") " " word
      verb    ::= "said" | "saw" | "went unto"
      object  ::= word (" " word){0,4}
      word    ::= [a-z]+
  )");
  const std::vector<OutputPiece> fmt = {OutputPiece::sentence(g)};
  const int stopped = testing::generate_under(*engine, fmt, [&](const std::string& text, bool whole) {
    if (whole) {
      EXPECT_TRUE(g->full_match(text));
    } else {
      EXPECT_TRUE(takes(*g, text));
    }
  });
  EXPECT_GT(stopped, 0);
  testing::expect_filter_is_direct_count(*engine->tokenizer(), engine->vocab_size(), fmt,
                                         {"", "The", "A man", "The king went", "The king said the"});
  // JSON as a grammar: inside a string most characters leave the state as it is, and the
  // filter takes tokens of those without walking them (Grammar::State::loops); after a
  // backslash, a partial character or outside strings it walks them all.
  const std::vector<OutputPiece> json = {OutputPiece::sentence(Grammar::compile(kJsonGbnf))};
  testing::expect_filter_is_direct_count(*engine->tokenizer(), engine->vocab_size(), json,
                                         {"", "{", "{\"na", "{\"name\": \"The LORD said", "{\"a\": \"x\\",
                                          "{\"a\": \"caf\xC3\xA9 ", "{\"a\": \"\xC3", "{\"a\": [1, 2"});
}

}  // namespace
}  // namespace tllm
