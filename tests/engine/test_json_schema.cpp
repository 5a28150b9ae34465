// JSON Schema structured output (engine/json_schema.h, engine/json_prefix.h) against an
// independent validator (schema_oracle.h) and nlohmann::json: random walks through the bytes
// the recognizer takes never reach a dead end and, once complete, are valid JSON the schema
// allows; those documents re-serialized are taken whole; hand-picked refusals at the exact byte;
// compile errors name the keyword and its place.
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/json_prefix.h"
#include "engine/json_schema.h"
#include "engine/output_format.h"
#include "schema_oracle.h"

namespace tllm {
namespace {

using nlohmann::json;

JsonPrefix prefix_of(const json& schema) { return JsonPrefix(JsonSchema::compile(schema)); }

// nlohmann's parse, or nothing: also for numbers beyond a double's range ("4e724" is JSON, but
// nlohmann refuses it), which `overflow` reports.
std::optional<json> parse(const std::string& doc, bool* overflow = nullptr) {
  try {
    return json::parse(doc);
  } catch (const json::out_of_range&) {
    if (overflow) *overflow = true;
  } catch (const json::parse_error&) {
  }
  return std::nullopt;
}

// Bytes the recognizer takes after `p`.
std::vector<unsigned char> takes(const JsonPrefix& p) {
  std::vector<unsigned char> out;
  for (int c = 0; c < 256; ++c) {
    JsonPrefix q = p;
    if (q.feed(static_cast<unsigned char>(c))) out.push_back(static_cast<unsigned char>(c));
  }
  return out;
}

// A random walk through what the recognizer takes, closers favoured so that most walks end.
// Returns false when it did not complete within max_bytes.
bool random_walk(JsonPrefix p, std::mt19937_64& rng, size_t max_bytes, std::string& out) {
  out.clear();
  while (out.size() < max_bytes) {
    if (p.closed() || (p.complete() && rng() % 4 == 0)) return true;
    const std::vector<unsigned char> ok = takes(p);
    if (ok.empty() && p.complete()) return true;  // a number nothing may extend ("0")
    if (ok.empty()) {
      ADD_FAILURE() << "dead end after " << ::testing::PrintToString(out);
      return false;
    }
    std::vector<double> w;
    for (unsigned char c : ok) {
      double x = 1.0;
      if (c == '}' || c == ']') x = 60.0;
      else if (c == '"' || c == ',' || c == ':') x = 25.0;
      else if (c == '{' || c == '[') x = 6.0;
      else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) x = 3.0;
      else if (c == ' ' || c == '\n') x = 2.0;
      w.push_back(x);
    }
    std::discrete_distribution<size_t> pick(w.begin(), w.end());
    const unsigned char c = ok[pick(rng)];
    EXPECT_TRUE(p.feed(c));
    out.push_back(static_cast<char>(c));
  }
  return p.complete();
}

const std::vector<json>& schemas() {
  static const std::vector<json> s = {
      json::parse(R"({"type": "object", "properties": {
          "name": {"type": "string", "minLength": 1, "maxLength": 8}, "age": {"type": "integer"},
          "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b", "cd"]}, "minItems": 1, "maxItems": 3},
          "ok": {"type": "boolean"}, "score": {"type": ["number", "null"]}}, "required": ["name", "age"]})"),
      json::parse(R"({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
          "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}}, "required": ["v"]}},
          "$ref": "#/$defs/node"})"),
      json::parse(R"({"anyOf": [
          {"type": "object", "properties": {"kind": {"const": "circle"}, "r": {"type": "number"}}, "required": ["kind", "r"]},
          {"type": "object", "properties": {"kind": {"const": "rect"}, "w": {"type": "number"}, "h": {"type": "number"}},
           "required": ["kind", "w", "h"]}]})"),
      json::parse(R"({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": false, "minItems": 2})"),
      json::parse(R"({"enum": ["x", 1, 12, 1.5, null, true, {"a": [1, 2]}]})"),
      json::parse(R"({"type": "object", "properties": {"id": {"type": "integer"}},
          "additionalProperties": {"type": "string", "maxLength": 3}})"),
      json(true),
      json::parse(R"({"type": "object", "properties": {"a": {"type": "null"}, "ab": {"type": "null"},
          "a b": {"type": "null"}, "q\"": {"type": "null"}, "\u00e9": {"type": "null"}}, "required": ["ab"]})"),
      json::parse(R"({"type": "string", "minLength": 3, "maxLength": 3})"),
      json::parse(R"({"type": "integer", "nullable": true})"),
      json::parse(R"({"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "array", "items": {"$ref": "#"}}]})"),
      json::parse(R"({"type": "object", "properties": {"x": {"allOf": [{"type": "number"}]}, "y": {"title": "any"}},
          "required": ["x", "y"], "description": "annotations are ignored"})"),
      json::parse(R"({"type": "array", "items": {"anyOf": [{"type": "integer", "minimum": -5, "maximum": 250},
          {"type": "integer", "exclusiveMinimum": 1000, "exclusiveMaximum": 1003}]}, "maxItems": 4})"),
  };
  return s;
}

TEST(JsonSchema, RandomWalksEndInValidDocuments) {
  std::mt19937_64 rng(11);
  for (size_t k = 0; k < schemas().size(); ++k) {
    const json& schema = schemas()[k];
    SCOPED_TRACE(schema.dump());
    const testing::SchemaOracle oracle(schema);
    const JsonPrefix start = prefix_of(schema);
    int complete = 0;
    for (int n = 0; n < 150; ++n) {
      std::string doc;
      if (!random_walk(start, rng, 3000, doc)) continue;
      SCOPED_TRACE(::testing::PrintToString(doc));
      bool overflow = false;
      const std::optional<json> parsed_doc = parse(doc, &overflow);
      if (overflow) continue;
      ++complete;
      ASSERT_TRUE(parsed_doc.has_value());
      const json& parsed = *parsed_doc;
      ASSERT_TRUE(oracle.valid(parsed));
      // The same value written compactly is taken whole (but for integers beyond 64 bits, which
      // nlohmann writes back as "8.8e+20", no integer's syntax).
      const std::string compact = parsed.dump();
      if (compact.find("e+") != std::string::npos) continue;
      JsonPrefix again = start;
      ASSERT_TRUE(again.feed(std::string_view(compact))) << compact;
      EXPECT_TRUE(again.complete());
    }
    EXPECT_GT(complete, 100);
  }
}

// Random schemas (nested objects, arrays, tuples, unions, type lists, enums, bounds, lengths):
// whatever compiles has no dead end, and every walk that completes is valid under it.
json random_schema(std::mt19937_64& rng, int depth) {
  const auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  const int kind = depth <= 0 ? pick(6) : pick(10);
  switch (kind) {
    case 0: {
      json s = {{"type", "string"}};
      if (pick(2)) s["maxLength"] = pick(6);
      if (pick(2)) s["minLength"] = pick(4);
      return s;
    }
    case 1: {
      json s = {{"type", "integer"}};
      if (pick(2)) s["minimum"] = pick(200) - 100;
      if (pick(2)) s[pick(2) ? "maximum" : "exclusiveMaximum"] = pick(300) - 50;
      return s;
    }
    case 2: return {{"type", pick(2) ? "number" : "boolean"}};
    case 3: return {{"type", "null"}};
    case 4: {
      json e = json::array();
      for (int i = 0, n = 1 + pick(4); i < n; ++i) {
        switch (pick(4)) {
          case 0: e.push_back(std::string(1 + pick(3), static_cast<char>('a' + pick(3)))); break;
          case 1: e.push_back(pick(30) - 10); break;
          case 2: e.push_back(nullptr); break;
          default: e.push_back(json::array({pick(3), "x"})); break;
        }
      }
      return {{"enum", e}};
    }
    case 5: return {{"type", json::array({"string", "integer", "null"})}};
    case 6: case 7: {
      json s = {{"type", "object"}, {"properties", json::object()}};
      json required = json::array();
      for (int i = 0, n = 1 + pick(4); i < n; ++i) {
        const std::string key = std::string(1, static_cast<char>('a' + pick(4))) + (pick(2) ? "b" : "");
        s["properties"][key] = random_schema(rng, depth - 1);
        if (pick(2)) required.push_back(key);
      }
      std::sort(required.begin(), required.end());
      required.erase(std::unique(required.begin(), required.end()), required.end());
      s["required"] = required;
      if (pick(3) == 0) s["additionalProperties"] = pick(2) ? json(true) : random_schema(rng, 0);
      return s;
    }
    case 8: {
      json s = {{"type", "array"}, {"items", random_schema(rng, depth - 1)}};
      if (pick(2)) s["maxItems"] = 1 + pick(3);
      if (pick(3) == 0) s["minItems"] = pick(2);
      if (pick(3) == 0) s["prefixItems"] = json::array({random_schema(rng, depth - 1)});
      return s;
    }
    default: {
      json alts = json::array();
      for (int i = 0, n = 2 + pick(2); i < n; ++i) alts.push_back(random_schema(rng, depth - 1));
      return {{pick(2) ? "anyOf" : "oneOf", alts}};
    }
  }
}

TEST(JsonSchema, RandomSchemasHaveNoDeadEnds) {
  std::mt19937_64 rng(99);
  int compiled = 0, walks = 0;
  for (int k = 0; k < 120; ++k) {
    const json schema = random_schema(rng, 3);
    std::shared_ptr<const JsonSchema> c;
    try {
      c = JsonSchema::compile(schema);
    } catch (const InvalidArgument&) {
      continue;  // e.g. a string whose minLength exceeds its maxLength
    }
    ++compiled;
    SCOPED_TRACE(schema.dump());
    const testing::SchemaOracle oracle(schema);
    for (int n = 0; n < 20; ++n) {
      std::string doc;
      if (!random_walk(JsonPrefix(c), rng, 2000, doc)) continue;
      bool overflow = false;
      const std::optional<json> parsed = parse(doc, &overflow);
      if (overflow) continue;
      ++walks;
      ASSERT_TRUE(parsed.has_value()) << doc;
      ASSERT_TRUE(oracle.valid(*parsed)) << doc;
    }
  }
  EXPECT_GT(compiled, 80);
  EXPECT_GT(walks, 1000);
}

// Documents the validator refuses are refused by the recognizer somewhere (a sample of
// near-miss mutations of valid ones); documents it takes whole and complete are valid.
TEST(JsonSchema, MutatedDocumentsAgreeWithTheValidator) {
  std::mt19937_64 rng(5);
  const std::string alphabet = "{}[],:\" 0123456789.-eabcdhiknrtuvwxyz";
  for (size_t k = 0; k < schemas().size(); ++k) {
    const json& schema = schemas()[k];
    SCOPED_TRACE(schema.dump());
    const testing::SchemaOracle oracle(schema);
    const JsonPrefix start = prefix_of(schema);
    int taken = 0, refused = 0;
    for (int n = 0; n < 300; ++n) {
      std::string doc;
      if (!random_walk(start, rng, 3000, doc) || doc.empty()) continue;
      const size_t at = rng() % doc.size();
      switch (rng() % 3) {
        case 0: doc.insert(doc.begin() + static_cast<std::ptrdiff_t>(at), alphabet[rng() % alphabet.size()]); break;
        case 1: doc.erase(at, 1); break;
        default: doc[at] = alphabet[rng() % alphabet.size()]; break;
      }
      JsonPrefix p = start;
      const bool whole = p.feed(std::string_view(doc)) && p.complete();
      bool overflow = false;
      const std::optional<json> parsed = parse(doc, &overflow);
      if (overflow) continue;
      const bool valid = parsed && oracle.valid(*parsed);
      SCOPED_TRACE(::testing::PrintToString(doc));
      if (whole) {
        ASSERT_TRUE(valid);
        ++taken;
      } else {
        ++refused;
      }
    }
    EXPECT_GT(refused, 0);
  }
}

// Feeds `ok`, then expects `bad` (its next byte) refused.
void refuses_after(const json& schema, const std::string& ok, char bad) {
  JsonPrefix p = prefix_of(schema);
  ASSERT_TRUE(p.feed(std::string_view(ok))) << ok;
  EXPECT_FALSE(p.feed(static_cast<unsigned char>(bad))) << ok << " + " << bad;
}

TEST(JsonSchema, RefusesAtTheFirstImpossibleByte) {
  const json& person = schemas()[0];
  refuses_after(person, "{\"age\": 1", '}');               // name is required
  refuses_after(person, "{\"name\": \"", '"');             // minLength 1
  refuses_after(person, "{\"name\": \"12345678", '9');     // maxLength 8
  refuses_after(person, "{\"age\": 1", '.');               // an integer
  refuses_after(person, "{\"n", 'i');                      // no such key
  refuses_after(person, "{\"name\": \"x\", \"", 'n');      // name again
  refuses_after(person, "{\"tags\": [", ']');              // minItems 1
  refuses_after(person, "{\"tags\": [\"a\", \"b\", \"cd\"", ',');  // maxItems 3
  refuses_after(person, "{\"tags\": [\"c", '"');           // enum
  refuses_after(person, "{\"score\": ", '"');              // number or null
  refuses_after(person, "", ' ');                          // nothing before the value
  const json& shape = schemas()[2];
  refuses_after(shape, "{\"kind\": \"circle\", \"", 'w');
  refuses_after(shape, "{\"kind\": \"rect\", \"", 'r');
  JsonPrefix either = prefix_of(shape);
  EXPECT_TRUE(either.feed(std::string_view("{\"w\": 1, \"kind\": \"rect\", \"h\": 2}")));  // any key order
  EXPECT_TRUE(either.closed());
  const json& pair = schemas()[3];
  refuses_after(pair, "[1, \"a\"", ',');
  refuses_after(pair, "[1", ']');
  const json& lits = schemas()[4];
  for (const char* whole : {"12", "1.5", "1", "null", "{\"a\":[1,2]}", "\"x\""}) {
    JsonPrefix p = prefix_of(lits);
    EXPECT_TRUE(p.feed(std::string_view(whole)) && p.complete()) << whole;
  }
  refuses_after(lits, "1", '3');
  refuses_after(lits, "{\"a\":", ' ');  // enum values are their compact texts
  const json extra = json::parse(R"({"type": "object", "properties": {"id": {"type": "integer"}},
      "additionalProperties": {"type": "string", "maxLength": 3}, "required": ["id"]})");
  refuses_after(extra, "{\"x\": \"ab\"", '}');  // id is required
  refuses_after(extra, "{\"x\": \"abc", 'd');
  refuses_after(extra, "{\"id\": 1, \"x\": ", '1');  // other keys hold strings
  refuses_after(extra, "{\"id\": 1, \"id", '"');  // "id" once
  JsonPrefix ex = prefix_of(extra);
  EXPECT_TRUE(ex.feed(std::string_view("{\"i\": \"\", \"idx\": \"abc\", \"id\": -0}")));
  EXPECT_TRUE(ex.closed());
  const json& three = schemas()[8];
  refuses_after(three, "\"ab", '"');
  refuses_after(three, "\"abc", 'd');
  refuses_after(three, "\"\\u00e9\\n", '"');  // escapes count as one character each
  const json& keys = schemas()[7];
  refuses_after(keys, "{\"a\": null", '}');  // "ab" is required
  JsonPrefix k = prefix_of(keys);
  EXPECT_TRUE(k.feed(std::string_view("{\"a b\": null, \"q\\\"\": null, \"\xC3\xA9\": null, \"ab\": null}")));
  EXPECT_TRUE(k.closed());
  // Without whitespace (vLLM's disable_any_whitespace): compact texts only.
  const auto compact = JsonSchema::compile(person, /*any_whitespace=*/false);
  JsonPrefix c(compact);
  EXPECT_FALSE(JsonPrefix(c).feed('\n'));
  EXPECT_TRUE(c.feed(std::string_view("{\"name\":\"x\",")));
  EXPECT_FALSE(JsonPrefix(c).feed(' '));
  EXPECT_TRUE(c.feed(std::string_view("\"age\":1}")) && c.closed());
  EXPECT_NE(compact->fingerprint(), JsonSchema::compile(person)->fingerprint());
  // Integer bounds: a digit is taken while some integer it begins lies inside them.
  const json small = json::parse(R"({"type": "integer", "minimum": 1, "maximum": 100})");
  for (const char* whole : {"1", "10", "100", "7", "99"}) {
    JsonPrefix p = prefix_of(small);
    EXPECT_TRUE(p.feed(std::string_view(whole)) && p.complete()) << whole;
  }
  refuses_after(small, "", '0');
  refuses_after(small, "", '-');
  refuses_after(small, "10", '1');   // 101
  refuses_after(small, "100", '0');  // 1000
  refuses_after(small, "20", '0');
  const json around = json::parse(R"({"type": "object", "properties": {"t": {"type": "integer", "minimum": -5,
      "exclusiveMaximum": 3}}, "required": ["t"]})");
  refuses_after(around, "{\"t\": -", '6');
  refuses_after(around, "{\"t\": -1", '0');  // -10
  refuses_after(around, "{\"t\": ", '3');
  refuses_after(around, "{\"t\": 2", '1');
  for (const char* whole : {"{\"t\": -5}", "{\"t\": -0}", "{\"t\": 0}", "{\"t\": 2}"}) {
    JsonPrefix p = prefix_of(around);
    EXPECT_TRUE(p.feed(std::string_view(whole)) && p.closed()) << whole;
  }
  JsonPrefix minus_one = prefix_of(around);
  ASSERT_TRUE(minus_one.feed(std::string_view("{\"t\": -1")));  // -1 may end here: '}' follows
  EXPECT_TRUE(minus_one.feed('}'));
  // Unions of unions that take the same bytes: the live alternatives stay bounded, and what is
  // taken still completes.
  const json twins = json::parse(R"({"anyOf": [{"type": "array", "items": {"$ref": "#"}}, {"type": "array", "items": {"$ref": "#"}}]})");
  JsonPrefix tw = prefix_of(twins);
  ASSERT_TRUE(tw.feed(std::string_view(std::string(30, '['))));
  ASSERT_TRUE(tw.feed(std::string_view(std::string(30, ']'))));
  EXPECT_TRUE(tw.closed());
  // Nesting: 32 containers, not 33.
  const json nest = json::parse(R"({"type": "array", "items": {"$ref": "#"}})");
  refuses_after(nest, std::string(32, '['), '[');
  // propertyOrdering: the declared order (here against the alphabetical one); an optional
  // property may be skipped, a required one not, and none comes back after a later one.
  const json ordered = json::parse(R"({"type": "object", "properties": {"name": {"type": "string"},
      "arguments": {"type": "object"}, "id": {"type": "integer"}}, "required": ["name", "arguments"],
      "propertyOrdering": ["name", "id", "arguments"]})");
  refuses_after(ordered, "{\"", 'a');                                  // name first
  refuses_after(ordered, "{\"", 'i');
  refuses_after(ordered, "{\"name\": \"f\", \"arguments\": {}", ',');  // id cannot come after arguments
  refuses_after(ordered, "{\"name\": \"f\", \"", 'n');
  for (const char* whole : {"{\"name\": \"f\", \"arguments\": {}}", "{\"name\": \"f\", \"id\": 3, \"arguments\": {}}"}) {
    JsonPrefix p = prefix_of(ordered);
    EXPECT_TRUE(p.feed(std::string_view(whole)) && p.closed()) << whole;
  }
}

// String patterns (searched, as JSON Schema does, unless anchored) against the oracle's
// std::regex_search: every string up to 4 characters over a small alphabet, written as JSON
// (short escapes, and \u escapes for control characters), is accepted whole iff it matches; for
// an anchored pattern every prefix of such a text is taken iff a match extends it. \u escapes of
// other characters are refused under a pattern (they come raw).
TEST(JsonSchema, PatternStringsAgreeWithStdRegex) {
  std::vector<std::string> strings = {""};
  for (size_t begin = 0, len = 0; len < 4; ++len) {
    const size_t end = strings.size();
    for (size_t i = begin; i < end; ++i)
      for (const char* c : {"a", "b", "1", "\n", "\""}) strings.push_back(strings[i] + c);
    begin = end;
  }
  const auto encodings = [](const std::string& v) {  // the dump, and control characters as \u
    std::vector<std::string> out = {json(v).dump()};
    std::string u = "\"";
    for (char c : v) u += c == '\n' ? std::string("\\u000a") : json(std::string(1, c)).dump().substr(1, json(std::string(1, c)).dump().size() - 2);
    out.push_back(u + "\"");
    return out;
  };
  for (const char* pattern : {"b1", "^a", "1$", "^(ab|1)\\n?b$", "a\\nb|\"", "^[^a]*$"}) {
    SCOPED_TRACE(pattern);
    const json schema = {{"type", "string"}, {"pattern", pattern}};
    const auto compiled = JsonSchema::compile(schema);
    const testing::SchemaOracle oracle(schema);
    int matched = 0;
    for (const std::string& v : strings) {
      const bool want = oracle.valid(json(v));
      matched += want;
      for (const std::string& text : encodings(v)) {
        JsonPrefix p(compiled);
        const bool whole = p.feed(std::string_view(text)) && p.closed();
        ASSERT_EQ(whole, want) << text;
      }
    }
    EXPECT_GT(matched, 0);
    if (pattern[0] != '^' || pattern[std::strlen(pattern) - 1] != '$') continue;
    for (const std::string& v : strings) {  // liveness: the open string's prefix
      bool extendable = false;
      for (const std::string& m : strings)
        if (m.compare(0, v.size(), v) == 0 && oracle.valid(json(m))) extendable = true;
      const std::string text = json(v).dump();
      JsonPrefix p(compiled);
      EXPECT_EQ(p.feed(std::string_view(text.data(), text.size() - 1)), extendable) << text;
    }
  }
  JsonPrefix p(JsonSchema::compile(json{{"type", "string"}, {"pattern", "^a"}}));
  EXPECT_FALSE(p.feed(std::string_view("\"\\u0061")));  // 'a' as an escape: refused under a pattern
  const auto newline = JsonSchema::compile(json{{"type", "string"}, {"pattern", "^\\n$"}});
  for (const char* refused : {"\"\\u1", "\"\\u01", "\"\\u0009", "\"\\u00", "\"\\t"}) {
    JsonPrefix q(newline);
    EXPECT_EQ(q.feed(std::string_view(refused)), std::string(refused) == "\"\\u00") << refused;
  }
  JsonPrefix q(newline);
  EXPECT_TRUE(q.feed(std::string_view("\"\\u000a\"")) && q.closed());
}

TEST(JsonSchema, CompileErrorsNameTheKeyword) {
  const auto error = [](const char* text) {
    try {
      JsonSchema::compile(json::parse(text));
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("compiled");
  };
  EXPECT_NE(error(R"({"type": "string", "pattern": "a+", "maxLength": 3})").find("'pattern' together with"),
            std::string::npos);
  EXPECT_NE(error(R"({"properties": {"z": {"pattern": "(a"}}})").find("schema.properties.z: 'pattern': regex: missing ')' at offset 2"),
            std::string::npos);
  EXPECT_NE(error(R"({"type": "string", "pattern": 5})").find("'pattern' must be a string"), std::string::npos);
  EXPECT_NE(error(R"({"type": "string", "pattern": "^a|b$"})").find("group it"), std::string::npos);
  EXPECT_EQ(error(R"({"type": "string", "pattern": "^(a|b)$"})"), "compiled");
  EXPECT_EQ(error(R"({"type": "string", "pattern": "^[|]x(y|z)\\|$"})"), "compiled");
  EXPECT_EQ(error(R"({"type": "string", "pattern": "a|b"})"), "compiled");  // unanchored: a search for either
  EXPECT_NE(error(R"({"type": "number", "multipleOf": 2})").find("'multipleOf' is not supported"), std::string::npos);
  EXPECT_NE(error(R"({"properties": {"n": {"type": "number", "minimum": 0}}})").find("schema.properties.n: 'minimum'"),
            std::string::npos);
  EXPECT_NE(error(R"({"maximum": 3})").find("needs \"type\": \"integer\""), std::string::npos);
  EXPECT_NE(error(R"({"type": "integer", "minimum": 5, "maximum": 4})").find("no JSON value"), std::string::npos);
  EXPECT_EQ(error(R"({"type": "integer", "minimum": 0, "maximum": 10, "enum": [0, 5, 11]})"), "compiled");
  EXPECT_NE(error(R"({"type": "integer", "minimum": 0, "enum": [-1, -2]})").find("no value of 'enum'"), std::string::npos);
  EXPECT_NE(error(R"({"$ref": "#/$defs/missing"})").find("names no schema"), std::string::npos);
  EXPECT_NE(error(R"({"$ref": "https://example.com/s.json"})").find("is not supported"), std::string::npos);
  EXPECT_NE(error(R"({"type": "object", "required": ["x"], "additionalProperties": false})").find("\"x\""),
            std::string::npos);
  EXPECT_NE(error(R"({"enum": []})").find("non-empty"), std::string::npos);
  EXPECT_NE(error(R"({"type": "foo"})").find("not a JSON Schema type"), std::string::npos);
  EXPECT_NE(error(R"({"allOf": [{}, {}]})").find("one schema only"), std::string::npos);
  EXPECT_NE(error(R"({"type": "string", "minLength": 5, "maxLength": 2})").find("no JSON value"), std::string::npos);
  EXPECT_NE(error(R"({"type": "array", "items": {"$ref": "#"}, "minItems": 1})").find("no JSON value"), std::string::npos);
  EXPECT_NE(error(R"({"type": "string", "enum": [1, 2]})").find("type"), std::string::npos);
  EXPECT_NE(error(R"({"anyOf": [{"type": "string"}], "type": "string"})").find("beside 'anyOf'"), std::string::npos);
  EXPECT_EQ(error(R"({"type": "object", "title": "t", "description": "d", "format": "x", "default": {}})"), "compiled");
  EXPECT_NE(error(R"({"properties": {"a": {}, "b": {}}, "propertyOrdering": ["a"]})").find("each of the 2"),
            std::string::npos);
  EXPECT_NE(error(R"({"properties": {"a": {}}, "propertyOrdering": ["b"]})").find("\"b\" is not a declared"),
            std::string::npos);
  EXPECT_NE(error(R"({"properties": {"a": {}, "b": {}}, "propertyOrdering": ["a", "a"]})").find("twice"),
            std::string::npos);
  std::string deep = "true";
  for (int i = 0; i < 200; ++i) deep = "{\"items\": " + deep + "}";
  EXPECT_NE(error(deep.c_str()).find("nests more than"), std::string::npos);
}

// Whether the schema takes all of doc as a whole value.
bool whole(const json& schema, const std::string& doc) {
  JsonPrefix p = prefix_of(schema);
  return p.feed(doc) && p.complete();
}

std::string compile_error(const json& schema) {
  try {
    JsonSchema::compile(schema);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "compiled";
}

// Integer bounds are taken exactly or refused: read through a double and clamped to int64,
// minimum 1e300 gave 9223372036854775807, maximum -1e300 gave -9223372036854775808, and
// minimum = maximum = 9007199254740993 gave ...992, each outside its bounds.
TEST(JsonSchema, IntegerBoundsAreExactOrRefused) {
  for (const char* s : {R"({"type": "integer", "minimum": 1e300})", R"({"type": "integer", "minimum": 9.3e18})",
                        R"({"type": "integer", "maximum": -1e300})",
                        R"({"type": "integer", "exclusiveMaximum": -1e19})",
                        R"({"type": "integer", "minimum": 10000000000000000000})",
                        R"({"type": "integer", "exclusiveMinimum": 9223372036854775807})",
                        R"({"type": "integer", "minimum": 9007199254740994.0})"}) {
    const std::string e = compile_error(json::parse(s));
    EXPECT_NE(e.find("is outside the integers this engine can bound"), std::string::npos) << s << ": " << e;
  }
  EXPECT_NE(compile_error(json::parse(R"({"type": "integer", "minimum": 1e300})"))
                .find("schema: 'minimum' 1e+300 is outside"),
            std::string::npos);
  const json exact = json::parse(R"({"type": "integer", "minimum": 9007199254740993, "maximum": 9007199254740993})");
  EXPECT_TRUE(whole(exact, "9007199254740993"));
  EXPECT_FALSE(whole(exact, "9007199254740992"));
  EXPECT_FALSE(whole(exact, "9007199254740994"));
  const json top = json::parse(R"({"type": "integer", "exclusiveMinimum": 9223372036854775806})");
  EXPECT_TRUE(whole(top, "9223372036854775807"));
  EXPECT_FALSE(whole(top, "9223372036854775806"));
  // Beyond int64 on the outer side is no bound at all here; decimals up to 2^53 round inward.
  EXPECT_TRUE(whole(json::parse(R"({"type": "integer", "maximum": 10000000000000000000})"), "9223372036854775807"));
  EXPECT_TRUE(whole(json::parse(R"({"type": "integer", "minimum": -1e15, "exclusiveMaximum": 2.0})"), "1"));
  EXPECT_FALSE(whole(json::parse(R"({"type": "integer", "minimum": -1e15, "exclusiveMaximum": 2.0})"), "2"));
  EXPECT_TRUE(whole(json::parse(R"({"type": "integer", "minimum": 2.5, "maximum": 3.5})"), "3"));
  EXPECT_FALSE(whole(json::parse(R"({"type": "integer", "minimum": 2.5, "maximum": 3.5})"), "2"));
}

// enum / const beside other keywords: the values that break those are dropped (they were
// produced: "bbbb" under maxLength 2, "xyz" under pattern ^a), none left is refused, and the
// keywords about what is inside an array or object, which the values are not checked against,
// are refused.
TEST(JsonSchema, EnumValuesMeetTheOtherKeywords) {
  const json len = json::parse(R"({"type": "string", "enum": ["bbbb", "b", "\u00e9\u00e9"], "maxLength": 2})");
  EXPECT_FALSE(whole(len, "\"bbbb\""));
  EXPECT_TRUE(whole(len, "\"b\""));
  EXPECT_TRUE(whole(len, "\"\u00e9\u00e9\""));  // two characters, four bytes
  EXPECT_FALSE(whole(json::parse(R"({"enum": ["a", "abc"], "minLength": 2})"), "\"a\""));
  EXPECT_TRUE(whole(json::parse(R"({"enum": ["a", "abc", 1], "minLength": 2})"), "1"));  // lengths are of strings
  const json pat = json::parse(R"({"type": "string", "enum": ["xyz", "abc"], "pattern": "^a"})");
  EXPECT_FALSE(whole(pat, "\"xyz\""));
  EXPECT_TRUE(whole(pat, "\"abc\""));
  const json arr = json::parse(R"({"enum": [[1], [1, 2, 3], "x"], "minItems": 2})");
  EXPECT_FALSE(whole(arr, "[1]"));
  EXPECT_TRUE(whole(arr, "[1,2,3]"));
  const json obj = json::parse(R"({"enum": [{"a": 1}, {"b": 2}], "required": ["b"]})");
  EXPECT_FALSE(whole(obj, "{\"a\":1}"));
  EXPECT_TRUE(whole(obj, "{\"b\":2}"));
  for (const char* none : {R"({"type": "string", "enum": ["bbbb"], "maxLength": 2})",
                           R"({"const": "xyz", "pattern": "^a"})"})
    EXPECT_NE(compile_error(json::parse(none)).find("no value of 'enum' / 'const' satisfies"), std::string::npos)
        << none;
  EXPECT_NE(compile_error(json::parse(R"({"enum": [{"a": 1}], "properties": {"a": {"type": "string"}}})"))
                .find("'properties' beside 'enum' / 'const' is not supported"),
            std::string::npos);
  EXPECT_NE(compile_error(json::parse(R"({"enum": [[1]], "items": {"type": "string"}})")).find("'items' beside"),
            std::string::npos);
}

// The filter's plain-string shortcut respects maxLength; a choice that a longer one extends may
// end or go on.
TEST(FormatPrefix, ChoicesThatExtendEachOther) {
  const std::vector<OutputPiece> fmt = {OutputPiece::any_of({"yes", "yes please", "no"})};
  FormatPrefix p(&fmt);
  ASSERT_TRUE(p.feed("yes"));
  EXPECT_TRUE(p.complete());
  FormatPrefix q = p;
  EXPECT_TRUE(q.feed(" please"));
  EXPECT_TRUE(q.complete());
  EXPECT_FALSE(FormatPrefix(q).feed("!"));
  EXPECT_FALSE(FormatPrefix(p).feed("!"));
  const std::vector<OutputPiece> then = {OutputPiece::any_of({"a", "ab"}), OutputPiece::text("!")};
  for (const char* ok : {"a!", "ab!"}) {
    FormatPrefix r(&then);
    EXPECT_TRUE(r.feed(ok) && r.complete()) << ok;
  }
  FormatPrefix r(&then);
  EXPECT_FALSE(r.feed("ac"));
}

// Free text up to a trigger, then the pieces after it, then free text again (strict tool calls
// under tool_choice "auto"): any text is taken until the trigger is whole; the end may come in
// free text only.
TEST(FormatPrefix, FreeTextUntilATrigger) {
  const std::vector<OutputPiece> fmt = {OutputPiece::text_until("<c>"), OutputPiece::text("{"),
                                        OutputPiece::any_of({"a", "b"}), OutputPiece::text("}")};
  for (const char* ok : {"", "hello <x> world", "hi <c>{a}", "<<c>{b}more<c>{a} end", "x <c", "<c<c>{a}"}) {
    FormatPrefix p(&fmt);
    EXPECT_TRUE(p.feed(ok)) << ok;
    EXPECT_TRUE(p.complete()) << ok;  // in free text (a part of the trigger is still text)
  }
  for (const char* open : {"hi <c>", "hi <c>{", "hi <c>{a"}) {
    FormatPrefix p(&fmt);
    EXPECT_TRUE(p.feed(open)) << open;
    EXPECT_FALSE(p.complete()) << open;
  }
  for (const char* bad : {"hi <c>{c", "<c>x", "<c>{a}<c>{ab"}) {
    FormatPrefix p(&fmt);
    EXPECT_FALSE(p.feed(bad)) << bad;
  }
  FormatPrefix a(&fmt), b(&fmt), c(&fmt);
  ASSERT_TRUE(a.feed("some text"));
  ASSERT_TRUE(b.feed("<c>{a} and more"));
  ASSERT_TRUE(c.feed("text <"));
  EXPECT_EQ(a.key(), b.key());  // free text, nothing of the trigger: the same state
  EXPECT_NE(a.key(), c.key());
  unsigned char first = 0;
  EXPECT_TRUE(a.in_free_text(&first));
  EXPECT_EQ(first, '<');
  EXPECT_FALSE(c.in_free_text(&first));
}

}  // namespace
}  // namespace tllm
