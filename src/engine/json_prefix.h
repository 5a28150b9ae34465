// Structured output's JSON recognizer: follows an output byte by byte against a compiled JSON
// Schema (engine/json_schema.h; by default any JSON object, OpenAI's JSON mode). feed() refuses
// (returning false, state unchanged) a byte after which no completion to a JSON text (RFC 8259)
// valid under the schema exists, so a sampler that only draws tokens it takes never reaches a
// dead end. Strings are checked as JSON and as UTF-8 (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF; \u escapes pair their surrogates), numbers as JSON's grammar.
//
// The state is a set of threads, each a stack of frames (one per open container, plus the
// value being read); a union (anyOf, a list of types) splits a thread only when more than one
// alternative can start with the byte read, so most schemas keep one thread. Object keys are
// matched against the declared names (sorted: the candidates left form a range) beside a
// generic string when other keys are allowed; properties may come in any order, each once,
// and '}' only once the required ones are there.
//
// Limits keep generation from wandering, all stricter than JSON itself (a small model otherwise
// fills its tokens with whitespace): whitespace only where compact or pretty-printed JSON has
// it, i.e. after '{', '[' and ',' one space or a newline and up to kMaxWhitespace spaces / tabs
// of indentation, after ':' one space, after a value a newline and indentation before its
// container's closer; none before ':' or ',', none around the top-level value (the output can
// only end there), none at all when the schema was compiled without whitespace. At most
// kMaxDepth nested containers. enum / const values are matched as their compact JSON texts.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include "core/small_vector.h"

namespace tllm {

class JsonSchema;

class JsonPrefix {
 public:
  static constexpr int kMaxDepth = 32;
  static constexpr int kMaxWhitespace = 20;
  // Live alternatives (threads) kept: a union of unions that all take the same bytes would
  // otherwise double them at every level.
  static constexpr size_t kMaxThreads = 32;

  // Any JSON object (JSON mode).
  JsonPrefix();
  explicit JsonPrefix(std::shared_ptr<const JsonSchema> schema);
  // Without ownership: the schema outlives the prefix (FormatPrefix's pieces hold it), and
  // copies cost no reference count.
  explicit JsonPrefix(const JsonSchema* schema);

  // False, leaving the state as it was, when c cannot come next.
  bool feed(unsigned char c);
  // Feeds s; false (state unspecified) at the first byte refused.
  bool feed(std::string_view s);
  // What was read is a whole value the schema allows (the output may end here).
  bool complete() const;
  // Complete, and no byte may follow (a closed container or string; not a number).
  bool closed() const;
  // Equal keys: equal states (every later byte is taken or refused alike), for one schema.
  // With a horizon: equal keys take or refuse every text of up to `horizon` bytes alike (a
  // string's or array's count is kept only where such a text can reach one of its limits).
  std::string key(uint32_t horizon = kExactKey) const;
  static constexpr uint32_t kExactKey = 0xffffffffu;
  // Inside a string, between characters, with `room` more characters allowed: any run of at
  // most `room` whole UTF-8 characters without '"', '\\' or control bytes is taken (a value,
  // or a key where keys other than the declared ones are allowed).
  bool in_plain_string(uint32_t* room) const;

  struct Frame {
    int32_t node = 0;
    uint8_t st = 0;         // what comes next (json_prefix.cpp: St)
    uint8_t str = 0;        // string scanner: between characters, escape, \u digits, UTF-8 ...
    uint8_t hex = 0;        // \u digits read
    uint8_t hex_first = 0;  // the first one's value
    uint8_t cont = 0;       // UTF-8 continuation bytes to come, the next in [lo, hi]
    uint8_t lo = 0x80, hi = 0xBF;
    uint8_t flags = 0;      // string scanner: low / high surrogate; key: other keys allowed
    uint32_t pos = 0;       // bytes of a literal or key matched
    uint32_t first = 0, last = 0;  // candidate literals or keys [first, last)
    uint32_t count = 0;     // array items begun or string characters (capped where it no longer matters)
    int32_t prop = -1;      // object: the property whose value is read (-1: another key)
    uint64_t seen = 0;      // object: properties given
    uint64_t num = 0;       // a bounded integer: the magnitude of its digits so far; a patterned string: a \u digit
    int32_t re = 0;         // a string under a pattern: its automaton's state
  };
  struct Thread {
    SmallVector<Frame, 6> stack;  // empty: the top-level value was closed
    int ws = 0;                // the whitespace since the last token (json_prefix.cpp: take_whitespace)
  };

 private:
  using Threads = SmallVector<Thread, 2>;
  void advance(Thread t, unsigned char c, Threads& out) const;
  bool fits(const Thread& t, int node) const;
  void end_value(Thread& t) const;
  void push_value(Thread& t, int node) const;
  bool key_open(const Thread& t, const Frame& f) const;  // another member may follow
  bool value_accepting(const Thread& t) const;

  std::shared_ptr<const JsonSchema> owned_;  // null when the caller keeps the schema
  const JsonSchema* schema_;
  Threads threads_;
};

}  // namespace tllm
