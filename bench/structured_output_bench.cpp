// Host cost of structured output: the token filter (engine/output_format.h) that runs before
// every draw of a structured request. Feeds a JSON document token by token (as a model would
// write it) through a fresh OutputFilter and times next() per token, for JSON mode, a JSON
// schema, a forced tool call's format, a string of at least 4000 characters, a regular
// expression (guided_regex), a schema with string patterns, and grammars (guided_grammar):
// the regular expression's language, and JSON; a chat reply's choices (reasoning, then the
// schema's answer or tool calls; the answer or calls alone). states: the
// distinct recognizer states met; computed: the answers the filter computed (states whose
// answers must differ; the rest came from its cache).
//
// usage: structured_output_bench --model DIR [--iters K]   (DIR: a tokenizer, e.g. Qwen3's)
//   TLLM_BENCH_VERBOSE=1 also lists the tokens whose filter took over 0.5 ms.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/grammar.h"
#include "engine/json_schema.h"
#include "engine/output_format.h"
#include "engine/regex.h"
#include "server/chat_output.h"
#include "server/tool_calls.h"
#include "tokenizer/token_bytes.h"
#include "tokenizer/tokenizer.h"

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

const char* kDoc = R"({
  "name": "Ada Lovelace",
  "born": 1815,
  "fields": ["mathematics", "computing"],
  "notes": "Wrote the first published program, for Babbage's Analytical Engine.",
  "alive": false,
  "address": {"city": "London", "street": "St James's Square", "number": 12}
})";

const char* kSchema = R"({"type": "object", "properties": {
  "name": {"type": "string", "maxLength": 40}, "born": {"type": "integer"},
  "fields": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
  "notes": {"type": "string"}, "alive": {"type": "boolean"},
  "address": {"type": "object", "properties": {"city": {"type": "string"}, "street": {"type": "string"},
              "number": {"type": "integer"}}, "required": ["city"]}},
  "required": ["name", "born", "alive"]})";

struct Result {
  double ms_per_token = 0, ms_first = 0;
  size_t tokens = 0, states = 0, computed = 0;
};

Result run(const tllm::Tokenizer& tok, const std::vector<tllm::OutputPiece>& pieces, const std::string& text) {
  tllm::OutputFilter filter(tok, static_cast<int>(tok.vocab_size()));
  tllm::FormatPrefix state(&pieces);
  const std::vector<int32_t> ids = tok.encode(text, false);
  Result r;
  double total = 0;
  std::vector<std::string> seen;
  for (size_t i = 0; i < ids.size(); ++i) {
    const double t0 = now_s();
    const tllm::TokenSet& next = filter.next(state);
    const double dt = now_s() - t0;
    total += dt;
    if (i == 0) r.ms_first = dt * 1e3;
    if (std::getenv("TLLM_BENCH_VERBOSE") && dt > 0.5e-3)
      std::fprintf(stderr, "  %.2f ms before token %zu (%s)\n", dt * 1e3, i, tllm::token_bytes(tok, ids[i]).c_str());
    if (!next.contains(ids[i])) {
      std::fprintf(stderr, "structured_output_bench: token %zu (%d) of the document is banned\n", i, ids[i]);
      std::exit(1);
    }
    const std::string key = state.key();
    if (std::find(seen.begin(), seen.end(), key) == seen.end()) seen.push_back(key);
    if (!state.feed(filter.bytes(ids[i]))) {
      std::fprintf(stderr, "structured_output_bench: the document is refused at token %zu\n", i);
      std::exit(1);
    }
  }
  r.tokens = ids.size();
  r.states = seen.size();
  r.computed = filter.states_computed();
  r.ms_per_token = total * 1e3 / static_cast<double>(ids.size());
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model;
  int iters = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--model") model = argv[i + 1];
    else if (a == "--iters") iters = std::atoi(argv[i + 1]);
  }
  if (model.empty()) {
    std::fprintf(stderr, "usage: structured_output_bench --model DIR [--iters K]\n");
    return 2;
  }
  const auto tok = tllm::Tokenizer::load(model);
  const std::string doc = kDoc;
  const nlohmann::json parsed = nlohmann::json::parse(doc);
  const std::string call = "<tool_call>\n{\"name\": \"record\", \"arguments\": " + parsed.dump() + "}\n</tool_call>";
  std::string long_text = "\"";
  while (long_text.size() < 4500) long_text += "The quick brown fox jumps over the lazy dog, then rests. ";
  long_text += "\"";
  // A contact line under a regular expression, and the same fields as JSON under patterns.
  const std::string contact = "Contact: alice.smith@example.com, +1 (555) 123-4567, Paris office since 2019.";
  const std::string contact_re =
      "Contact: [a-z.]+@[a-z]+\\.[a-z]{2,4}, \\+\\d{1,3} \\(\\d{3}\\) \\d{3}-\\d{4}, [A-Z][a-z]+ (office|branch) "
      "since (19|20)\\d{2}\\.";
  const std::string contact_json =
      R"({"email": "alice.smith@example.com", "phone": "+1 (555) 123-4567", "city": "Paris", "since": 2019})";
  const nlohmann::json contact_schema = nlohmann::json::parse(R"({"type": "object", "properties": {
      "email": {"type": "string", "pattern": "^[a-z.]+@[a-z]+\\.[a-z]{2,4}$"},
      "phone": {"type": "string", "pattern": "^\\+\\d{1,3} \\(\\d{3}\\) \\d{3}-\\d{4}$"},
      "city": {"type": "string", "pattern": "^[A-Z][a-z]+$"},
      "since": {"type": "integer", "minimum": 1900, "maximum": 2100}},
      "required": ["email", "phone", "city", "since"], "propertyOrdering": ["email", "phone", "city", "since"]})");
  // The contact line's regular expression as a grammar, and JSON as a grammar (kJsonGbnf).
  const std::string contact_gbnf = R"g(
      root  ::= "Contact: " [a-z.]+ "@" [a-z]+ "." [a-z]{2,4} ", +" [0-9]{1,3} " (" [0-9]{3} ") " [0-9]{3} "-"
                [0-9]{4} ", " [A-Z] [a-z]+ " " ("office" | "branch") " since " ("19" | "20") [0-9]{2} "."
  )g";
  const std::string json_gbnf = tllm::kJsonGbnf;
  // A chat reply under --reasoning-parser qwen3 with a tool and a response_format, as the
  // server builds its format: reasoning, then the schema's answer or tool calls.
  const auto tools = nlohmann::ordered_json::parse(
      R"([{"type": "function", "function": {"name": "record", "parameters": {"type": "object"}}}])");
  const std::vector<tllm::OutputPiece> reply = tllm::format_or_tool_calls(
      {tllm::OutputPiece::value(tllm::JsonSchema::compile(nlohmann::json::parse(kSchema)))}, tools,
      tllm::ToolCallParser::Hermes);
  const std::vector<tllm::OutputPiece> reasoned = tllm::format_after_reasoning(reply, tllm::ReasoningParser::Qwen3);
  const std::string thought =
      "<think>\nThe user asks for a record of Ada Lovelace; I know her dates and her work, so no tool is needed.\n"
      "</think>\n\n" + doc;
  struct Case {
    std::string name;
    std::vector<tllm::OutputPiece> pieces;
    const std::string* text;
  };
  const std::vector<Case> cases = {
      {"json_object", {tllm::OutputPiece::object()}, &doc},
      {"json_schema", {tllm::OutputPiece::value(tllm::JsonSchema::compile(nlohmann::json::parse(kSchema)))}, &doc},
      {"tool call (schema)",
       {tllm::OutputPiece::text("<tool_call>\n"),
        tllm::OutputPiece::value(tllm::JsonSchema::compile(nlohmann::json{
            {"type", "object"},
            {"properties", {{"name", {{"const", "record"}}}, {"arguments", nlohmann::json::parse(kSchema)}}},
            {"required", {"name", "arguments"}}})),
        tllm::OutputPiece::text("\n</tool_call>")},
       &call},
      // A string of at least 4000 characters: its count is part of every state.
      {"long string",
       {tllm::OutputPiece::value(tllm::JsonSchema::compile(nlohmann::json::parse(R"({"type": "string", "minLength": 4000})")))},
       &long_text},
      {"regex", {tllm::OutputPiece::matching(tllm::Regex::compile(contact_re))}, &contact},
      {"schema + patterns", {tllm::OutputPiece::value(tllm::JsonSchema::compile(contact_schema))}, &contact_json},
      {"grammar (regex's)", {tllm::OutputPiece::sentence(tllm::Grammar::compile(contact_gbnf))}, &contact},
      {"grammar (JSON)", {tllm::OutputPiece::sentence(tllm::Grammar::compile(json_gbnf))}, &doc},
      {"think, schema|calls", reasoned, &thought},
      {"schema|calls", reply, &doc},
  };
  std::printf("vocabulary %d tokens\n", static_cast<int>(tok->vocab_size()));
  std::printf("%-20s %8s %8s %9s %14s %14s\n", "format", "tokens", "states", "computed", "first ms", "ms / token");
  for (const auto& [name, pieces, text] : cases) {
    Result best;
    for (int k = 0; k < iters; ++k) {
      const Result r = run(*tok, pieces, *text);
      if (k == 0 || r.ms_per_token < best.ms_per_token) best = r;
    }
    std::printf("%-20s %8zu %8zu %9zu %14.3f %14.3f\n", name.c_str(), best.tokens, best.states, best.computed,
                best.ms_first, best.ms_per_token);
  }
  return 0;
}
