// A choice of formats (OutputPiece::one_of_formats) and free text that must reach its trigger
// (OutputPiece::text_through): FormatPrefix against texts chosen to sit on each rule, and
// against a direct reading of the formats: a text is a prefix of the choice exactly when it is
// a prefix of one of its formats, whole exactly when whole for one of them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../server/test_util.h"
#include "engine/json_schema.h"
#include "engine/output_format.h"
#include "engine/regex.h"
#include "filter_check.h"

namespace tllm {
namespace {

bool takes(const std::vector<OutputPiece>& fmt, const std::string& text) {
  FormatPrefix p(&fmt);
  return p.feed(text);
}

bool whole(const std::vector<OutputPiece>& fmt, const std::string& text) {
  FormatPrefix p(&fmt);
  return p.feed(text) && p.complete();
}

std::shared_ptr<const JsonSchema> small_object() {
  return JsonSchema::compile(nlohmann::json::parse(
      R"({"type": "object", "properties": {"a": {"enum": [1, 2]}}, "required": ["a"], "additionalProperties": false})"));
}

// A JSON value or a tag, as a reply is a JSON answer or a tool call: each alternative is taken
// as it is alone, and the choice is whole where the alternative written is.
TEST(FormatChoice, EitherFormatAsItIsAlone) {
  const std::vector<OutputPiece> json = {OutputPiece::value(small_object())};
  const std::vector<OutputPiece> tag = {OutputPiece::text("<c>"), OutputPiece::any_of({"x", "yy"}), OutputPiece::text("</c>")};
  const std::vector<OutputPiece> fmt = {OutputPiece::one_of_formats({json, tag})};
  for (const std::string s : {"", "{", "{\"a\"", "{\"a\": 2}", "<", "<c>", "<c>y", "<c>yy</c>", "<c>x</c", "{\"a\":1}x",
                              "<c>x</c>{", "{\"b\"", "<c>z", "<{", "x"}) {
    SCOPED_TRACE(s);
    EXPECT_EQ(takes(fmt, s), takes(json, s) || takes(tag, s));
    EXPECT_EQ(whole(fmt, s), whole(json, s) || whole(tag, s));
  }
  EXPECT_TRUE(whole(fmt, "{\"a\": 1}"));
  EXPECT_TRUE(whole(fmt, "<c>yy</c>"));
  EXPECT_FALSE(takes(fmt, "<c>yy</c><c>"));  // not repeated
  // The formats' states are apart in the key: the cache cannot mix them.
  FormatPrefix a(&fmt), b(&fmt), c(&fmt);
  ASSERT_TRUE(b.feed("{"));
  ASSERT_TRUE(c.feed("<"));
  EXPECT_NE(a.key(), b.key());
  EXPECT_NE(b.key(), c.key());
  EXPECT_NE(a.key(), c.key());
}

// Repeated: one or more of the formats in a row (tool calls); it may end after any of them.
TEST(FormatChoice, RepeatedChoiceTakesOneOrMore) {
  const std::vector<OutputPiece> call = {OutputPiece::text("<t>"), OutputPiece::any_of({"1", "2"}), OutputPiece::text("</t>"),
                                         OutputPiece::any_of({"", "\n"})};
  const std::vector<OutputPiece> fmt = {OutputPiece::one_of_formats({call}, /*repeat=*/true)};
  for (const char* ok : {"<t>1</t>", "<t>1</t>\n", "<t>1</t><t>2</t>", "<t>2</t>\n<t>1</t>\n<t>2</t>"})
    EXPECT_TRUE(whole(fmt, ok)) << ok;
  for (const char* open : {"", "<t>", "<t>1</t", "<t>1</t>\n<t>"}) {
    EXPECT_TRUE(takes(fmt, open)) << open;
    EXPECT_FALSE(whole(fmt, open)) << open;
  }
  for (const char* bad : {"<t>3", "<t>1</t>\n\n", "<t>1</t>x", "\n<t>1</t>"}) EXPECT_FALSE(takes(fmt, bad)) << bad;
  // Without repeat the same choice ends after one.
  const std::vector<OutputPiece> once = {OutputPiece::one_of_formats({call})};
  EXPECT_TRUE(whole(once, "<t>1</t>\n"));
  EXPECT_FALSE(takes(once, "<t>1</t><t>"));
}

// Free text through a trigger, once: the output may not end before the trigger, and after the
// pieces that follow there is no more free text (text_until, first in its format, repeats and
// may end anywhere).
TEST(FormatChoice, TextThroughATriggerComesOnce) {
  const std::vector<OutputPiece> fmt = {OutputPiece::text_through("</r>"), OutputPiece::value(small_object())};
  for (const char* open : {"", "thinking", "a </ b", "x</r", "x</r>", "</r>{\"a\""}) {
    EXPECT_TRUE(takes(fmt, open)) << open;
    EXPECT_FALSE(whole(fmt, open)) << open;
  }
  EXPECT_TRUE(whole(fmt, "a < b </r>{\"a\": 1}"));
  EXPECT_TRUE(whole(fmt, "</r>{\"a\": 2}"));
  EXPECT_FALSE(takes(fmt, "x</r>{\"a\": 1} more"));
  EXPECT_FALSE(takes(fmt, "x</r>y"));
  const std::vector<OutputPiece> loops = {OutputPiece::text_until("</r>"), OutputPiece::value(small_object())};
  EXPECT_TRUE(whole(loops, "thinking"));
  EXPECT_TRUE(whole(loops, "x</r>{\"a\": 1} more"));
}

// The output may end where every piece after the current one may take no text (a choice with
// "", a regex or grammar that may match "", a choice of formats one of which may), not only
// where they take none.
TEST(FormatChoice, PiecesThatMayBeEmptyLetTheOutputEnd) {
  const std::vector<OutputPiece> fmt = {OutputPiece::text("a"), OutputPiece::any_of({"", "b"}),
                                        OutputPiece::matching(Regex::compile("c*")),
                                        OutputPiece::one_of_formats({{OutputPiece::text("d")}, {}})};
  for (const char* ok : {"a", "ab", "abc", "acc", "ad", "abccd"}) EXPECT_TRUE(whole(fmt, ok)) << ok;
  EXPECT_FALSE(whole(fmt, ""));
  EXPECT_FALSE(takes(fmt, "ada"));
  const std::vector<OutputPiece> then = {OutputPiece::text("a"), OutputPiece::any_of({"", "b"}), OutputPiece::text("c")};
  EXPECT_FALSE(whole(then, "a"));
  EXPECT_FALSE(whole(then, "ab"));
  EXPECT_TRUE(whole(then, "ac"));
}

// A repeated format that restarts beside itself (free text) stays one state, not a copy per
// byte; past kMaxBranches distinct formats the later ones are dropped, and the filter agrees
// with the recognizer there (no shortcut where several formats are live).
TEST(FormatChoice, FormatsInOneStateAreKeptOnce) {
  const std::vector<OutputPiece> text = {OutputPiece::one_of_formats({{OutputPiece::text_until("<")}}, true)};
  FormatPrefix a(&text), b(&text);
  ASSERT_TRUE(a.feed(std::string(10, 'x')));
  ASSERT_TRUE(b.feed(std::string(80, 'x')));
  EXPECT_EQ(a.key(), b.key());

  TLLM_REQUIRE_TINY_MODEL(dir);
  const auto engine = testing::tiny_cpu_engine(dir);
  std::vector<std::vector<OutputPiece>> wide;
  for (char c = 'b'; c <= 'q'; ++c) wide.push_back({OutputPiece::text(std::string("a") + c)});
  wide.push_back({OutputPiece::text_until("zz")});
  ASSERT_GT(wide.size(), FormatPrefix::kMaxBranches);
  const std::vector<OutputPiece> fmt = {OutputPiece::one_of_formats(wide)};
  EXPECT_TRUE(takes(fmt, "ab"));
  testing::expect_filter_is_direct_count(*engine->tokenizer(), engine->vocab_size(), fmt, {"", "a"});
}

// Choices inside choices (reasoning, then an answer or tool calls), against every string over
// an alphabet that reaches each rule: the nested choice agrees with its formats written out.
TEST(FormatChoice, NestedChoicesAgreeWithTheirFormatsWrittenOut) {
  const std::vector<OutputPiece> a = {OutputPiece::any_of({"ab", "b"})};
  const std::vector<OutputPiece> calls = {OutputPiece::one_of_formats({{OutputPiece::text("c"), OutputPiece::any_of({"", "a"})}}, true)};
  const std::vector<OutputPiece> answer = {OutputPiece::one_of_formats({a, calls})};
  const std::vector<OutputPiece> thought = {OutputPiece::text("<"), OutputPiece::text_through(">"),
                                            OutputPiece::one_of_formats({answer})};
  const std::vector<OutputPiece> fmt = {OutputPiece::one_of_formats({thought, answer})};
  // The language written out: [<T>] (ab | b | (c[a])+), T free text without '>'.
  const auto reference = [](const std::string& s, bool* complete) {
    std::string rest = s;
    if (!rest.empty() && rest[0] == '<') {
      const size_t close = rest.find('>');
      if (close == std::string::npos) {
        *complete = false;
        return true;
      }
      rest = rest.substr(close + 1);
    }
    if (rest.empty()) {
      *complete = false;
      return true;
    }
    if (rest == "a") return !(*complete = false);
    if (rest == "ab" || rest == "b") return *complete = true;
    for (size_t i = 0; i < rest.size(); ++i) {  // (c[a])+
      if (rest[i] != 'c') return false;
      if (i + 1 < rest.size() && rest[i + 1] == 'a') ++i;
    }
    return *complete = true;
  };
  int wholes = 0;
  for (const std::string& s : testing::all_strings("<>abc", 6)) {
    SCOPED_TRACE(s);
    bool complete = false;
    const bool ok = reference(s, &complete);
    FormatPrefix p(&fmt);
    ASSERT_EQ(p.feed(s), ok);
    if (ok) {
      EXPECT_EQ(p.complete(), complete);
    }
    wholes += ok && complete;
  }
  EXPECT_GT(wholes, 50);
}

// The token filter under choices, against a direct count on the demo model's vocabulary:
// before the first byte (two formats live), in reasoning's free text, inside a JSON string of
// the one live format (the plain-string shortcut through two levels of choice), and between
// repeated calls.
TEST(FormatChoice, FilterIsTheDirectCount) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const auto engine = testing::tiny_cpu_engine(dir);
  const auto string_field = JsonSchema::compile(nlohmann::json::parse(
      R"({"type": "object", "properties": {"say": {"type": "string", "maxLength": 12}}, "required": ["say"]})"));
  const std::vector<OutputPiece> answer = {OutputPiece::value(string_field)};
  const std::vector<OutputPiece> call = {OutputPiece::text("<tool_call>\n"), OutputPiece::value(small_object()),
                                         OutputPiece::text("\n</tool_call>"), OutputPiece::any_of({"", "\n"})};
  const std::vector<OutputPiece> reply = {OutputPiece::one_of_formats({answer, {OutputPiece::one_of_formats({call}, true)}})};
  const std::vector<OutputPiece> thought = {OutputPiece::text("<think>"), OutputPiece::text_through("</think>"),
                                            OutputPiece::any_of({"", "\n", "\n\n"}), OutputPiece::one_of_formats({reply})};
  const std::vector<OutputPiece> fmt = {OutputPiece::one_of_formats({thought, reply})};
  testing::expect_filter_is_direct_count(*engine->tokenizer(), engine->vocab_size(), fmt,
                                         {"", "<", "<think>", "<think>And the LORD", "<think>x</th", "<think>x</think>\n",
                                          "{\"say\": \"And", "<think>x</think>{\"say\": \"the king",
                                          "<tool_call>\n{\"a\": 1}\n</tool_call>", "<tool_call>\n{\"a\": 1}\n</tool_call>\n"});
}

}  // namespace
}  // namespace tllm
