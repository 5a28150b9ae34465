// Engine options shared by the subcommands that load a model, spelled as vLLM spells them.
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "engine/engine.h"
#include "engine/sampling_params.h"
#include "io/hub.h"

namespace tllm {

struct EngineOptions {
  EngineConfig config;
  std::string kv_cache_memory;  // "2GiB", "512MiB", bytes
  std::string speculative_config;  // vLLM's --speculative-config JSON
  std::string task;                // vLLM's --task: "embed" is --runner pooling
  std::string pooling_normalize;   // "auto", "true", "false"
  bool trust_remote_code = false;  // vLLM's flag, accepted without effect
  std::string revision;            // hub revision of --model (vLLM's --revision; "": main)
  std::string download_dir;        // hub cache folder (vLLM's --download-dir; "": the HF cache)
  // model_positional: `tinyllm serve MODEL` as `vllm serve MODEL` (--model works too).
  void add_to(CLI::App* cmd, bool model_positional = false);
  // Parses the size strings, and resolves --model / the draft model names that are hub
  // repository ids (io/hub.h) to their snapshot folders, downloading what is missing.
  EngineConfig resolve() const;
  // resolve() for a command that generates text: a pooling runner is refused naming `command`.
  EngineConfig resolve_for_generation(const char* command) const;

 private:
  EngineConfig resolve_flags() const;         // everything but the hub
  void resolve_models(EngineConfig& c) const;  // hub repository ids -> snapshot folders
};

// A --model argument as a folder: a GGUF file's folder (io/gguf_model.h), a hub repository's
// snapshot (io/hub.h), or the path itself.
ResolvedModel resolve_model_arg(const std::string& model, const HubOptions& hub);

// "2GiB", "1.5G", "512MiB", "1000000" -> bytes; throws InvalidArgument naming the flag.
size_t parse_byte_size(const std::string& text, const std::string& flag);

// Flag checks: a decimal integer >= 0 (counts and sizes where 0 means "automatic"), and one in
// [0, 2^64 - 1] (seeds: CLI11's own conversion wrapped "-1" and saturated larger values).
extern const CLI::Validator kNonNegativeInt;
extern const CLI::Validator kUint64;

// Sampling flags; unset ones fall back to generation_config.json as vLLM does.
struct SamplingOptions {
  std::optional<float> temperature, top_p, min_p, repetition_penalty, presence_penalty, frequency_penalty;
  std::optional<int> top_k;
  std::optional<uint64_t> seed;
  int max_tokens = 64;
  int min_tokens = 0;
  bool ignore_eos = false;
  std::vector<std::string> stop;
  int logprobs = -1;
  std::string json_schema;          // structured output: a JSON Schema, or @FILE holding one
  std::vector<std::string> choices;  // structured output: one of these texts
  std::string regex;                 // structured output: text this regular expression matches
  std::string grammar;               // structured output: a sentence of this GBNF grammar (inline or @FILE)
  void add_to(CLI::App* cmd);
  SamplingParams resolve(const GenerationConfig& gen) const;
  // The checks that need no model (the values given, the output format), so that a wrong
  // flag fails before a load that takes minutes for a large model; the engine checks the
  // vocabulary-bound ones (logit_bias, stop_token_ids) again once it is loaded.
  void check_before_load() const;
};

// Comma-separated ids "1,2,3" -> vector; throws naming the bad item.
std::vector<int32_t> parse_id_list(const std::string& text);
// Throws naming `option` when an id is outside [0, vocab) (the engine's message would name
// its internal request instead).
void check_ids_in_vocab(const std::vector<int32_t>& ids, int vocab, const char* option);

// Throws naming `what` and the byte offset where text stops being valid UTF-8 (the server
// refuses such a body with a 400; the CLI refuses it the same way instead of encoding U+FFFD).
void check_utf8_text(const std::string& text, const std::string& what);

}  // namespace tllm
