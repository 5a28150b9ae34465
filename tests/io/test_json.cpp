#include <gtest/gtest.h>

#include "io/json.h"
#include "test_helpers.h"

using namespace tllm;
using tllm::testing::expect_error_with;

TEST(Json, ParseErrorsNameTheSource) {
  expect_error_with([] { parse_json("{\"a\": 1,}", "cfg.json"); }, {"cfg.json", "invalid JSON"});
  expect_error_with([] { parse_json("", "empty.json"); }, {"empty.json", "invalid JSON"});
  expect_error_with([] { parse_json("{} extra", "x.json"); }, {"x.json", "invalid JSON"});
  expect_error_with([] { parse_json("{\"a\": NaN}", "x.json"); }, {"x.json", "invalid JSON"});
  expect_error_with([] { read_json_file("/nonexistent/dir/config.json"); }, {"/nonexistent/dir/config.json"});
}

// The parser's message quotes the byte it stopped at; a UTF-8 lead byte alone there would make
// the message invalid UTF-8, so bytes outside ASCII are written as \xNN.
TEST(Json, ParseErrorsQuoteBytesOutsideAsciiEscaped) {
  try {
    parse_json("{\"a\": \xc3\xbf}", "cfg.json");
    FAIL() << "parsed";
  } catch (const std::exception& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("\\xc3'"), std::string::npos) << m;
    for (const char c : m) EXPECT_LT(static_cast<unsigned char>(c), 0x80) << m;
  }
}

// An error message quotes at most ~120 characters of a value, however deep: 100,000 nested
// arrays as a config.json used to overflow the stack while the message was written.
TEST(Json, ErrorsQuoteDeepValuesBriefly) {
  nlohmann::json deep = nlohmann::json::array();
  for (int i = 0; i < 100000; ++i) deep = nlohmann::json::array({std::move(deep)});
  expect_error_with([&] { JsonFields f(deep, "deep.json"); }, {"deep.json", "must be a JSON object", "[[[[[[[[[...]]]]]]]]]"});
  // Text nested that deep is refused before it is parsed (its copies would recurse as deep).
  expect_error_with([] { parse_json(std::string(100000, '[') + std::string(100000, ']'), "d.json"); },
                    {"d.json", "nest 100000 levels deep"});
  EXPECT_EQ(json_depth(R"({"a": ["[[[", {"b": "\"{{"}], "c": {}})"), 3);
  EXPECT_NO_THROW(parse_json(std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']'), "ok.json"));
  EXPECT_EQ(json_brief(parse_json(R"({"a": [1, {"b": "c"}], "d": null})", "x.json")), R"({"a":[1,{"b":"c"}],"d":null})");
  std::string many = "[1";
  for (int i = 0; i < 5000; ++i) many += ",1";
  const std::string brief = json_brief(parse_json(many + "]", "x.json"));
  EXPECT_EQ(brief.size(), 123u);
}

TEST(Json, DuplicateKeysAreErrorsAtAnyDepth) {
  expect_error_with([] { parse_json(R"({"a": 1, "a": 2})", "f.json"); }, {"f.json", "duplicate key \"a\"", "top level"});
  expect_error_with([] { parse_json(R"({"x": {"b": 1, "c": [ {"k": 1, "k": 2} ]}})", "f.json"); },
                    {"f.json", "duplicate key \"k\"", "x.c"});
  // The same key in sibling objects is fine.
  auto j = parse_json(R"({"x": {"k": 1}, "y": {"k": 2}, "z": [{"k": 1}, {"k": 2}]})", "f.json");
  EXPECT_EQ(j["y"]["k"], 2);
}

TEST(Json, FieldsTypedAccess) {
  auto j = parse_json(R"({"i": 7, "f": 2.5, "fi": 4096.0, "neg": -3, "b": true, "s": "x", "n": null,
                          "l": [1, 2], "ls": ["a"], "o": {"p": 1.5}, "big": 99999999999})",
                      "c.json");
  JsonFields f(j, "c.json");
  EXPECT_EQ(f.get_int("i"), 7);
  EXPECT_EQ(f.get_int("fi"), 4096);
  EXPECT_EQ(f.get_int("neg"), -3);
  EXPECT_EQ(f.get_number("i"), 7.0);
  EXPECT_EQ(f.get_number("f"), 2.5);
  EXPECT_EQ(f.get_bool("b"), true);
  EXPECT_EQ(f.get_string("s"), "x");
  EXPECT_FALSE(f.has("n"));
  EXPECT_FALSE(f.get_int("n").has_value());
  EXPECT_FALSE(f.get_int("absent").has_value());
  EXPECT_EQ(*f.get_int_list("l"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(*f.get_int_or_int_list("i"), (std::vector<int64_t>{7}));
  EXPECT_EQ(*f.get_int_or_int_list("l"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(*f.get_string_list("ls"), (std::vector<std::string>{"a"}));
  auto o = f.get_object("o");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->get_number("p"), 1.5);

  expect_error_with([&] { f.get_int("f"); }, {"c.json", "field 'f' = 2.5", "integer"});
  expect_error_with([&] { f.get_bool("i"); }, {"c.json", "field 'i' = 7", "true or false"});
  expect_error_with([&] { f.get_string("i"); }, {"field 'i'", "string"});
  expect_error_with([&] { f.get_int_list("ls"); }, {"field 'ls'", "\"a\""});
  expect_error_with([&] { f.get_object("l"); }, {"field 'l'", "object"});
  expect_error_with([&] { o->get_int("p"); }, {"c.json", "field 'o.p' = 1.5"});
  expect_error_with([&] { f.get_int_in("big", 1, std::numeric_limits<int>::max()); },
                    {"field 'big' = 99999999999", "is too large (at most 2147483647)"});
  expect_error_with([&] { f.get_int_in("neg", 0, 10); }, {"field 'neg' = -3", "[0, 10]"});
  expect_error_with([&] { f.require_int("absent"); }, {"c.json", "field 'absent'", "required"});
  expect_error_with([&] { f.require_int("n"); }, {"field 'n'", "required"});
  expect_error_with([&] { JsonFields(j["l"], "c.json", "l"); }, {"c.json", "'l'", "JSON object"});
}
