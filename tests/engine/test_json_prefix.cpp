// JsonPrefix (JSON mode's recognizer) against nlohmann::json as the reference: a byte string is
// a valid prefix when nlohmann either parses it or fails only at its end (the error's byte past
// the input), it starts with an object, and it keeps the recognizer's whitespace policy (none
// before or after the object; between tokens one space or a newline and indentation). Valid documents, hand-picked
// refusals, and 20,000 mutated documents byte by byte.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/json_prefix.h"
#include "engine/output_format.h"
#include "json_oracle.h"

namespace tllm {
namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool oracle_prefix(const std::string& s) { return testing::json_object_prefix(s); }
// The whitespace policy (engine/json_prefix.h): one space, or a newline and up to
// kMaxWhitespace spaces / tabs; which of them depends on what came before the run: after '{',
// '[' or ',' either, after ':' the space, after a key nothing, after a value the newline (and
// then only a closer; in JSON mode a closer may always come).
bool newline_run(const std::string& run) {
  if (run.empty() || run[0] != '\n' || run.size() - 1 > static_cast<size_t>(JsonPrefix::kMaxWhitespace)) return false;
  return run.find_first_not_of(" \t", 1) == std::string::npos;
}
bool whitespace_run_ok(const std::string& before, const std::string& run) {
  const char p = before.back();
  if (p == '{' || p == '[' || p == ',') return run == " " || newline_run(run);
  if (p == ':') return run == " ";
  if (p == '"' && oracle_prefix(before + ":")) return false;  // a key
  return newline_run(run);
}

// Whether the last byte of t makes it no prefix of such a text. nlohmann reads a whole token
// before its parser looks at it, so a token only begun at the end (a 'f' where ':' must come)
// fails "at the end" too: the token is finished first, and t is refused when the parse then
// fails within it. Whitespace is refused after the object and where the run breaks the policy,
// and ',' after whitespace (the mutated documents hold no string with whitespace).
bool oracle_refuses(const std::string& t) {
  if (!oracle_prefix(t)) return true;
  const char c = t.back();
  if (is_ws(c)) {
    const size_t last = t.find_last_not_of(" \t\n\r");
    if (last == std::string::npos || !whitespace_run_ok(t.substr(0, last + 1), t.substr(last + 1))) return true;
    return nlohmann::json::accept(t.substr(0, last + 1));
  }
  if (c == ',' && t.size() > 1 && is_ws(t[t.size() - 2])) return true;  // whitespace only before a closer
  const std::string rest = c == 't' ? "rue" : c == 'f' ? "alse" : c == 'n' ? "ull" : c == '"' ? "\"" :
                           (c == '-' || (c >= '0' && c <= '9')) ? "0" : "";
  if (rest.empty()) return false;
  const std::string u = t + rest;
  try {
    const nlohmann::json parsed = nlohmann::json::parse(u);
    (void)parsed;
    return false;
  } catch (const nlohmann::json::parse_error& e) {
    return e.byte <= u.size();
  }
}
bool oracle_complete(const std::string& s) { return !s.empty() && s[0] == '{' && nlohmann::json::accept(s); }

// How many bytes of s the recognizer takes before it refuses one.
size_t accepted_bytes(const std::string& s, JsonPrefix& p) {
  for (size_t i = 0; i < s.size(); ++i)
    if (!p.feed(static_cast<unsigned char>(s[i]))) return i;
  return s.size();
}

const std::vector<std::string> kDocs = {
    "{}",
    "{\"a\": 1}",
    "{\"name\": \"tiny\", \"n\": -12.5e+3, \"ok\": true, \"no\": false, \"x\": null}",
    "{\"list\": [1, 2.0, -0, 0.5, 1E9, 3e-2, [], {}, [[\"deep\"]]], \"o\": {\"k\": {\"k\": []}}}",
    "{\"utf8\": \"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xED\x9F\xBF \xF4\x8F\xBF\xBF\"}",
    "{\n  \"pretty\": [\n    1,\n    2\n  ]\n}",
    // Last: the fuzz test leaves out surrogate escapes.
    "{\"esc\": \"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9 \\uD83D\\uDE00\"}",
};

TEST(JsonPrefix, TakesValidDocumentsWhole) {
  for (const std::string& d : kDocs) {
    SCOPED_TRACE(d);
    ASSERT_TRUE(oracle_complete(d));
    JsonPrefix p;
    ASSERT_EQ(accepted_bytes(d, p), d.size());
    EXPECT_TRUE(p.complete());
    JsonPrefix q;
    for (size_t i = 0; i + 1 < d.size(); ++i) {
      ASSERT_TRUE(q.feed(static_cast<unsigned char>(d[i])));
      EXPECT_FALSE(q.complete()) << "after byte " << i;
    }
    EXPECT_FALSE(p.feed('x'));
    EXPECT_FALSE(p.feed(' '));  // the sequence can only end here
    EXPECT_TRUE(p.complete());
  }
}

TEST(JsonPrefix, RefusesAtTheFirstImpossibleByte) {
  struct Case {
    std::string text;
    size_t refused_at;
  };
  const std::vector<Case> cases = {
      {"[1]", 0},                          // not an object
      {"\"s\"", 0},
      {"{\"a\" 1}", 4},                    // no whitespace before ':'
      {"{\"a\": 01}", 7},                  // no leading zeros
      {"{\"a\": 1.}", 8},                  // a digit must follow '.'
      {"{\"a\": .5}", 6},
      {"{\"a\": tru}", 9},
      {"{\"a\": nul1}", 9},
      {"{\"a\": 1,}", 8},                  // no trailing comma
      {"{\"a\": [1,]}", 9},
      {"{\"a\": [1}", 8},                  // mismatched closer
      {"{\"a\": \"x\ny\"}", 8},           // raw control character in a string
      {"{\"a\": \"\\x\"}", 8},             // unknown escape
      {"{\"a\": \"\\u12g4\"}", 11},
      {"{\"a\": \"\\uDC00\"}", 10},        // a low surrogate alone
      {"{\"a\": \"\\uD800x\"}", 13},       // a high surrogate without its low one
      {"{\"a\": \"\\uD800\\u0041\"}", 15},
      {"{\"a\": \"\xC0\xAF\"}", 7},        // overlong
      {"{\"a\": \"\xE0\x80\x80\"}", 8},
      {"{\"a\": \"\xED\xA0\x80\"}", 8},    // a surrogate in UTF-8
      {"{\"a\": \"\xF4\x90\x80\x80\"}", 8},  // above U+10FFFF
      {"{\"a\": \"\xC3\"}", 8},            // a cut character
      {"{}{}", 2},
      {"{1: 2}", 1},                       // keys are strings
      {" {}", 0},                          // no whitespace before the object
      {"{}\n", 2},                         // nor after it
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    JsonPrefix p;
    EXPECT_EQ(accepted_bytes(c.text, p), c.refused_at);
    EXPECT_TRUE(oracle_prefix(c.text.substr(0, c.refused_at)));
    // nlohmann checks a \u escape's surrogate rules only after its fourth digit.
    if (c.text.find("\\uD") == std::string::npos) {
      EXPECT_TRUE(oracle_refuses(c.text.substr(0, c.refused_at + 1)));
    }
  }
}

TEST(JsonPrefix, LimitsDepthAndWhitespaceRuns) {
  JsonPrefix p;
  ASSERT_TRUE(p.feed("{\"a\":"));
  for (int d = 1; d < JsonPrefix::kMaxDepth; ++d) ASSERT_TRUE(p.feed('[')) << d;
  EXPECT_FALSE(p.feed('['));
  EXPECT_FALSE(p.feed('{'));
  JsonPrefix w;
  ASSERT_TRUE(w.feed('{'));
  ASSERT_TRUE(w.feed('\n'));
  for (int i = 0; i < JsonPrefix::kMaxWhitespace; ++i) ASSERT_TRUE(w.feed(i % 2 ? ' ' : '\t'));
  EXPECT_FALSE(w.feed(' '));
  EXPECT_FALSE(w.feed('\n'));
  EXPECT_TRUE(w.feed('"'));
  ASSERT_TRUE(w.feed("k\""));
  EXPECT_FALSE(w.feed(' '));  // none before ':'
  ASSERT_TRUE(w.feed(':'));
  EXPECT_TRUE(w.feed(' '));  // a run starts again after a token
  EXPECT_FALSE(w.feed(' '));  // one space, not two
  EXPECT_FALSE(w.feed('\n'));  // after ':' the space only
  ASSERT_TRUE(w.feed('1'));
  JsonPrefix before_comma = w;
  EXPECT_FALSE(before_comma.feed(' '));  // after a value: a newline, and then only the closer
  EXPECT_TRUE(before_comma.feed('\n'));
  EXPECT_FALSE(JsonPrefix(before_comma).feed(','));
  EXPECT_TRUE(before_comma.feed('}'));
  for (const char* bad : {"{\t", "{\r\n", "{\n\n", "{ \n"}) {
    JsonPrefix b;
    EXPECT_FALSE(b.feed(std::string_view(bad))) << bad;
  }
}

TEST(JsonPrefix, KeysNameTheState) {
  JsonPrefix a, b, c;
  ASSERT_TRUE(a.feed("{\"x\": [\"ab"));
  ASSERT_TRUE(b.feed("{\"yy\": [\"c"));
  ASSERT_TRUE(c.feed("{\"x\": {\"k\": \"ab"));
  EXPECT_EQ(a.key(), b.key());  // inside a string in an array in an object, either way
  EXPECT_NE(a.key(), c.key());  // a different container below the string
}

// Mutated documents (bytes inserted, deleted, replaced; \u escapes without d / D, whose
// surrogate rules nlohmann checks only after the fourth digit): the recognizer takes exactly
// the bytes of the longest valid prefix, and is complete exactly when nlohmann accepts.
TEST(JsonPrefix, MatchesNlohmannOnMutatedDocuments) {
  std::mt19937_64 rng(7);
  const std::string alphabet =
      "{}[]:,\"\\ \t\n0123456789.-+eEtrufalsnbc/\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xED\xA0\xC0\xFF\x01";
  int refused = 0, complete = 0;
  for (int n = 0; n < 20000; ++n) {
    std::string s = kDocs[rng() % (kDocs.size() - 1)];  // no surrogate escapes
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const size_t at = rng() % s.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), c); break;
        case 1: s.erase(at, 1); break;
        default: s[at] = c; break;
      }
    }
    JsonPrefix p;
    const size_t took = accepted_bytes(s, p);
    SCOPED_TRACE(::testing::PrintToString(s));
    ASSERT_TRUE(oracle_prefix(s.substr(0, took)));
    if (took < s.size()) {
      ASSERT_TRUE(oracle_refuses(s.substr(0, took + 1))) << "refused byte " << took;
      ++refused;
    } else {
      ASSERT_EQ(p.complete(), oracle_complete(s));
      complete += p.complete();
    }
  }
  EXPECT_GT(refused, 10000);
  EXPECT_GT(complete, 100);
}

// Literal pieces around an object (a forced tool call's shape): exactly that text is taken,
// complete at its end; keys tell formats and positions apart.
TEST(FormatPrefix, LiteralsAroundAnObject) {
  const std::vector<OutputPiece> call = {OutputPiece::text("<c>{\"name\": \"f\", \"arguments\": "), OutputPiece::object(),
                                         OutputPiece::text("}</c>")};
  const std::string text = "<c>{\"name\": \"f\", \"arguments\": {\"x\": [1, \"}\"]}}</c>";
  FormatPrefix p(&call);
  for (size_t i = 0; i < text.size(); ++i) {
    ASSERT_FALSE(p.complete()) << i;
    FormatPrefix wrong = p;
    EXPECT_FALSE(wrong.feed("\x01")) << i;  // a control byte fits nowhere
    ASSERT_TRUE(p.feed(std::string_view(text).substr(i, 1))) << i;
  }
  EXPECT_TRUE(p.complete());
  EXPECT_FALSE(FormatPrefix(p).feed(" "));
  FormatPrefix q(&call);
  EXPECT_FALSE(q.feed("<c>{\"name\": \"g\""));  // the fixed name
  FormatPrefix r(&call);
  EXPECT_FALSE(r.feed("<c>{\"name\": \"f\", \"arguments\": []"));  // the arguments are an object
  const std::vector<OutputPiece> other = {OutputPiece::text("<d>{\"name\": \"f\", \"arguments\": "), OutputPiece::object(),
                                          OutputPiece::text("}</c>")};
  FormatPrefix a(&call), b(&other);
  EXPECT_NE(a.key(), b.key());
  ASSERT_TRUE(a.feed("<c>{"));
  FormatPrefix a2(&call);
  ASSERT_TRUE(a2.feed("<c>{\""));
  EXPECT_NE(a.key(), a2.key());
  const std::vector<OutputPiece> empty;
  EXPECT_TRUE(FormatPrefix(&empty).complete());
}

// One of several texts (a forced call's tool name): any one whole, nothing else.
TEST(FormatPrefix, OneOfSeveralTexts) {
  const std::vector<OutputPiece> fmt = {OutputPiece::text("<"), OutputPiece::any_of({"get\"", "get_weather\"", "now\""}),
                                        OutputPiece::text(">")};
  for (const char* ok : {"<get\">", "<get_weather\">", "<now\">"}) {
    FormatPrefix p(&fmt);
    EXPECT_TRUE(p.feed(ok)) << ok;
    EXPECT_TRUE(p.complete()) << ok;
  }
  for (const char* bad : {"<ge>", "<got\"", "<get_w\"", "<now>", "<nowx"}) {
    FormatPrefix p(&fmt);
    EXPECT_FALSE(p.feed(bad) && p.complete()) << bad;
  }
  FormatPrefix open(&fmt);
  EXPECT_TRUE(open.feed("<get"));  // still get" or get_weather"
  EXPECT_FALSE(open.complete());
  FormatPrefix a(&fmt), b(&fmt);
  ASSERT_TRUE(a.feed("<g"));
  ASSERT_TRUE(b.feed("<n"));
  EXPECT_NE(a.key(), b.key());
}

}  // namespace
}  // namespace tllm
