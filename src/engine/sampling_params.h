// Per-request generation settings, as the OpenAI / vLLM APIs name them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tllm {

class Grammar;
class JsonSchema;
class Regex;

// One piece of a structured output (engine/output_format.h): a JSON value under a schema
// (engine/json_schema.h), a literal text, one of several texts, free text up to a trigger, text
// a regular expression matches (engine/regex.h) or a sentence of a grammar (engine/grammar.h).
struct OutputPiece {
  std::shared_ptr<const JsonSchema> json;  // set: a JSON value this schema allows
  std::string literal;
  std::vector<std::string> one_of;  // when not empty: one of these instead of `literal`
  // When not empty: any text, until it writes this trigger (which ends the piece). A format
  // that starts with such a piece repeats: after its last piece the free text goes on.
  std::string until;
  std::shared_ptr<const Regex> regex;  // set: text this regular expression matches whole
  std::shared_ptr<const Grammar> grammar;  // set: a sentence of this grammar
  // Set: the text of one of these formats (each a sequence of pieces); with `repeat`, one or
  // more of them in a row. (A reply that is a JSON value or tool calls; reasoning, then a format.)
  std::shared_ptr<const std::vector<std::vector<OutputPiece>>> either;
  bool repeat = false;
  // With `until`: the trigger must come (the piece cannot end before it) and the format does
  // not go back to this piece after its last.
  bool once = false;

  static OutputPiece object();  // any JSON object (JSON mode)
  static OutputPiece value(std::shared_ptr<const JsonSchema> schema) { OutputPiece p; p.json = std::move(schema); return p; }
  static OutputPiece text(std::string s) { OutputPiece p; p.literal = std::move(s); return p; }
  static OutputPiece any_of(std::vector<std::string> texts) { OutputPiece p; p.one_of = std::move(texts); return p; }
  static OutputPiece text_until(std::string trigger) { OutputPiece p; p.until = std::move(trigger); return p; }
  static OutputPiece matching(std::shared_ptr<const Regex> re) { OutputPiece p; p.regex = std::move(re); return p; }
  static OutputPiece sentence(std::shared_ptr<const Grammar> g) { OutputPiece p; p.grammar = std::move(g); return p; }
  // Any text, then `trigger`, once (reasoning up to "</think>").
  static OutputPiece text_through(std::string trigger) {
    OutputPiece p = text_until(std::move(trigger));
    p.once = true;
    return p;
  }
  static OutputPiece one_of_formats(std::vector<std::vector<OutputPiece>> formats, bool repeat = false) {
    OutputPiece p;
    p.either = std::make_shared<const std::vector<std::vector<OutputPiece>>>(std::move(formats));
    p.repeat = repeat;
    return p;
  }
};

struct SamplingParams {
  float temperature = 1.0f;  // 0: greedy
  float top_p = 1.0f;
  int top_k = 0;  // 0 or -1: off
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::optional<uint64_t> seed;  // unset: the engine draws one
  int max_tokens = 16;
  int min_tokens = 0;
  bool ignore_eos = false;
  std::vector<std::string> stop;         // stop strings (not included in the output text)
  std::vector<int32_t> stop_token_ids;   // extra stop ids besides the model's eos ids
  // (token id, bias) added to the token's logit before penalties and temperature (OpenAI's
  // logit_bias; vLLM's order). Each id at most once.
  std::vector<std::pair<int32_t, float>> logit_bias;
  // vLLM's allowed_token_ids: when not empty, the only tokens that may be drawn (eos and stop
  // ids included only if listed). Not with output_format.
  std::vector<int32_t> allowed_token_ids;
  // vLLM's bad_words as token sequences: the last token of a sequence is banned wherever the
  // output so far ends with the rest of it (a one-token sequence: always). They never empty the
  // set an output_format or allowed_token_ids leaves: a step where they would ignores them.
  std::vector<std::vector<int32_t>> bad_words_ids;
  bool include_stop_str_in_output = false;
  int logprobs = -1;         // >= 0: return the sampled token's logprob and this many top ones
  int prompt_logprobs = -1;  // >= 0: logprobs of every prompt token (echo in completions)
  bool skip_special_tokens = true;
  // Structured output (empty: free text): only tokens that keep the output a prefix of these
  // pieces are drawn, and the sequence ends (eos, stop ids) only once they are complete. JSON
  // mode (response_format json_object) is one object, json_schema one value under the schema;
  // engine/output_format.h has the rest.
  std::vector<OutputPiece> output_format;
  // Not sampling: the prefix-cache namespace (vLLM's cache_salt). Blocks are shared only
  // between requests with the same salt, so a tenant cannot probe another's prompts by timing.
  std::string cache_salt;
  bool detokenize = true;    // false: ids only (no tokenizer, or the client wants ids)
  // Pooling requests: L2-normalise the vector (true) or not (false); unset: as the model's
  // files say (vLLM's PoolingParams.normalize).
  std::optional<bool> normalize;

  // Whether a repetition, presence or frequency penalty applies (the draw then needs the
  // output token counts so far).
  bool has_penalties() const {
    return repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f;
  }
  // Whether the next draw depends on the previous token on the host (penalties, JSON mode): an
  // async engine then resolves a step before it schedules the next.
  bool needs_previous_token() const {
    if (has_penalties() || !output_format.empty()) return true;
    for (const auto& w : bad_words_ids)
      if (w.size() > 1) return true;
    return false;
  }
  // Throws InvalidArgument naming the field when a value is out of range.
  void validate(int vocab_size) const;
};

// The tokens `words` (SamplingParams::bad_words_ids) ban next, after the generated tokens
// `output` followed by `ahead` (draft tokens not yet accepted): each word's last token where the
// text ends with the rest of the word. Each id once, in order of the words.
std::vector<int32_t> bad_word_bans(const std::vector<std::vector<int32_t>>& words, const int32_t* output,
                                   size_t n_output, const int32_t* ahead, size_t n_ahead);

}  // namespace tllm
