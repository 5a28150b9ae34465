#include "cli/options.h"

#include <cctype>
#include <charconv>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <system_error>

#include "core/error.h"
#include "core/logging.h"
#include "engine/grammar.h"
#include "engine/json_schema.h"
#include "engine/regex.h"
#include "engine/speculative.h"
#include "io/gguf_model.h"
#include "io/hub.h"
#include "io/json.h"
#include "tokenizer/unicode.h"

namespace tllm {

const CLI::Validator kNonNegativeInt(
    [](std::string& text) -> std::string {
      long long v = 0;
      const char* end = text.data() + text.size();
      const auto [p, ec] = std::from_chars(text.data(), end, v);
      if (text.empty() || ec != std::errc() || p != end || v < 0)
        return "must be an integer >= 0, got \"" + text + "\"";
      return "";
    },
    "INT>=0");

const CLI::Validator kUint64(
    [](std::string& text) -> std::string {
      uint64_t v = 0;
      const char* end = text.data() + text.size();
      const auto [p, ec] = std::from_chars(text.data(), end, v);
      if (text.empty() || ec != std::errc() || p != end)
        return "must be an integer in [0, 18446744073709551615], got \"" + text + "\"";
      return "";
    },
    "UINT64");

void EngineOptions::add_to(CLI::App* cmd, bool model_positional) {
  EngineConfig& c = config;
  cmd->add_option(model_positional ? "model,--model" : "--model", c.model_dir,
                  "model directory (config.json, *.safetensors, tokenizer.json), a Hugging Face hub repository id "
                  "(e.g. Qwen/Qwen2.5-0.5B-Instruct: its snapshot in the HF cache, downloaded where missing), or a "
                  "llama.cpp .gguf file")
      ->required();
  cmd->add_option("--revision", revision, "hub revision of --model: a branch, tag or commit (default main)");
  cmd->add_option("--download-dir", download_dir,
                  "hub cache folder for repository ids (default $HF_HUB_CACHE, else $HF_HOME/hub, else "
                  "~/.cache/huggingface/hub)");
  cmd->add_option("--device", c.device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--dtype", c.dtype, "auto, float32, bfloat16 or float16")->capture_default_str();
  cmd->add_option("--threads", c.threads, "CPU threads (0: all cores)")
      ->check(kNonNegativeInt)
      ->capture_default_str();
  cmd->add_option("--max-model-len", c.max_model_len, "context length (0: the model's)")
      ->check(kNonNegativeInt)
      ->capture_default_str();
  cmd->add_option("--max-num-seqs", c.max_num_seqs, "sequences per step")->capture_default_str();
  cmd->add_option("--max-num-batched-tokens", c.max_num_batched_tokens,
                  "tokens per step (0: 512 on CPU, 8192 on CUDA)")
      ->check(kNonNegativeInt)
      ->capture_default_str();
  cmd->add_option("--block-size", c.block_size, "KV cache block size in tokens")->capture_default_str();
  cmd->add_option("--gpu-memory-utilization", c.gpu_memory_utilization, "fraction of GPU memory to use")
      ->capture_default_str();
  cmd->add_option("--kv-cache-memory", kv_cache_memory, "CPU KV cache size, e.g. 2GiB (default 2GiB)");
  cmd->add_option("--num-kv-blocks", c.num_kv_blocks, "exact number of KV blocks (overrides the sizes)")
      ->check(kNonNegativeInt);
  cmd->add_option("--kv-cache-dtype", c.kv_cache_dtype, "auto, float32, bfloat16 or float16")->capture_default_str();
  cmd->add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", c.enable_prefix_caching,
                "reuse KV blocks of shared prompt prefixes (default on)");
  cmd->add_option("--load-format", c.load_format, "auto (safetensors) or dummy (random weights of the config's shape)")
      ->capture_default_str();
  cmd->add_flag("--skip-tokenizer-init", c.skip_tokenizer_init, "ids in and out only");
  cmd->add_flag("--enforce-eager", c.enforce_eager, "CUDA: no graphs");
  cmd->add_option("--async-scheduling", c.async_scheduling,
                  "launch the next step before this step's tokens reach the host: auto (where the backend "
                  "overlaps its sampling), on or off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  cmd->add_option("--quantization", c.quantization,
                  "quantize on load: int8 or int4, or fp8 (e4m3 in 128x128 blocks; CUDA) on a float checkpoint "
                  "(vLLM's names of a checkpoint's own method, awq / gptq / fp8 / compressed-tensors / mlx, are "
                  "checked against it and change nothing); none: nothing quantized on load (a GGUF file's blocks "
                  "decoded to the weight dtype; by default they run as stored)");
  cmd->add_option("--runner", c.runner, "generate, or pooling: an embedding model (POST /v1/embeddings)")
      ->check(CLI::IsMember({"generate", "pooling"}))
      ->capture_default_str();
  cmd->add_option("--task", task, "vLLM's older spelling: generate, or embed (= --runner pooling)")
      ->check(CLI::IsMember({"generate", "embed"}));
  cmd->add_option("--pooling-type", c.pooling_type,
                  "pooling model: auto (the model's sentence-transformers files, else last), last, mean or cls")
      ->check(CLI::IsMember({"auto", "last", "mean", "cls"}))
      ->capture_default_str();
  cmd->add_option("--pooling-normalize", pooling_normalize,
                  "pooling model: auto (the model's modules.json, else true), true or false")
      ->check(CLI::IsMember({"auto", "true", "false"}));
  cmd->add_option("--speculative-model", c.speculative.model_dir,
                  "draft model for speculative decoding (same tokenizer as --model)");
  cmd->add_option("--num-speculative-tokens", c.speculative.num_tokens, "drafts per step and sequence (default 4)")
      ->check(CLI::Range(1, kMaxSpeculativeTokens));
  cmd->add_option("--speculative-disable-by-batch-size", c.speculative.disable_by_batch_size,
                  "decode plainly in steps with at least this many running sequences (0: never)")
      ->check(kNonNegativeInt);
  cmd->add_option("--speculative-config", speculative_config,
                  "vLLM's JSON form: {\"model\": DIR, \"num_speculative_tokens\": K, \"disable_by_batch_size\": B}");
  cmd->add_option("--quant-group-size", c.quant_group_size, "int4 group size (32, 64, 128)")->capture_default_str();
  cmd->add_option("--chat-template", c.chat_template,
                  "a chat template file, or the template itself, in place of the model's (as vLLM)");
  cmd->add_option("--generation-config", c.generation_config,
                  "sampling defaults: auto (the model's generation_config.json), vllm (none: temperature 1), or a "
                  "folder with a generation_config.json")
      ->capture_default_str();
  cmd->add_flag("--trust-remote-code", trust_remote_code,
                "accepted for vLLM command lines; no effect (tinyllm runs no code from the model's files)");
  cmd->add_option("--tensor-parallel-size", config.tensor_parallel_size,
                  "devices per model (vLLM's flag): the layers split over GPUs 0..N-1 (with --device cuda) or N groups "
                  "of the CPU threads; float checkpoints")
      ->capture_default_str();
}

EngineConfig EngineOptions::resolve() const {
  EngineConfig c = resolve_flags();
  resolve_models(c);
  return c;
}

EngineConfig EngineOptions::resolve_flags() const {
  EngineConfig c = config;
  if (!kv_cache_memory.empty()) c.kv_cache_memory = parse_byte_size(kv_cache_memory, "--kv-cache-memory");
  if (pooling_normalize == "true" || pooling_normalize == "false") c.pooling_normalize = pooling_normalize == "true";
  if (task == "embed") {
    c.runner = "pooling";
  }
  if (!speculative_config.empty()) {
    TLLM_CHECK_ARG(!c.speculative.enabled() && c.speculative.num_tokens == 0 && c.speculative.disable_by_batch_size == 0,
                   "give the draft model either with --speculative-config or with --speculative-model / "
                   "--num-speculative-tokens, not both");
    c.speculative = parse_speculative_config(speculative_config);
  }
  TLLM_CHECK_ARG(c.speculative.enabled() || c.speculative.num_tokens == 0,
                 "--num-speculative-tokens needs a draft model (--speculative-model DIR)");
  TLLM_CHECK_ARG(c.speculative.enabled() || c.speculative.disable_by_batch_size == 0,
                 "--speculative-disable-by-batch-size needs a draft model (--speculative-model DIR)");
  return c;
}

// Last, once every flag has been checked: a download may take minutes.
void EngineOptions::resolve_models(EngineConfig& c) const {
  HubOptions hub;
  hub.cache_dir = download_dir;
  if (c.load_format == "dummy") hub.files = HubFiles::NoWeights;  // random weights: config and tokenizer only
  if (!c.speculative.model_dir.empty()) c.speculative.model_dir = resolve_model_arg(c.speculative.model_dir, hub).dir;
  if (!revision.empty()) hub.revision = revision;  // --revision is the target's; a draft takes its main branch
  const ResolvedModel model = resolve_model_arg(c.model_dir, hub);
  TLLM_CHECK_ARG(model.from_hub || revision.empty(), "--revision ", revision,
                 " applies to a hub repository id, and --model ", c.model_dir, " is a local path");
  c.model_dir = model.dir;
}

ResolvedModel resolve_model_arg(const std::string& model, const HubOptions& hub) {
  if (is_gguf_file(model)) return {materialize_gguf(model), false};
  if (const auto ref = parse_hub_gguf_ref(model)) return {materialize_gguf(resolve_hub_gguf(*ref, hub)), true};
  return resolve_model(model, hub);
}

EngineConfig EngineOptions::resolve_for_generation(const char* command) const {
  EngineConfig c = resolve_flags();
  TLLM_CHECK_ARG(c.runner == "generate", command, " generates text, and --runner pooling (--task embed) makes an "
                                                  "embedding model: serve it (POST /v1/embeddings) or use `tinyllm embed`");
  resolve_models(c);
  return c;
}

size_t parse_byte_size(const std::string& text, const std::string& flag) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  TLLM_CHECK_ARG(i > 0, flag, ": \"", text, "\" is not a size (e.g. 2GiB, 512MiB, 1000000)");
  const std::string number = text.substr(0, i);
  TLLM_CHECK_ARG(std::count(number.begin(), number.end(), '.') <= 1 && number != ".", flag, ": \"", text,
                 "\" is not a size (e.g. 2GiB, 512MiB, 1000000)");
  double v = 0;
  try {
    v = std::stod(number);
  } catch (...) {
    TLLM_CHECK_ARG(false, flag, ": \"", text, "\" is not a size");
  }
  std::string unit = text.substr(i);
  for (char& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  double mult = 1;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kb") mult = 1e3;
  else if (unit == "kib") mult = 1024.0;
  else if (unit == "m" || unit == "mb") mult = 1e6;
  else if (unit == "mib") mult = 1024.0 * 1024;
  else if (unit == "g" || unit == "gb") mult = 1e9;
  else if (unit == "gib") mult = 1024.0 * 1024 * 1024;
  else TLLM_CHECK_ARG(false, flag, ": unknown size unit \"", unit, "\" (use B, KiB, MiB, GiB, KB, MB, GB)");
  TLLM_CHECK_ARG(std::isfinite(v) && v > 0, flag, ": size must be positive, got \"", text, "\"");
  const double bytes = v * mult;
  // Below a byte it would become 0, which the engine reads as "the default".
  TLLM_CHECK_ARG(bytes >= 1, flag, ": \"", text, "\" is less than one byte");
  TLLM_CHECK_ARG(bytes < 0x1p63, flag, ": \"", text, "\" is more bytes than any machine has");
  return static_cast<size_t>(bytes);
}

void SamplingOptions::add_to(CLI::App* cmd) {
  cmd->add_option("--max-tokens", max_tokens, "tokens to generate")->capture_default_str();
  cmd->add_option("--min-tokens", min_tokens, "tokens before eos/stop may end")->capture_default_str();
  cmd->add_option("--temperature", temperature, "0 = greedy (default from generation_config.json)");
  cmd->add_option("--top-p", top_p, "nucleus sampling");
  cmd->add_option("--top-k", top_k, "top-k sampling (-1: off)");
  cmd->add_option("--min-p", min_p, "min-p sampling");
  cmd->add_option("--repetition-penalty", repetition_penalty);
  cmd->add_option("--presence-penalty", presence_penalty);
  cmd->add_option("--frequency-penalty", frequency_penalty);
  cmd->add_option("--seed", seed, "per-request seed (0 to 2^64 - 1)")->check(kUint64);
  cmd->add_flag("--ignore-eos", ignore_eos, "keep generating after eos");
  cmd->add_option("--stop", stop, "stop string (repeatable)");
  cmd->add_option("--logprobs", logprobs, "return this many top log-probs per token");
  cmd->add_option("--json-schema", json_schema,
                  "the output is JSON valid under this JSON Schema (inline, or @FILE); '{\"type\": \"object\"}' for "
                  "any object");
  cmd->add_option("--choice", choices, "the output is one of these texts (repeatable)");
  cmd->add_option("--regex", regex, "the output is text this regular expression matches whole");
  cmd->add_option("--grammar", grammar, "the output is a sentence of this GBNF grammar (inline, or @FILE)");
}

SamplingParams SamplingOptions::resolve(const GenerationConfig& gen) const {
  SamplingParams p;
  // generation_config.json defaults: sampling values when do_sample, else greedy.
  if (gen.do_sample) {
    p.temperature = static_cast<float>(gen.temperature.value_or(1.0));
    p.top_p = static_cast<float>(gen.top_p.value_or(1.0));
    p.top_k = gen.top_k.value_or(0);
    p.min_p = static_cast<float>(gen.min_p.value_or(0.0));
  } else {
    p.temperature = 0.0f;
  }
  p.repetition_penalty = static_cast<float>(gen.repetition_penalty.value_or(1.0));
  if (temperature) p.temperature = *temperature;
  if (top_p) p.top_p = *top_p;
  if (top_k) p.top_k = *top_k;
  if (min_p) p.min_p = *min_p;
  if (repetition_penalty) p.repetition_penalty = *repetition_penalty;
  if (presence_penalty) p.presence_penalty = *presence_penalty;
  if (frequency_penalty) p.frequency_penalty = *frequency_penalty;
  p.seed = seed;
  p.max_tokens = max_tokens;
  p.min_tokens = min_tokens;
  p.ignore_eos = ignore_eos;
  p.stop = stop;
  p.logprobs = logprobs;
  TLLM_CHECK_ARG(int{!json_schema.empty()} + int{!choices.empty()} + int{!regex.empty()} + int{!grammar.empty()} <= 1,
                 "give one of --json-schema, --choice, --regex and --grammar");
  if (!json_schema.empty()) {
    const bool from_file = json_schema[0] == '@';
    nlohmann::json schema;
    try {
      schema = parse_json(from_file ? read_file(json_schema.substr(1)) : json_schema,
                          from_file ? json_schema.substr(1) : "the schema");
    } catch (const Error& e) {
      TLLM_CHECK_ARG(false, "--json-schema: ", e.what());
    }
    try {
      p.output_format = {OutputPiece::value(JsonSchema::compile(schema))};
    } catch (const InvalidArgument& e) {
      TLLM_CHECK_ARG(false, "--json-schema: ", e.what());
    }
  }
  for (const std::string& c : choices) TLLM_CHECK_ARG(!c.empty(), "--choice: a choice must not be empty");
  if (!choices.empty()) p.output_format = {OutputPiece::any_of(choices)};
  if (!regex.empty()) {
    try {
      p.output_format = {OutputPiece::matching(Regex::compile(regex))};
    } catch (const InvalidArgument& e) {
      TLLM_CHECK_ARG(false, "--regex: ", e.what());
    }
  }
  if (!grammar.empty()) {
    try {
      const bool from_file = grammar[0] == '@';
      p.output_format = {OutputPiece::sentence(Grammar::compile(from_file ? read_file(grammar.substr(1)) : grammar))};
    } catch (const Error& e) {
      TLLM_CHECK_ARG(false, "--grammar: ", e.what());
    }
  }
  return p;
}

void SamplingOptions::check_before_load() const {
  // Texts that are matched against the output's bytes: invalid UTF-8 could never match (and
  // a --choice was printed back as raw bytes).
  for (const std::string& s : stop) check_utf8_text(s, "--stop");
  for (const std::string& c : choices) check_utf8_text(c, "--choice");
  resolve(GenerationConfig{}).validate(std::numeric_limits<int>::max());
}

void check_ids_in_vocab(const std::vector<int32_t>& ids, int vocab, const char* option) {
  for (int32_t t : ids)
    TLLM_CHECK_ARG(t >= 0 && t < vocab, option, ": token id ", t, " is outside the model's vocabulary [0, ", vocab, ")");
}

std::vector<int32_t> parse_id_list(const std::string& text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string item = text.substr(i, j - i);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.erase(item.begin());
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
    TLLM_CHECK_ARG(!item.empty(), "token id list \"", text, "\" has an empty item");
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    TLLM_CHECK_ARG(used == item.size() && v >= 0 && v <= 0x7fffffff, "\"", item,
                   "\" is not a token id (expected a non-negative integer)");
    ids.push_back(static_cast<int32_t>(v));
    i = j + 1;
  }
  return ids;
}

void check_utf8_text(const std::string& text, const std::string& what) {
  const size_t ok = tok::valid_utf8_prefix(text);
  if (ok == text.size()) return;
  char byte[8];
  std::snprintf(byte, sizeof(byte), "0x%02X", static_cast<unsigned char>(text[ok]));
  TLLM_CHECK_ARG(false, what, " is not valid UTF-8: the sequence at byte ", ok, " (", byte, ") is invalid");
}

}  // namespace tllm
