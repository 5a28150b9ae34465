// LLMEngine: model + paged KV cache + scheduler + sampler + detokenizer. step() runs one
// scheduling decision and one forward over the flat batch and returns what each request
// produced. Not thread-safe; AsyncEngine (async_engine.h) drives it from one thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/request.h"
#include "engine/sampling_params.h"
#include "model/config.h"

namespace tllm {

class Backend;
class CausalLM;
class Tokenizer;
class ChatTemplate;
class Scheduler;
struct KVCache;

// Speculative decoding (engine/speculative.h): drafts for `num_tokens` tokens per step and
// sequence, from a draft model or (method "ngram") from the sequence's own earlier text; the
// target verifies them in one forward.
struct SpeculativeConfig {
  std::string method;     // "draft_model" (the default with a model) or "ngram"
  std::string model_dir;  // the draft model (draft_model)
  int num_tokens = 0;     // 0: 4
  int prompt_lookup_min = 0, prompt_lookup_max = 0;  // ngram: n-gram lengths tried (0: 1 and 4)
  // > 0: steps with at least this many running sequences decode plainly (vLLM's
  // disable_by_batch_size: drafting pays at small batches, where decode is bandwidth-bound).
  int disable_by_batch_size = 0;
  bool ngram() const { return method == "ngram"; }
  bool enabled() const { return !model_dir.empty() || ngram(); }
};

struct EngineConfig {
  std::string model_dir;
  std::string device = "cpu";      // "cpu" | "cuda"
  std::string dtype = "auto";      // auto | float32 | bfloat16 | float16
  int threads = 0;                 // CPU threads (0: all cores), shared by the tensor-parallel ranks
  // vLLM's --tensor-parallel-size: the model's layers split over this many devices (GPUs
  // 0..n-1 with cuda; on the CPU, groups of the threads), dist/tensor_parallel.h.
  int tensor_parallel_size = 1;
  int max_model_len = 0;           // 0: the model's max_position_embeddings
  int max_num_seqs = 256;
  int max_num_batched_tokens = 0;  // 0: 2048 on CUDA, 512 on CPU
  int block_size = 16;
  bool enable_prefix_caching = true;
  double gpu_memory_utilization = 0.9;
  size_t kv_cache_memory = 0;      // CPU: bytes of KV cache (0: 1 GiB, capped by the model's needs)
  int num_kv_blocks = 0;           // > 0 overrides both (tests)
  bool skip_tokenizer_init = false;
  bool enforce_eager = false;      // CUDA: no graphs
  std::string kv_cache_dtype = "auto";  // auto: f32 on CPU, bf16 on CUDA
  std::string quantization;        // "", "int8", "int4" (quantization issue)
  int quant_group_size = 64;
  std::string load_format = "auto";  // "auto" (safetensors) or "dummy" (random weights)
  // Async scheduling: step() launches the next forward before this step's sampled tokens
  // reach the host (they go into the next embedding on the device), so the host's work
  // between steps overlaps the GPU; outputs arrive one step() later. "auto": on where the
  // backend overlaps its sampling (Backend::defers_sampling); "on": always (with a backend
  // that draws synchronously the results are the same and nothing overlaps); "off".
  // Steps after one that sampled with repetition / presence / frequency penalties run
  // synchronously (the penalty counts need the previous token).
  std::string async_scheduling = "auto";
  // Steps run synchronously with a draft model (async scheduling "on" is refused).
  SpeculativeConfig speculative;
  // "generate", or "pooling": an embedding model (engine/pooling.h), every request a prefill
  // whose output is one vector; pooling_type "auto" (the model's sentence-transformers files,
  // else last), "last", "mean" or "cls".
  std::string runner = "generate";
  std::string pooling_type = "auto";
  std::optional<bool> pooling_normalize;  // unset: the model's files (modules.json), else true
  // vLLM's --chat-template: a file, or the template itself (text with `{`, `}` or a newline);
  // it replaces the model's. The special tokens still come from the model's tokenizer_config.json.
  std::string chat_template;
  // vLLM's --generation-config: "auto" (the model's generation_config.json gives the sampling
  // defaults), "vllm" (none: temperature 1, no top-p / top-k / min-p, no repetition penalty,
  // no token cap), or a folder whose generation_config.json gives them. The model's end ids
  // stay in every case (a folder's are added).
  std::string generation_config = "auto";

  // The checks that need no model: the model directory exists, the named choices (device,
  // runner, async scheduling) and the numeric settings are valid, the features combine.
  // LLMEngine's constructor runs them first; `serve` runs them before it listens.
  void check() const;
};

// Upper bounds of the tokens-per-step buckets (vLLM's vllm:iteration_tokens_total).
inline constexpr std::array<int, 13> kIterationTokenBounds = {1,   8,    16,   32,   64,   128,  256,
                                                               512, 1024, 2048, 4096, 8192, 16384};

struct EngineStats {
  int num_running = 0;
  int num_waiting = 0;
  int num_kv_blocks = 0;
  int num_free_kv_blocks = 0;   // free and not holding a cached prefix
  int num_cached_free_blocks = 0;  // free but still holding a reusable prefix block
  double kv_usage() const { return num_kv_blocks ? 1.0 - double(num_free_kv_blocks + num_cached_free_blocks) / num_kv_blocks : 0.0; }
  uint64_t prefix_cache_queries = 0;  // prompt tokens looked up
  uint64_t prefix_cache_hits = 0;     // prompt tokens found
  uint64_t prompt_tokens_total = 0;
  uint64_t generation_tokens_total = 0;
  uint64_t num_preemptions = 0;
  // Draws from a logits row with no usable value (NaN, or no finite logit: the drawn token's raw
  // log-prob is NaN), as weights or activations that overflow give; the first is also logged.
  uint64_t nonfinite_logit_rows = 0;
  // Speculative decoding: verification steps of a sequence with drafts, drafts verified, and
  // of those the ones kept (vLLM's spec_decode num_drafts / num_draft_tokens / num_accepted_tokens).
  uint64_t spec_num_drafts = 0;
  uint64_t spec_num_draft_tokens = 0;
  uint64_t spec_num_accepted_tokens = 0;
  // Tokens each engine step scheduled (prompt chunks and decode tokens together), counted per
  // bucket of kIterationTokenBounds (not cumulative; the last entry: above the last bound).
  std::array<uint64_t, kIterationTokenBounds.size() + 1> iteration_tokens{};
  uint64_t iteration_tokens_sum = 0;
  uint64_t num_steps = 0;
  void count_step(int tokens) {
    size_t b = 0;
    while (b < kIterationTokenBounds.size() && tokens > kIterationTokenBounds[b]) ++b;
    ++iteration_tokens[b];
    iteration_tokens_sum += static_cast<uint64_t>(tokens);
    ++num_steps;
  }
};

class LLMEngine {
 public:
  explicit LLMEngine(const EngineConfig& config);
  ~LLMEngine();

  const ModelConfig& model_config() const;
  const GenerationConfig& generation_config() const;
  const Tokenizer* tokenizer() const;         // null when skipped or absent
  const ChatTemplate* chat_template() const;  // null when the model has none
  // The longest prompt + completion served: --max-model-len, else the model's context, lowered
  // to what the KV cache holds when one full-length sequence would not fit (so a request
  // within it always fits the cache).
  int max_model_len() const;
  int vocab_size() const;
  // The ids that end a sequence unless ignore_eos: generation_config.json's and config.json's.
  std::vector<int32_t> eos_token_ids() const;
  const EngineConfig& config() const { return config_; }
  std::string backend_name() const;

  // Queues a request. Throws InvalidArgument (prompt empty, too long for max_model_len with
  // both counts in the message, token id out of vocabulary, bad sampling values, a duplicate id).
  void add_request(const std::string& request_id, std::vector<int32_t> prompt,
                   const SamplingParams& params);
  // What add_request refuses that does not depend on the requests already queued; reads
  // only what is fixed at construction, so another thread may call it (AsyncEngine checks a
  // submission on the caller's thread, so a refusal is the caller's 400).
  void check_request(const std::string& request_id, const std::vector<int32_t>& prompt,
                     const SamplingParams& params) const;
  // Frees the request's KV blocks at once; its final output (finish_reason abort) is
  // returned by the next step(). Unknown ids are ignored.
  void abort_request(const std::string& request_id);
  bool has_unfinished_requests() const;
  std::vector<RequestOutput> step();
  EngineStats stats() const;

  // Convenience for offline use: runs every prompt to completion, outputs in order.
  struct Completion {
    std::vector<int32_t> token_ids;
    std::string text;
    std::vector<TokenLogprob> logprobs;
    std::optional<std::vector<std::optional<TokenLogprob>>> prompt_logprobs;
    FinishReason finish_reason = FinishReason::None;
    int num_cached_tokens = 0;
    std::vector<float> embedding;  // a pooling engine's vector
    std::string error;             // non-empty when the engine failed the request (RequestOutput::error)
  };
  std::vector<Completion> generate(const std::vector<std::vector<int32_t>>& prompts,
                                   const std::vector<SamplingParams>& params);
  // A pooling engine (runner "pooling"): the vector of every prompt, in order.
  std::vector<std::vector<float>> embed(const std::vector<std::vector<int32_t>>& prompts);
  bool pooling() const;
  // A pooling engine's: whether its vectors are L2-normalised, how it pools ("last", "mean"
  // or "cls", as resolved from the model's files and the config), and their length.
  bool pooling_normalizes() const;
  std::string pooling_type() const;
  int hidden_size() const;

 private:
  struct Impl;
  EngineConfig config_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tllm
