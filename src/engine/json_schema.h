// JSON Schema for structured output (response_format json_schema, vLLM's guided_json, a forced
// tool call's arguments): a schema compiled into the nodes JsonPrefix (engine/json_prefix.h)
// walks while it reads the output byte by byte.
//
// What is enforced: type (one or a list), properties / required / additionalProperties (absent:
// no other keys when "properties" is given, any keys otherwise, as xgrammar's strict mode and
// OpenAI's structured outputs), items / prefixItems / minItems / maxItems, minLength /
// maxLength (characters), pattern (ECMAScript as engine/regex.h takes it; not with min/maxLength),
// minimum / maximum / exclusiveMinimum / exclusiveMaximum on integers (exactly: a bound that
// int64 or a double's whole numbers cannot hold is refused), enum and const (their values
// filtered by the type, bounds, lengths, pattern, item counts and required beside them;
// properties / items beside them refused), anyOf, oneOf (taken as anyOf), allOf of one schema, nullable, $ref to "#",
// "#/$defs/..." and "#/definitions/..." (recursion included), and Gemini's propertyOrdering
// (the declared properties in the order they must come; without it any order).
// Annotations are ignored (title, description, default, examples, format, ...); keywords that
// constrain in ways this does not enforce (bounds on non-integer numbers, multipleOf,
// uniqueItems, not, if, ...) are refused by name rather than ignored. A schema no value can satisfy, or none within
// JsonPrefix::kMaxDepth nested containers, is refused too: the recognizer never takes a byte
// after which no valid completion exists.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace tllm {

class Regex;

class JsonSchema {
 public:
  enum class Kind : uint8_t { Object, Array, String, Number, Integer, Literals, AnyOf };
  static constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();
  static constexpr int kMaxProperties = 64;
  static constexpr int kNoFit = 1 << 20;  // min_depth of a node no value satisfies

  struct Node {
    Kind kind = Kind::AnyOf;
    // Object: properties sorted by key, each key as its JSON string with quotes; a bit per
    // property in `required`; extra keys' schema (-1: none allowed).
    std::vector<std::string> keys;
    std::vector<int> values;
    uint64_t required = 0;
    int additional = -1;
    // propertyOrdering: before[i], the properties that must precede property i (empty: any order).
    std::vector<uint64_t> before;
    // Whether property i may come next after the properties `seen` (bits as `required`).
    bool in_order(size_t i, uint64_t seen) const {
      return before.empty() || ((seen & ~before[i]) == 0 && (required & before[i] & ~seen) == 0);
    }
    // Array: the schema of item i (prefix[i], then items; -1: no more items), counts.
    std::vector<int> prefix;
    int items = -1;
    // Array items or string characters.
    uint32_t min_count = 0, max_count = kUnbounded;
    // String: what its characters must match (the schema's pattern, searched as JSON Schema
    // does: unanchored ends match any text); null: any.
    std::shared_ptr<const Regex> pattern;
    // Integer: bounds (minimum / maximum, exclusive ones folded in) when `bounded`.
    bool bounded = false;
    int64_t min_value = std::numeric_limits<int64_t>::min(), max_value = std::numeric_limits<int64_t>::max();
    // Literals: the allowed values as compact JSON texts, sorted and unique.
    std::vector<std::string> texts;
    // AnyOf: the alternatives (never AnyOf themselves).
    std::vector<int> alts;
    // Containers a value of this node must open at least (0 for scalars; kNoFit: none exists).
    int min_depth = kNoFit;
    // Bytes that can start a value (before whitespace).
    uint64_t first[4] = {0, 0, 0, 0};

    bool can_start(unsigned char c) const { return (first[c >> 6] >> (c & 63)) & 1; }
    int item(uint32_t i) const { return i < prefix.size() ? prefix[i] : items; }
  };

  // Throws InvalidArgument naming the keyword and where it is ("schema.properties.a.minimum").
  // any_whitespace false: no whitespace between tokens (vLLM's disable_any_whitespace).
  static std::shared_ptr<const JsonSchema> compile(const nlohmann::json& schema, bool any_whitespace = true);
  // Any JSON object (JSON mode).
  static std::shared_ptr<const JsonSchema> any_object(bool any_whitespace = true);

  const Node& node(int i) const { return nodes_[static_cast<size_t>(i)]; }
  int root() const { return root_; }
  bool any_whitespace() const { return any_whitespace_; }
  // The schema as compiled, one text per distinct schema (for cache keys).
  const std::string& fingerprint() const { return fingerprint_; }

 private:
  friend class SchemaCompiler;
  std::vector<Node> nodes_;
  int root_ = -1;
  bool any_whitespace_ = true;
  std::string fingerprint_;
};

}  // namespace tllm
