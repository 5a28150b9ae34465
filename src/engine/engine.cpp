#include "engine/engine.h"

#include <thread>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <span>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/allocator.h"
#include "core/env.h"
#include "core/logging.h"
#include "core/timer.h"
#include "dist/tensor_parallel.h"
#include "engine/block_manager.h"
#include "engine/output_format.h"
#include "engine/pooling.h"
#include "engine/scheduler.h"
#include "engine/speculative.h"
#include "io/json.h"
#include "kernels/backend.h"
#include "kernels/profiling_backend.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/weights.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tllm {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Abort: return "abort";
    case FinishReason::None: break;
  }
  return "";
}

namespace {

// Output-side state of one request: detokenizer, text held back while it could still be
// the start of a stop string, penalty counts, prompt logprobs gathered across chunks.
struct RequestState {
  std::unique_ptr<IncrementalDetokenizer> detok;
  std::string held;
  size_t max_stop_len = 0;
  std::unordered_map<int32_t, int> output_counts;
  std::vector<int32_t> prompt_unique;  // distinct prompt tokens (repetition penalty)
  std::vector<std::optional<TokenLogprob>> prompt_logprobs;
  bool sent_first = false;
  std::optional<FormatPrefix> format;  // structured output: the output so far, as the recognizer saw it
  // The time the token filter spent on this request's masks, and how many (counted in the
  // const batch-building pass, hence mutable). The engine loop waits for every mask, so a
  // request whose masks are slow (an ambiguous grammar over a 150k vocabulary: ~1 s each)
  // slows every other request: past the budget it ends with an error (MaskBudget).
  mutable double mask_seconds = 0;
  mutable int masks = 0;
};

// When a request's structured output has cost too much: over `total` seconds of masks in all
// and over `mean` seconds per mask (so a long, cheap generation never trips it).
// TLLM_MASK_BUDGET_MS and TLLM_MASK_MEAN_LIMIT_MS set them (tests use 0).
struct MaskBudget {
  double total = env_int("TLLM_MASK_BUDGET_MS", 2000) / 1e3;
  double mean = env_int("TLLM_MASK_MEAN_LIMIT_MS", 100) / 1e3;
  bool spent(const RequestState& st) const {
    return st.masks > 0 && st.mask_seconds >= total && st.mask_seconds >= mean * st.masks;
  }
};

// Largest prefix length of `s` that ends on a UTF-8 character boundary and is <= n.
size_t utf8_cut(const std::string& s, size_t n) {
  if (n >= s.size()) return s.size();
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

std::vector<std::pair<int32_t, float>> top_n(const float* row, int64_t V, int n) {
  std::vector<int32_t> idx(V);
  for (int64_t i = 0; i < V; ++i) idx[i] = static_cast<int32_t>(i);
  n = static_cast<int>(std::min<int64_t>(n, V));
  std::partial_sort(idx.begin(), idx.begin() + n, idx.end(), [&](int32_t a, int32_t b) {
    return row[a] > row[b] || (row[a] == row[b] && a < b);
  });
  std::vector<std::pair<int32_t, float>> out;
  for (int i = 0; i < n; ++i) out.emplace_back(idx[i], row[idx[i]]);
  return out;
}

// The longest context the model supports, as vLLM derives it: RoPE scaling stretches
// max_position_embeddings by its factor (yarn from its original length).
int derived_max_model_len(const ModelConfig& mc) {
  const RopeScaling& r = mc.rope_scaling;
  double len = mc.max_position_embeddings;
  if (r.type == RopeType::Linear || r.type == RopeType::Dynamic) len *= r.factor;
  if (r.type == RopeType::Yarn) {
    const int orig = r.original_max_position_embeddings > 0 ? r.original_max_position_embeddings
                                                           : mc.max_position_embeddings;
    len = std::max<double>(len, orig * r.factor);
  }
  return static_cast<int>(len);
}

// The CUDA kernels take bf16 weights (bf16 activations, f32 accumulation): an f16 or f32
// checkpoint is converted to bf16 there, as transformers casts to its compute dtype
// (EngineConfig::check refuses another --dtype on CUDA).
DType resolve_weight_dtype(const std::string& requested, DType checkpoint, const std::string& device) {
  if (requested == "auto") {
    if (device == "cuda") return DType::BF16;
    return checkpoint;
  }
  return dtype_from_name(requested);
}

// TLLM_STEP_TIMING=1: host wall time of the phases of each step() that samples, as medians
// printed when the engine is destroyed. On a GPU the forward only launches work and the
// sample call waits for it, so "schedule+build" and "outputs" are time the GPU spends idle
// between decode steps (as is the wake-up from the wait), "sample" holds the step's GPU time.
class StepTiming {
 public:
  static constexpr int kPhases = 4;
  StepTiming() {
    enabled_ = env_flag("TLLM_STEP_TIMING");
  }
  ~StepTiming() {
    if (!enabled_ || phases_[0].empty()) return;
    static const char* names[kPhases] = {"schedule+build", "forward launch", "sample (waits for the GPU)",
                                         "outputs"};
    std::string msg = "[step timing] " + std::to_string(phases_[0].size()) + " steps, median us per step:";
    double total = 0;
    for (int i = 0; i < kPhases; ++i) {
      const double m = median(phases_[i]);
      total += m;
      msg += std::string(" ") + names[i] + " " + std::to_string(static_cast<int>(m * 1e6 + 0.5)) + ";";
    }
    int max_rows = 0;
    double sum_rows = 0;
    for (int r : rows_) max_rows = std::max(max_rows, r), sum_rows += r;
    int below = 0;
    for (int r : rows_) below += r < max_rows;
    std::fprintf(stderr, "%s sum %d; sampled rows per step: mean %.1f, max %d, %d steps below the max\n",
                 msg.c_str(), static_cast<int>(total * 1e6 + 0.5), sum_rows / rows_.size(), max_rows, below);
  }
  bool enabled() const { return enabled_; }
  // t: the step's entry, its forward launch, its return from forward and from sample, its end.
  void add(const double (&t)[kPhases + 1], int rows) {
    for (int i = 0; i < kPhases; ++i) phases_[i].push_back(t[i + 1] - t[i]);
    rows_.push_back(rows);
  }

 private:
  static double median(std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  }
  bool enabled_ = false;
  std::vector<double> phases_[kPhases];
  std::vector<int> rows_;
};

// The draft model of speculative decoding, on the target's backend with its load options.
// Refused with the reason: a missing directory, a context shorter than the engine's, or a
// tokenizer that differs from the target's (its drafts would be other tokens).
std::unique_ptr<CausalLM> load_draft(const EngineConfig& c, const ModelConfig& target, const ModelLoadOptions& mo,
                                     int max_model_len, Backend& backend) {
  namespace fs = std::filesystem;
  const std::string& dir = c.speculative.model_dir;
  TLLM_CHECK_ARG(fs::is_directory(dir), "speculative model directory \"", dir, "\" does not exist");
  const ModelConfig dc = ModelConfig::load(dir);
  const int draft_len = derived_max_model_len(dc);
  TLLM_CHECK_ARG(draft_len >= max_model_len, "the draft model's context length ", draft_len, " (", dir,
                 ") is shorter than max_model_len ", max_model_len, ": lower --max-model-len");
  const fs::path tt = fs::path(c.model_dir) / "tokenizer.json", dt = fs::path(dir) / "tokenizer.json";
  if (fs::exists(tt) && fs::exists(dt) && read_file(tt.string()) != read_file(dt.string())) {
    // Files that differ may still hold one vocabulary (their decoders or templates differ).
    const nlohmann::json a = read_json_file(tt.string()), b = read_json_file(dt.string());
    const auto part = [](const nlohmann::json& j, const char* key, const char* sub) {
      const auto it = j.find(key);
      if (it == j.end()) return nlohmann::json();
      if (!sub) return *it;
      const auto s = it->find(sub);
      return s == it->end() ? nlohmann::json() : *s;
    };
    TLLM_CHECK_ARG(part(a, "model", "vocab") == part(b, "model", "vocab") &&
                       part(a, "model", "merges") == part(b, "model", "merges") &&
                       part(a, "added_tokens", nullptr) == part(b, "added_tokens", nullptr),
                   "the draft model's tokenizer (", dt.string(), ") differs from the target's (", tt.string(),
                   "): a draft must share the target's vocabulary");
  }
  if (dc.vocab_size != target.vocab_size)
    TLLM_LOG(Info, "draft model vocabulary ", dc.vocab_size, " ids, target ", target.vocab_size,
             ": drafts are drawn from the ids both have");
  ModelLoadOptions dmo = mo;
  dmo.weight_dtype = resolve_weight_dtype(c.dtype, dc.dtype, c.device);
  dmo.quantization.clear();
  return load_model(dir, dc, backend, dmo);
}

}  // namespace

struct LLMEngine::Impl {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<CausalLM> model;
  KVCache kv;
  std::unique_ptr<BlockManager> blocks;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<ChatTemplate> chat;
  GenerationConfig gen;
  std::set<int32_t> eos_ids;
  // The ids that end a request's sequence: eos (unless ignored) and its stop ids.
  std::vector<int32_t> end_ids(const SamplingParams& p) const {
    std::vector<int32_t> ends;
    if (!p.ignore_eos) ends.assign(eos_ids.begin(), eos_ids.end());
    ends.insert(ends.end(), p.stop_token_ids.begin(), p.stop_token_ids.end());
    return ends;
  }
  // A structured output that is complete and lets no other token through (a choice spelled
  // out): it ends now, before min_tokens and with ignore_eos too, since nothing else may come.
  // (Before, min_tokens banned the end ids the format left, the row had no token at all, and
  // the draw's stand-in id broke the format: a crash of the server.)
  bool format_closed(const SamplingParams& p, const FormatPrefix& f) const {
    if (!f.complete()) return false;
    const TokenSet& next = output_filter->next(f);
    if (!next.allowed) return false;
    const std::vector<int32_t> ends = end_ids(p);
    return std::all_of(next.ids.begin(), next.ids.end(),
                       [&](int32_t t) { return std::find(ends.begin(), ends.end(), t) != ends.end(); });
  }
  // After every draw: rows whose logits had no usable value are counted (and the first one
  // logged: an unconstrained request still gets the stand-in id 0, as greedy decoding anywhere
  // would), and a stand-in that the row's allow / ban list refuses becomes -1 (the request
  // then ends with an error).
  void check_draw(SampleResult& sr, const SampleBatch& sb) {
    uint64_t bad = 0;
    for (float lp : sr.logprobs) bad += std::isnan(lp) ? 1 : 0;
    if (bad && !counters.nonfinite_logit_rows)
      TLLM_LOG(Warn, "the model's logits have no usable value (NaN, or no finite logit) in ", bad, " of ",
               sr.logprobs.size(), " rows of this step; what it generates from them is not meaningful (",
               "weights or activations that overflow do this, e.g. a float16 checkpoint: try --dtype bfloat16 "
               "or float32). Later rows like these are counted, not logged.");
    counters.nonfinite_logit_rows += bad;
    refuse_stand_ins(sr, sb);
  }
  // Both backends draw id 0 for a row that has no token to give: every id excluded by its
  // lists, or logits without a finite value (a model whose weights overflowed). Where the row's
  // lists refuse id 0, the draw becomes -1 and process_sampled ends that request with an error,
  // instead of emitting a token its constraints (allowed_token_ids, structured output, bans)
  // forbid. Only id 0 needs the check, so it costs nothing on other draws.
  static void refuse_stand_ins(SampleResult& sr, const SampleBatch& sb) {
    if (sb.banned_offsets.empty()) return;
    for (size_t r = 0; r < sr.tokens.size(); ++r) {
      if (sr.tokens[r] != 0) continue;
      const auto b = sb.banned_tokens.begin() + sb.banned_offsets[r];
      const auto e = sb.banned_tokens.begin() + sb.banned_offsets[r + 1];
      const bool listed = std::find(b, e, 0) != e;
      if (listed != sb.rows[r].allow_only) sr.tokens[r] = -1;
    }
  }
  int max_model_len = 0;
  int vocab = 0;
  std::unordered_map<std::string, RequestState> states;
  std::vector<RequestOutput> pending;  // outputs of aborted requests, returned by the next step
  std::mt19937_64 seed_rng{std::random_device{}()};
  EngineStats counters;
  uint64_t generate_calls = 0;
  StepTiming timing;

  // A step whose draw the host has not collected yet (async scheduling).
  struct Launched {
    SchedulerOutput so;
    std::vector<int> sampling;     // so.scheduled index of each drawn row
    std::vector<int> token_index;  // per row: the index of its placeholder in the sequence's tokens
    int ticket = -1;
    SampleBatch batch;             // what the deferred draw was given (refuse_stand_ins)
    bool references(const Sequence* q) const {
      for (const ScheduledSequence& s : so.scheduled)
        if (s.seq == q) return true;
      return false;
    }
  };
  struct PromptRow {
    Sequence* seq;
    int position;  // logits at this position score prompt token position + 1
  };
  bool async = false;
  std::unique_ptr<Launched> in_flight;
  std::unique_ptr<Pooler> pooler;      // a pooling model (null: generation)
  std::unique_ptr<Proposer> drafter;  // speculative decoding (null: off)
  int spec_off_at = 0;               // SpeculativeConfig::disable_by_batch_size
  int max_batched = 0;
  // Structured output's token filter, made on the first such request (its cache fills as it runs).
  mutable std::unique_ptr<OutputFilter> output_filter;
  MaskBudget mask_budget;
  std::set<const Sequence*> zombies;  // finished or aborted while an in-flight step holds them

  // The flat batch of a schedule: tokens (placeholders become feed rows of draw `ticket`),
  // the rows that sample and the prompt-logprob rows.
  // Speculative decoding: drafts[i] (when given) follow scheduled sequence i's tokens, each
  // with a logits row; ahead[r] is the number of drafts before sampling row r.
  void build_batch(const SchedulerOutput& so, ForwardBatch& fb, std::vector<int>& sampling,
                   std::vector<PromptRow>& prompt_rows, int ticket,
                   const std::vector<std::vector<int32_t>>* drafts = nullptr, std::vector<int>* ahead = nullptr) const;
  void record_prompt_logprobs(const Tensor& logits, int R, const std::vector<PromptRow>& prompt_rows);
  SampleBatch build_sample_batch(const SchedulerOutput& so, const std::vector<int>& sampling) const;
  // The draw of the token after rows[j]'s tokens and the first ahead[j] of *drafts[j] (their
  // penalty counts and structured output's state include those drafts), over a vocabulary of
  // `vocab` ids (a draft model's may be smaller: ids beyond it are left out of biases and bans).
  SampleBatch sample_rows(const std::vector<const Sequence*>& rows, const std::vector<int>& ahead,
                          const std::vector<const std::vector<int32_t>*>& drafts, int vocab) const;
  // Speculative decoding: cuts q's drafts at the first one its structured output would refuse.
  void cut_to_format(const Sequence& q, std::vector<int32_t>& drafts) const;
  std::vector<RequestOutput> step_speculative();
  std::vector<RequestOutput> step_pooling();
  // The scheduler's next step, each sequence scheduled for the first time stamped.
  SchedulerOutput schedule() {
    SchedulerOutput so = scheduler->schedule();
    if (!so.empty()) counters.count_step(so.num_batched_tokens);
    const double now = now_seconds();
    for (const auto& s : so.scheduled)
      if (s.seq->scheduled_time == 0) s.seq->scheduled_time = now;
    return so;
  }
  // Async scheduling: schedule, forward and start the draw; placeholders for the drawn tokens.
  // Schedules, builds and launches a step (its forward, then its draw). `resolve_first`: a step
  // whose draw the host needs before this one's draw can be built (penalties, structured
  // output): resolved after this step's forward is queued, so the device runs it meanwhile.
  std::unique_ptr<Launched> launch(int feed_ticket, Launched* resolve_first, std::vector<RequestOutput>& outputs);
  // Collects L's draw and processes its tokens; sequences that finish while `next` holds
  // them wait as zombies until `next` resolves.
  void resolve(Launched& L, const Launched* next, std::vector<RequestOutput>& outputs);
  void finish(Sequence& q);  // removes a finished sequence and its state
  std::vector<RequestOutput> step_async();

  // Whether q ends by length once it holds num_tokens tokens (max_tokens or max_model_len).
  bool reaches_length(const Sequence& q, int num_tokens) const {
    return num_tokens - q.num_prompt_tokens >= q.params.max_tokens || num_tokens >= max_model_len;
  }
  // index >= 0: the token replaces the placeholder tokens[index] (async scheduling).
  void process_sampled(Sequence& q, RequestState& st, int32_t token, const SampleResult& sr, int row,
                       std::vector<RequestOutput>& outputs, int index = -1);
};

void EngineConfig::check() const {
  std::error_code ec;
  TLLM_CHECK_ARG(std::filesystem::is_directory(model_dir, ec), "model directory \"", model_dir, "\" ",
                 std::filesystem::exists(model_dir, ec) ? "is not a directory (give the folder with config.json)"
                 : ec ? "cannot be read: " + ec.message()
                      : std::string("does not exist"));
  TLLM_CHECK_ARG(device == "cpu" || device == "cuda", "unknown device \"", device, "\" (supported: cpu, cuda)");
  TLLM_CHECK_ARG(device != "cuda" || dtype == "auto" || dtype == "bfloat16", "--dtype ", dtype,
                 ": the CUDA backend computes in bfloat16; use auto or bfloat16 (float16 and float32 checkpoints "
                 "are converted to it)");
  if (kv_cache_dtype != "auto") {
    // vLLM's fp8 spellings are named: a user coming from there should learn they are not here.
    TLLM_CHECK_ARG(kv_cache_dtype.rfind("fp8", 0) != 0, "--kv-cache-dtype ", kv_cache_dtype,
                   ": fp8 KV caches are not supported (auto, float32, bfloat16 or float16)");
    DType kv = DType::F32;
    try {
      kv = dtype_from_name(kv_cache_dtype);
    } catch (const Error&) {
      TLLM_CHECK_ARG(false, "--kv-cache-dtype must be auto, float32, bfloat16 or float16, got \"", kv_cache_dtype,
                     "\"");
    }
    TLLM_CHECK_ARG(device != "cuda" || kv == DType::BF16, "--kv-cache-dtype ", kv_cache_dtype,
                   ": the CUDA backend keeps its KV cache in bfloat16; use auto or bfloat16");
  }
  TLLM_CHECK_ARG(async_scheduling == "auto" || async_scheduling == "on" || async_scheduling == "off",
                 "async_scheduling must be auto, on or off, got \"", async_scheduling, "\"");
  TLLM_CHECK_ARG(runner == "generate" || runner == "pooling", "runner must be generate or pooling, got \"", runner,
                 "\"");
  if (runner == "pooling") {
    TLLM_CHECK_ARG(!speculative.enabled(), "a pooling model has no decode to speculate on");
    TLLM_CHECK_ARG(async_scheduling != "on", "a pooling model runs no draws to overlap: drop --async-scheduling on");
  }
  if (speculative.enabled())
    TLLM_CHECK_ARG(async_scheduling != "on",
                   "speculative decoding runs its steps synchronously: drop --async-scheduling on (or use auto)");
  TLLM_CHECK_ARG(tensor_parallel_size >= 1, "tensor parallel size must be >= 1, got ", tensor_parallel_size);
  if (tensor_parallel_size > 1) {
    // The ranks other than 0 embed the tokens themselves: they need them on the host.
    TLLM_CHECK_ARG(async_scheduling != "on", "async scheduling keeps sampled tokens on GPU 0, where the other ",
                   "tensor-parallel ranks cannot read them: drop --async-scheduling on (or use auto)");
    TLLM_CHECK_ARG(!env_flag("TLLM_PROFILE"), "TLLM_PROFILE does not profile tensor-parallel ranks; unset it or use "
                   "--tensor-parallel-size 1");
  }
  TLLM_CHECK_ARG(block_size >= 1 && block_size <= 256, "block size must be in [1, 256], got ", block_size);
  TLLM_CHECK_ARG(max_num_seqs >= 1, "max_num_seqs must be >= 1, got ", max_num_seqs);
  // Checked on every device (a CPU run ignores it): 1.5 is a typo, not a setting.
  TLLM_CHECK_ARG(gpu_memory_utilization > 0.0 && gpu_memory_utilization <= 1.0,
                 "gpu_memory_utilization must be in (0, 1], got ", gpu_memory_utilization);
}

LLMEngine::LLMEngine(const EngineConfig& c) : config_(c), impl_(std::make_unique<Impl>()) {
  Impl& I = *impl_;
  namespace fs = std::filesystem;
  c.check();
  const ModelConfig mc = ModelConfig::load(c.model_dir);
  I.gen = GenerationConfig::load(c.model_dir, c.generation_config);

  const int tp = c.tensor_parallel_size;
  // CPU ranks share the threads (each rank's backend has its own pool).
  const int rank_threads = tp == 1 ? c.threads
                                   : std::max(1, (c.threads > 0 ? c.threads
                                                                : static_cast<int>(std::thread::hardware_concurrency())) / tp);
  I.backend = c.device == "cuda" ? make_cuda_backend({}) : make_cpu_backend({rank_threads});
  if (env_flag("TLLM_PROFILE"))
    I.backend = std::make_unique<ProfilingBackend>(std::move(I.backend));
  I.async = tp == 1 &&
            (c.async_scheduling == "on" || (c.async_scheduling == "auto" && I.backend->defers_sampling()));
  const bool pooling = c.runner == "pooling";
  std::optional<PoolingConfig> pool;
  if (pooling) {
    pool = PoolingConfig::resolve(c.model_dir, c.pooling_type, c.pooling_normalize);
    I.async = false;
  }
  if (c.speculative.enabled()) {
    check_speculative_config(config_.speculative);  // the defaults filled in
    I.async = false;
  }

  const int model_len = derived_max_model_len(mc);
  I.max_model_len = c.max_model_len > 0 ? c.max_model_len : model_len;
  TLLM_CHECK_ARG(I.max_model_len <= model_len, "max_model_len ", I.max_model_len,
                 " exceeds the model's context length ", model_len, " (max_position_embeddings ",
                 mc.max_position_embeddings, ", rope scaling ", rope_type_name(mc.rope_scaling.type), ")");
  const int max_batched = c.max_num_batched_tokens > 0 ? c.max_num_batched_tokens : (c.device == "cuda" ? 8192 : 512);

  ModelLoadOptions mo;
  mo.weight_dtype = resolve_weight_dtype(c.dtype, mc.dtype, c.device);
  mo.max_num_tokens = max_batched;
  mo.max_num_seqs = c.max_num_seqs;
  mo.max_model_len = I.max_model_len;
  mo.quantization = c.quantization;
  mo.quant_group_size = c.quant_group_size;
  TLLM_CHECK_ARG(c.load_format == "auto" || c.load_format == "safetensors" || c.load_format == "dummy",
                 "unknown load format \"", c.load_format, "\" (supported: auto, safetensors, dummy)");
  mo.dummy_weights = c.load_format == "dummy";
  mo.cuda_graphs = !c.enforce_eager;
  mo.pooling = pooling;
  const double load_t0 = now_seconds();
  std::unique_ptr<CausalLM> draft;
  try {
    if (tp > 1) {
      const std::string device = c.device;
      I.model = load_tensor_parallel(c.model_dir, mc, *I.backend, mo, tp, [device, rank_threads](int gpu) {
        return device == "cuda" ? make_cuda_backend({gpu}) : make_cpu_backend({rank_threads});
      });
      if (c.device == "cuda") TLLM_LOG(Info, "tensor parallelism: ", tp, " ranks on GPUs 0-", tp - 1);
      else TLLM_LOG(Info, "tensor parallelism: ", tp, " ranks of ", rank_threads, " CPU thread", rank_threads > 1 ? "s" : "");
    } else {
      I.model = load_model(c.model_dir, mc, *I.backend, mo);
    }
    I.vocab = mc.vocab_size;
    I.max_batched = max_batched;
    if (c.speculative.enabled() && !config_.speculative.ngram())
      draft = load_draft(config_, mc, mo, I.max_model_len, *I.backend);
  } catch (const HostOutOfMemory& e) {
    // Weights the machine cannot hold (a float32 copy of a bf16 checkpoint, dummy weights, a
    // model larger than the memory): the allocator refused them (core/allocator.h), and the
    // error says what to change, instead of the kernel's OOM killer ending the process.
    throw InvalidArgument(detail::concat(
        e.what(), " while loading the weights of ", c.model_dir, " as ", dtype_name(mo.weight_dtype),
        mo.quantization.empty() || mo.quantization == "none" ? "" : " (" + mo.quantization + ")",
        ": use --dtype bfloat16 (half the bytes of float32), --quantization int8 or int4, or a smaller model"));
  }
  const double load_s = now_seconds() - load_t0;

  DType kv_dtype = c.device == "cuda" ? DType::BF16 : DType::F32;
  if (c.kv_cache_dtype != "auto") kv_dtype = dtype_from_name(c.kv_cache_dtype);
  // A draft model's cache has the target's blocks (one block table addresses both).
  const size_t per_block = I.model->kv_bytes_per_block(c.block_size, kv_dtype) +
                           (draft ? KVCache::bytes_per_block(draft->config(), c.block_size, kv_dtype) : 0);
  const int64_t blocks_per_seq = (I.max_model_len + c.block_size - 1) / c.block_size;
  const int64_t max_useful = static_cast<int64_t>(c.max_num_seqs) * blocks_per_seq + 1;
  int64_t num_blocks = 0;
  if (c.num_kv_blocks > 0) {
    num_blocks = c.num_kv_blocks;
  } else if (c.device == "cuda") {
    auto [free_b, total_b] = I.backend->memory_info();
    const double budget = static_cast<double>(total_b) * c.gpu_memory_utilization - static_cast<double>(total_b - free_b);
    TLLM_CHECK_ARG(budget > static_cast<double>(per_block), "no GPU memory left for the KV cache: ",
                   free_b >> 20, " MiB free of ", total_b >> 20, " MiB with gpu_memory_utilization ",
                   c.gpu_memory_utilization);
    num_blocks = std::min<int64_t>(static_cast<int64_t>(budget / per_block), max_useful);
  } else {
    // Pages of the cache are touched as sequences fill it, so a cache the machine cannot hold
    // would be granted and end the process mid-serving: the default takes at most half of what
    // is available after the weights, and a larger --kv-cache-memory is refused.
    const size_t avail = host_memory_usable();
    size_t bytes = size_t{2} << 30;
    if (c.kv_cache_memory) {
      TLLM_CHECK_ARG(c.kv_cache_memory <= avail, "--kv-cache-memory ", c.kv_cache_memory >> 20, " MiB is more than the ",
                     avail >> 20, " MiB of memory available after the weights; lower it");
      bytes = c.kv_cache_memory;
    } else if (bytes > avail / 2) {
      bytes = avail / 2;
      TLLM_LOG(Warn, "KV cache: ", bytes >> 20, " MiB (half of the ", avail >> 20,
               " MiB of memory available after the weights) instead of the default 2048 MiB");
    }
    num_blocks = std::min<int64_t>(static_cast<int64_t>(bytes / per_block), max_useful);
  }
  TLLM_CHECK_ARG(num_blocks >= 1, "the KV cache budget holds no block of ", per_block, " bytes");
  if (num_blocks < blocks_per_seq) {
    // One sequence of max_model_len tokens would not fit. Asked for explicitly, that is an
    // error at start (as vLLM's); by default the context becomes what the cache holds, so that
    // /v1/models and every limit say what will actually be served.
    const int64_t fits = num_blocks * c.block_size;
    const char* more = c.device == "cuda" ? "--gpu-memory-utilization" : "--kv-cache-memory";
    TLLM_CHECK_ARG(c.max_model_len == 0, "max_model_len ", I.max_model_len, " is larger than the ", fits,
                   " tokens the KV cache holds (", num_blocks, " blocks of ", c.block_size, "): raise ", more,
                   " or --num-kv-blocks, or lower --max-model-len");
    TLLM_LOG(Warn, "max_model_len ", fits, " (the model allows ", I.max_model_len, "): the KV cache holds ", fits,
             " tokens; raise ", more, " or --num-kv-blocks for longer contexts");
    I.max_model_len = static_cast<int>(fits);
  }
  I.kv = I.model->allocate_kv_cache(static_cast<int>(num_blocks), c.block_size, kv_dtype);
  const SpeculativeConfig& spec = config_.speculative;
  if (draft) {
    KVCache dkv = KVCache::allocate(*I.backend, draft->config(), static_cast<int>(num_blocks), c.block_size, kv_dtype);
    TLLM_LOG(Info, "speculative decoding: draft model ", spec.model_dir, " (", draft->weight_bytes() >> 20,
             " MiB of weights), ", spec.num_tokens, " tokens per step");
    I.drafter = std::make_unique<DraftModelProposer>(std::move(draft), std::move(dkv), spec.num_tokens, max_batched);
  } else if (spec.enabled()) {
    TLLM_LOG(Info, "speculative decoding: n-gram lookup of ", spec.prompt_lookup_max, " down to ",
             spec.prompt_lookup_min, " tokens, ", spec.num_tokens, " tokens per step");
    I.drafter = std::make_unique<NgramProposer>(spec.num_tokens, spec.prompt_lookup_min, spec.prompt_lookup_max);
  }
  if (I.drafter) {
    I.spec_off_at = spec.disable_by_batch_size;
  }
  // Mean and first-token pooling need every token's hidden state: no cached prefixes there.
  I.blocks = std::make_unique<BlockManager>(static_cast<int>(num_blocks), c.block_size,
                                            c.enable_prefix_caching && !(pool && pool->needs_every_token()));
  if (pool) {
    I.pooler = std::make_unique<Pooler>(*pool, mc.hidden_size);
    TLLM_LOG(Info, "pooling model: ", pooling_type_name(pool->type), " token", pool->normalize ? ", normalised" : "");
  }
  SchedulerConfig sc;
  sc.max_num_seqs = c.max_num_seqs;
  sc.max_num_batched_tokens = max_batched;
  sc.max_model_len = I.max_model_len;
  I.scheduler = std::make_unique<Scheduler>(sc, *I.blocks);

  // Anything at that path (a broken link too) is loaded, so that its error names it.
  if (!c.skip_tokenizer_init && path_present((fs::path(c.model_dir) / "tokenizer.json").string())) {
    I.tokenizer = Tokenizer::load(c.model_dir);
    if (!c.chat_template.empty()) {
      I.chat = ChatTemplate::load_override(c.model_dir, c.chat_template);
    } else {
      bool has_template = fs::exists(fs::path(c.model_dir) / "chat_template.jinja");
      const fs::path tc = fs::path(c.model_dir) / "tokenizer_config.json";
      if (!has_template && fs::exists(tc)) {
        std::ifstream f(tc);
        auto j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
        has_template = j.is_object() && j.contains("chat_template") && !j["chat_template"].is_null();
      }
      if (has_template) I.chat = ChatTemplate::load(c.model_dir);
    }
  }
  TLLM_CHECK_ARG(c.chat_template.empty() || I.chat, "--chat-template needs the model's tokenizer (",
                 c.skip_tokenizer_init ? "--skip-tokenizer-init is given" : "no tokenizer.json in the model directory",
                 ")");
  for (int id : I.gen.eos_token_ids) I.eos_ids.insert(id);
  for (int id : mc.eos_token_ids) I.eos_ids.insert(id);
  I.counters.num_kv_blocks = static_cast<int>(num_blocks);
  char took[32];
  std::snprintf(took, sizeof(took), "%.1f", load_s);
  TLLM_LOG(Info, "loaded ", mc.architecture, " from ", c.model_dir, " on ", I.backend->name(), " in ", took,
           " s: ", I.model->weight_bytes() >> 20, " MiB of weights (",
           mo.quantization.empty() || mo.quantization == "none" ? dtype_name(mo.weight_dtype) : mo.quantization.c_str(),
           "), KV cache ",
           num_blocks, " blocks x ", c.block_size, " tokens (", (num_blocks * per_block) >> 20, " MiB ",
           dtype_name(kv_dtype), ")");
}

LLMEngine::~LLMEngine() = default;

const ModelConfig& LLMEngine::model_config() const { return impl_->model->config(); }
const GenerationConfig& LLMEngine::generation_config() const { return impl_->gen; }
const Tokenizer* LLMEngine::tokenizer() const { return impl_->tokenizer.get(); }
const ChatTemplate* LLMEngine::chat_template() const { return impl_->chat.get(); }
int LLMEngine::max_model_len() const { return impl_->max_model_len; }
int LLMEngine::vocab_size() const { return impl_->vocab; }
std::vector<int32_t> LLMEngine::eos_token_ids() const { return {impl_->eos_ids.begin(), impl_->eos_ids.end()}; }
std::string LLMEngine::backend_name() const { return impl_->backend->name(); }
bool LLMEngine::has_unfinished_requests() const {
  return impl_->scheduler->has_unfinished() || !impl_->pending.empty() || impl_->in_flight != nullptr;
}

void LLMEngine::check_request(const std::string& id, const std::vector<int32_t>& prompt,
                              const SamplingParams& params) const {
  const Impl& I = *impl_;
  TLLM_CHECK_ARG(!prompt.empty(), "request ", id, ": the prompt is empty");
  params.validate(I.vocab);
  for (int32_t t : prompt)
    TLLM_CHECK_ARG(t >= 0 && t < I.vocab, "request ", id, ": token id ", t, " is outside the vocabulary [0, ",
                   I.vocab, ")");
  if (I.pooler) {  // a pooling request computes its prompt only
    TLLM_CHECK_ARG(static_cast<int64_t>(prompt.size()) <= I.max_model_len, "This model's maximum context length is ",
                   I.max_model_len, " tokens. However, you requested ", prompt.size(),
                   " tokens in the input. Please reduce the input.");
  } else {
    const int64_t total = static_cast<int64_t>(prompt.size()) + params.max_tokens;
    TLLM_CHECK_ARG(total <= I.max_model_len, "This model's maximum context length is ", I.max_model_len,
                   " tokens. However, you requested ", total, " tokens (", prompt.size(), " in the prompt, ",
                   params.max_tokens, " for the completion). Please reduce the prompt or max_tokens.");
  }
  if (!params.stop.empty() && params.detokenize)
    TLLM_CHECK_ARG(I.tokenizer != nullptr, "stop strings need a tokenizer, and this model has none");
  if (!params.allowed_token_ids.empty() && params.min_tokens > 0) {
    // Before min_tokens the ids that end a sequence are banned: something else must be allowed.
    const std::vector<int32_t> ends = I.end_ids(params);
    const bool other = std::any_of(params.allowed_token_ids.begin(), params.allowed_token_ids.end(),
                                   [&](int32_t t) { return std::find(ends.begin(), ends.end(), t) == ends.end(); });
    TLLM_CHECK_FIELD(other, "allowed_token_ids", "allowed_token_ids: every allowed token ends the sequence, but "
                     "min_tokens is ", params.min_tokens);
  } else if (params.min_tokens > 0 && static_cast<int64_t>(params.stop_token_ids.size() + I.eos_ids.size()) >= I.vocab) {
    // The same when the end ids are the whole vocabulary (stop_token_ids listing every id).
    std::vector<int32_t> ends = I.end_ids(params);
    std::sort(ends.begin(), ends.end());
    ends.erase(std::unique(ends.begin(), ends.end()), ends.end());
    const auto in = std::count_if(ends.begin(), ends.end(), [&](int32_t t) { return t >= 0 && t < I.vocab; });
    TLLM_CHECK_FIELD(in < I.vocab, "stop_token_ids",
                     "stop_token_ids: every token of the vocabulary ends the sequence, but min_tokens is ",
                     params.min_tokens);
  }
  if (!params.output_format.empty())
    TLLM_CHECK_ARG(I.tokenizer != nullptr, "request ", id,
                   ": structured output (JSON mode, forced tool calls) needs the model's tokenizer, and it has none");
}

void LLMEngine::add_request(const std::string& id, std::vector<int32_t> prompt, const SamplingParams& params) {
  Impl& I = *impl_;
  check_request(id, prompt, params);
  TLLM_CHECK_ARG(!I.states.count(id), "duplicate request id \"", id, "\"");

  auto seq = std::make_unique<Sequence>();
  seq->id = id;
  seq->num_prompt_tokens = static_cast<int>(prompt.size());
  seq->tokens = std::move(prompt);
  seq->params = params;
  seq->seed = params.seed ? *params.seed : I.seed_rng();
  seq->queued_time = now_seconds();

  RequestState st;
  if (I.tokenizer && params.detokenize) {
    st.detok = std::make_unique<IncrementalDetokenizer>(*I.tokenizer, params.skip_special_tokens);
    // The stream continues the prompt (a SentencePiece decoder keeps the first word's space).
    const size_t n = seq->tokens.size(), k = std::min<size_t>(n, 5);
    st.detok->prime(std::span<const int32_t>(seq->tokens).subspan(n - k));
  }
  for (const std::string& s : params.stop) st.max_stop_len = std::max(st.max_stop_len, s.size());
  if (params.repetition_penalty != 1.0f) {
    st.prompt_unique = seq->tokens;
    std::sort(st.prompt_unique.begin(), st.prompt_unique.end());
    st.prompt_unique.erase(std::unique(st.prompt_unique.begin(), st.prompt_unique.end()), st.prompt_unique.end());
  }
  if (params.prompt_logprobs >= 0) {
    st.prompt_logprobs.assign(seq->num_prompt_tokens, std::nullopt);
  }
  if (!params.output_format.empty()) {
    if (!I.output_filter) I.output_filter = std::make_unique<OutputFilter>(*I.tokenizer, I.vocab);
    st.format.emplace(&seq->params.output_format);  // the Sequence keeps its params at one address
  }
  I.states.emplace(id, std::move(st));
  I.counters.prompt_tokens_total += seq->num_prompt_tokens;
  I.scheduler->add(std::move(seq));
}

void LLMEngine::abort_request(const std::string& id) {
  Impl& I = *impl_;
  Sequence* q = I.scheduler->find(id);
  if (!q || I.zombies.count(q)) return;
  RequestOutput out;
  out.request_id = id;
  out.finished = true;
  out.finish_reason = FinishReason::Abort;
  out.queued_time = q->queued_time;
  out.scheduled_time = q->scheduled_time;
  out.num_prompt_tokens = q->num_prompt_tokens;
  out.num_cached_tokens = q->num_cached_tokens;
  int pending = 0;  // drawn tokens the host has not seen (async scheduling)
  for (int i = q->num_tokens() - 1; i >= q->num_prompt_tokens && q->tokens[i] < 0; --i) ++pending;
  out.num_output_tokens = q->num_output_tokens() - pending;
  I.states.erase(id);
  if (I.pooler) I.pooler->drop(id);
  if (I.in_flight && I.in_flight->references(q)) {
    q->hold = true;  // an in-flight step still writes its cache: removed when that step resolves
    I.zombies.insert(q);
  } else {
    I.scheduler->remove(id);
  }
  I.pending.push_back(std::move(out));
}

EngineStats LLMEngine::stats() const {
  const Impl& I = *impl_;
  EngineStats s = I.counters;
  s.num_running = I.scheduler->num_running();
  s.num_waiting = I.scheduler->num_waiting();
  s.num_cached_free_blocks = I.blocks->num_cached_free_blocks();
  s.num_free_kv_blocks = I.blocks->num_free_blocks() - s.num_cached_free_blocks;
  s.prefix_cache_queries = I.blocks->prefix_queries();
  s.prefix_cache_hits = I.blocks->prefix_hits();
  s.num_preemptions = I.scheduler->num_preemptions();
  return s;
}

void LLMEngine::Impl::process_sampled(Sequence& q, RequestState& st, int32_t token, const SampleResult& sr,
                                      int row, std::vector<RequestOutput>& outputs, int index) {
  const SamplingParams& p = q.params;
  RequestOutput out;
  out.request_id = q.id;
  out.queued_time = q.queued_time;
  out.scheduled_time = q.scheduled_time;
  out.num_prompt_tokens = q.num_prompt_tokens;
  out.num_cached_tokens = q.num_cached_tokens;
  const bool over_budget = st.format && mask_budget.spent(st);
  if (token < 0 || token >= vocab || over_budget) {
    // The draw had no token to give: every one was banned (a structured output that no token
    // can continue, as a grammar whose kept parses all dead-end might leave); or the request's
    // structured output costs the engine loop too much. This request ends with an error; the
    // others in the batch go on.
    out.num_output_tokens = (index >= 0 ? index : q.num_tokens()) - q.num_prompt_tokens;
    out.finished = true;
    out.error = over_budget
                    ? detail::concat("structured output stopped: its token masks took ", st.mask_seconds, " s for ",
                                     st.masks, " tokens (the limit is ", mask_budget.mean * 1e3,
                                     " ms per token past ", mask_budget.total, " s); the grammar or schema is too "
                                     "ambiguous to follow at this vocabulary's size")
                    : "no token may come next: the sampling constraints (structured output, allowed or banned "
                      "tokens) exclude the whole vocabulary here, or the model's logits have no finite value "
                      "(NaN or -inf everywhere: its weights or activations overflow)";
    outputs.push_back(std::move(out));
    return;
  }
  if (index >= 0) {
    q.tokens[index] = token;
  } else {
    q.tokens.push_back(token);
    index = q.num_tokens() - 1;
  }
  ++st.output_counts[token];
  ++counters.generation_tokens_total;
  // Structured output: the filter let through only tokens whose bytes the recognizer takes, and end ids.
  if (st.format) st.format->feed(output_filter->bytes(token));
  const int n_out = index + 1 - q.num_prompt_tokens;

  out.new_token_ids.push_back(token);
  out.token_time = now_seconds();
  if (p.logprobs >= 0) out.new_logprobs.push_back({token, sr.logprobs[row], sr.top_logprobs[row]});
  if (!st.sent_first && p.prompt_logprobs >= 0) {
    out.prompt_logprobs = std::move(st.prompt_logprobs);
    q.prompt_logprobs_sent = true;
  }
  st.sent_first = true;

  FinishReason reason = FinishReason::None;
  std::optional<std::variant<std::string, int32_t>> stop_reason;
  bool stopped_by_string = false;
  const bool closed = st.format && format_closed(p, *st.format);
  const bool past_min = n_out >= p.min_tokens || closed;
  if (past_min && (!p.ignore_eos || closed) && eos_ids.count(token)) {
    reason = FinishReason::Stop;
  } else if (past_min && std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), token) != p.stop_token_ids.end()) {
    reason = FinishReason::Stop;
    stop_reason = token;
  } else if (st.detok) {
    st.held += st.detok->push(token);
    if (past_min && !p.stop.empty()) {
      size_t best = std::string::npos;
      const std::string* which = nullptr;
      for (const std::string& s : p.stop) {
        size_t pos = st.held.find(s);
        if (pos != std::string::npos && (best == std::string::npos || pos < best)) {
          best = pos;
          which = &s;
        }
      }
      if (which) {
        out.new_text = st.held.substr(0, best + (p.include_stop_str_in_output ? which->size() : 0));
        st.held.clear();
        reason = FinishReason::Stop;
        stop_reason = *which;
        stopped_by_string = true;
      }
    }
  }
  if (reason == FinishReason::None && reaches_length(q, index + 1)) reason = FinishReason::Length;

  if (st.detok && !stopped_by_string) {
    if (reason != FinishReason::None) {
      st.held += st.detok->flush();
      out.new_text = std::move(st.held);
      st.held.clear();
    } else {
      const size_t keep = st.max_stop_len > 0 ? st.max_stop_len - 1 : 0;
      const size_t cut = utf8_cut(st.held, st.held.size() > keep ? st.held.size() - keep : 0);
      out.new_text = st.held.substr(0, cut);
      st.held.erase(0, cut);
    }
  }
  out.num_output_tokens = n_out;
  if (reason != FinishReason::None) {
    out.finished = true;
    out.finish_reason = reason;
    out.stop_reason = stop_reason;
  }
  outputs.push_back(std::move(out));
}

void LLMEngine::Impl::build_batch(const SchedulerOutput& so, ForwardBatch& fb, std::vector<int>& sampling,
                                  std::vector<PromptRow>& prompt_rows, int ticket,
                                  const std::vector<std::vector<int32_t>>* drafts, std::vector<int>* ahead) const {
  const auto num_drafts = [&](size_t i) { return drafts ? static_cast<int>((*drafts)[i].size()) : 0; };
  // Flat batch: every scheduled sequence's new tokens, back to back.
  const int bs = blocks->block_size();
  fb.max_blocks_per_seq = 1;
  for (const ScheduledSequence& s : so.scheduled)
    fb.max_blocks_per_seq = std::max<int>(fb.max_blocks_per_seq, static_cast<int>(s.seq->block_table.size()));
  fb.cu_seqlens_q.push_back(0);
  for (size_t i = 0; i < so.scheduled.size(); ++i) {
    const ScheduledSequence& s = so.scheduled[i];
    const Sequence& q = *s.seq;
    for (int t = s.first_token; t < s.first_token + s.num_new_tokens; ++t) {
      const int32_t tok = q.tokens[t];
      if (tok < 0) {  // drawn by the step in flight, not seen yet: fed on the device
        TLLM_ASSERT(ticket >= 0);
        if (fb.feed_rows.empty()) fb.feed_rows.assign(fb.tokens.size(), -1);
        fb.feed_rows.push_back(-1 - tok);
        fb.feed_ticket = ticket;
      } else if (!fb.feed_rows.empty()) {
        fb.feed_rows.push_back(-1);
      }
      fb.tokens.push_back(tok < 0 ? 0 : tok);
      fb.positions.push_back(t);
      fb.slot_mapping.push_back(q.slot(t, bs));
    }
    const int d = num_drafts(i);
    for (int j = 0; j < d; ++j) {  // speculative decoding: the drafts follow the sequence's last token
      const int t = s.first_token + s.num_new_tokens + j;
      TLLM_ASSERT(fb.feed_rows.empty());
      fb.tokens.push_back((*drafts)[i][j]);
      fb.positions.push_back(t);
      fb.slot_mapping.push_back(q.slot(t, bs));
    }
    fb.cu_seqlens_q.push_back(static_cast<int32_t>(fb.tokens.size()));
    fb.seq_lens_k.push_back(s.first_token + s.num_new_tokens + d);
    for (int i = 0; i < fb.max_blocks_per_seq; ++i)
      fb.block_tables.push_back(i < static_cast<int>(q.block_table.size()) ? q.block_table[i] : 0);
  }
  // Logits rows: first the rows that sample, then prompt-logprob rows.
  for (size_t i = 0; i < so.scheduled.size(); ++i) {
    if (!so.scheduled[i].samples()) continue;
    const int d = num_drafts(i);
    for (int j = 0; j <= d; ++j) {  // the last token's row, then each draft's
      fb.logits_indices.push_back(fb.cu_seqlens_q[i + 1] - 1 - d + j);
      sampling.push_back(static_cast<int>(i));
      if (ahead) ahead->push_back(j);
    }
  }
  for (size_t i = 0; i < so.scheduled.size(); ++i) {
    const ScheduledSequence& s = so.scheduled[i];
    if (!s.seq->wants_prompt_logprobs()) continue;
    const int end = std::min(s.first_token + s.num_new_tokens, s.seq->num_prompt_tokens - 1);
    for (int p = s.first_token; p < end; ++p) {
      fb.logits_indices.push_back(fb.cu_seqlens_q[i] + (p - s.first_token));
      prompt_rows.push_back({s.seq, p});
    }
  }
}

void LLMEngine::Impl::record_prompt_logprobs(const Tensor& logits, int R, const std::vector<PromptRow>& prompt_rows) {
  if (prompt_rows.empty()) return;
  Tensor lp = backend->log_softmax_to_host(logits.slice_rows(R, R + static_cast<int64_t>(prompt_rows.size())));
  const int64_t V = lp.dim(1);
  for (size_t r = 0; r < prompt_rows.size(); ++r) {
    Sequence& q = *prompt_rows[r].seq;
    const int p = prompt_rows[r].position;
    const float* row = lp.data<float>() + static_cast<int64_t>(r) * V;
    const int32_t next = q.tokens[p + 1];
    int32_t above = 0;
    for (int64_t v = 0; v < V; ++v) above += row[v] > row[next];
    states.at(q.id).prompt_logprobs[p + 1] =
        TokenLogprob{next, row[next], top_n(row, V, q.params.prompt_logprobs), above + 1};
  }
}

SampleBatch LLMEngine::Impl::build_sample_batch(const SchedulerOutput& so, const std::vector<int>& sampling) const {
  std::vector<const Sequence*> rows;
  for (int i : sampling) rows.push_back(so.scheduled[i].seq);
  return sample_rows(rows, std::vector<int>(rows.size(), 0), std::vector<const std::vector<int32_t>*>(rows.size()), vocab);
}

SampleBatch LLMEngine::Impl::sample_rows(const std::vector<const Sequence*>& seqs, const std::vector<int>& ahead,
                                         const std::vector<const std::vector<int32_t>*>& drafts, int row_vocab) const {
  SampleBatch sb;
  bool any_penalty = false, any_ban = false, any_bias = false;
  const auto in_vocab = [&](int32_t t) { return t < row_vocab; };
  for (size_t k = 0; k < seqs.size(); ++k) {
    const Sequence& q = *seqs[k];
    const SamplingParams& p = q.params;
    TLLM_ASSERT(ahead[k] == 0 || (drafts[k] && static_cast<int>(drafts[k]->size()) >= ahead[k]));
    const int n_out = q.num_output_tokens() + ahead[k];
    SamplingRow row;
    row.temperature = p.temperature;
    row.top_k = p.top_k;
    row.top_p = p.top_p;
    row.min_p = p.min_p;
    row.repetition_penalty = p.repetition_penalty;
    row.presence_penalty = p.presence_penalty;
    row.frequency_penalty = p.frequency_penalty;
    row.seed = q.seed;
    row.offset = static_cast<uint64_t>(n_out);
    row.num_top_logprobs = std::max(0, p.logprobs);
    sb.rows.push_back(row);
    any_penalty |= p.has_penalties();
    any_ban |= n_out < p.min_tokens || !p.output_format.empty() || !p.allowed_token_ids.empty() ||
               !p.bad_words_ids.empty();
    any_bias |= !p.logit_bias.empty();
  }
  if (any_penalty) {
    sb.penalty_offsets.push_back(0);
    for (size_t k = 0; k < seqs.size(); ++k) {
      const Sequence& q = *seqs[k];
      const RequestState& st = states.at(q.id);
      if (q.params.has_penalties()) {
        std::unordered_map<int32_t, int> counts = st.output_counts;
        for (int j = 0; j < ahead[k]; ++j) ++counts[(*drafts[k])[j]];
        for (int32_t t : st.prompt_unique) counts.emplace(t, 0);
        for (auto& [t, c] : counts) {
          if (!in_vocab(t)) continue;  // a draft's smaller vocabulary has no logit for it
          sb.penalty_tokens.push_back(t);
          sb.penalty_counts.push_back(c);
        }
      }
      sb.penalty_offsets.push_back(static_cast<int32_t>(sb.penalty_tokens.size()));
    }
  }
  if (any_ban) {
    sb.banned_offsets.push_back(0);
    for (size_t k = 0; k < seqs.size(); ++k) {
      const Sequence& q = *seqs[k];
      const SamplingParams& p = q.params;
      const FormatPrefix* format = p.output_format.empty() ? nullptr : &*states.at(q.id).format;
      std::optional<FormatPrefix> after;  // the format's state after the drafts before this row
      if (format && ahead[k] > 0) {
        after = *format;
        for (int j = 0; j < ahead[k] && format; ++j)
          if (!after->feed(output_filter->bytes((*drafts[k])[j]))) format = nullptr;
        if (!format) {
          // A draft model's draft the format refuses (drawn where every allowed id lies outside
          // its vocabulary): nothing may follow it; the engine cuts it before verification.
          sb.rows[k].allow_only = true;
          sb.banned_offsets.push_back(static_cast<int32_t>(sb.banned_tokens.size()));
          continue;
        }
        format = &*after;
      }
      // Nothing may end the sequence before min_tokens, nor a structured one before it is complete.
      bool may_end = q.num_output_tokens() + ahead[k] >= p.min_tokens && (!format || format->complete());
      const bool closed = format && format_closed(p, *format);
      may_end |= closed;
      std::vector<int32_t> bad =
          bad_word_bans(p.bad_words_ids, q.tokens.data() + q.num_prompt_tokens, q.num_output_tokens(),
                        ahead[k] > 0 ? drafts[k]->data() : nullptr, static_cast<size_t>(ahead[k]));
      bad.erase(std::remove_if(bad.begin(), bad.end(), [&](int32_t t) { return !in_vocab(t); }), bad.end());
      const auto is_bad = [&](int32_t t) { return std::find(bad.begin(), bad.end(), t) != bad.end(); };
      const size_t row_begin = sb.banned_tokens.size();
      // The ids that end it, in this row's vocabulary.
      std::vector<int32_t> ends = end_ids(p);
      if (closed) ends.insert(ends.end(), eos_ids.begin(), eos_ids.end());
      ends.erase(std::remove_if(ends.begin(), ends.end(), [&](int32_t t) { return !in_vocab(t); }), ends.end());
      const auto is_end = [&](int32_t t) { return std::find(ends.begin(), ends.end(), t) != ends.end(); };
      if (!p.allowed_token_ids.empty()) {
        sb.rows[k].allow_only = true;
        for (int32_t t : p.allowed_token_ids)
          if (in_vocab(t) && (may_end || !is_end(t))) sb.banned_tokens.push_back(t);
      } else if (!format) {
        if (!may_end) sb.banned_tokens.insert(sb.banned_tokens.end(), ends.begin(), ends.end());
      } else {
        // The filter never lets special tokens through; end ids are added here once they may come.
        const RequestState& st = states.at(q.id);
        const double t0 = now_seconds();
        const TokenSet& next = output_filter->next(*format);
        st.mask_seconds += now_seconds() - t0;
        ++st.masks;
        if (next.allowed) {
          sb.rows[k].allow_only = true;
          for (int32_t t : next.ids)
            if (in_vocab(t) && (may_end || !is_end(t))) sb.banned_tokens.push_back(t);
          if (may_end)
            for (int32_t t : ends)
              if (!next.contains(t)) sb.banned_tokens.push_back(t);
        } else {
          for (int32_t t : next.ids)
            if (in_vocab(t) && (!may_end || !is_end(t))) sb.banned_tokens.push_back(t);
          if (!may_end) sb.banned_tokens.insert(sb.banned_tokens.end(), ends.begin(), ends.end());
        }
      }
      if (!bad.empty()) {
        if (!sb.rows[k].allow_only) {
          sb.banned_tokens.insert(sb.banned_tokens.end(), bad.begin(), bad.end());
        } else {
          // Take the bad words' tokens out of the allowed list, unless nothing would be left.
          const auto first = sb.banned_tokens.begin() + static_cast<std::ptrdiff_t>(row_begin);
          const bool some_left = std::any_of(first, sb.banned_tokens.end(), [&](int32_t t) { return !is_bad(t); });
          if (some_left) sb.banned_tokens.erase(std::remove_if(first, sb.banned_tokens.end(), is_bad), sb.banned_tokens.end());
        }
      }
      sb.banned_offsets.push_back(static_cast<int32_t>(sb.banned_tokens.size()));
    }
  }
  if (any_bias) {
    sb.bias_offsets.push_back(0);
    for (const Sequence* q : seqs) {
      for (const auto& [tok, bias] : q->params.logit_bias) {
        if (!in_vocab(tok)) continue;
        sb.bias_tokens.push_back(tok);
        sb.bias_values.push_back(bias);
      }
      sb.bias_offsets.push_back(static_cast<int32_t>(sb.bias_tokens.size()));
    }
  }
  return sb;
}

void LLMEngine::Impl::finish(Sequence& q) {
  const std::string id = q.id;
  zombies.erase(&q);
  scheduler->remove(id);  // frees its blocks now; full blocks stay in the prefix cache
  states.erase(id);
}

std::vector<RequestOutput> LLMEngine::step() {
  Impl& I = *impl_;
  if (I.async) return I.step_async();
  if (I.drafter) return I.step_speculative();
  if (I.pooler) return I.step_pooling();
  double t[StepTiming::kPhases + 1] = {I.timing.enabled() ? now_seconds() : 0.0};
  std::vector<RequestOutput> outputs = std::move(I.pending);
  I.pending.clear();
  SchedulerOutput so = I.schedule();
  if (so.empty()) return outputs;

  ForwardBatch fb;
  std::vector<int> sampling;  // indices into so.scheduled
  std::vector<Impl::PromptRow> prompt_rows;
  I.build_batch(so, fb, sampling, prompt_rows, -1);

  if (I.timing.enabled()) t[1] = now_seconds();
  Tensor logits = I.model->forward(fb, I.kv);
  if (I.timing.enabled()) t[2] = now_seconds();
  I.scheduler->update_after_step(so);

  const int R = static_cast<int>(sampling.size());
  I.record_prompt_logprobs(logits, R, prompt_rows);
  if (R == 0) return outputs;

  const SampleBatch batch = I.build_sample_batch(so, sampling);
  SampleResult sr = I.backend->sample(logits.slice_rows(0, R), batch);
  I.check_draw(sr, batch);
  if (I.timing.enabled()) t[3] = now_seconds();

  for (int r = 0; r < R; ++r) {
    Sequence& q = *so.scheduled[sampling[r]].seq;
    RequestState& st = I.states.at(q.id);
    I.process_sampled(q, st, sr.tokens[r], sr, r, outputs);
    if (outputs.back().finished) I.finish(q);
  }
  if (I.timing.enabled()) {
    t[4] = now_seconds();
    I.timing.add(t, R);
  }
  return outputs;
}

void LLMEngine::Impl::cut_to_format(const Sequence& q, std::vector<int32_t>& d) const {
  if (q.params.output_format.empty()) return;
  FormatPrefix f = *states.at(q.id).format;
  for (size_t j = 0; j < d.size(); ++j) {
    // The filter's set leaves out end ids: a draft that would end the sequence is cut too.
    if (!output_filter->next(f).contains(d[j]) || !f.feed(output_filter->bytes(d[j]))) {
      d.resize(j);
      return;
    }
  }
}

// A step with drafts (engine/speculative.h). Every decoding sequence gets up to k drafts,
// within max_tokens, the context and the step's token budget, and blocks for them (drafts of
// a structured output are cut at the first one its format refuses); the target computes the
// batch with every draft after its sequence's last token and draws at every one of those
// positions as a plain decode would after the drafts before it (offset, penalty counts,
// structured output's state). A sequence keeps the drafts up to the first that differs from
// the target's draw there, then that draw.
std::vector<RequestOutput> LLMEngine::Impl::step_speculative() {
  std::vector<RequestOutput> outputs = std::move(pending);
  pending.clear();
  SchedulerOutput so = schedule();
  if (so.empty()) return outputs;

  std::vector<std::vector<int32_t>> drafts(so.scheduled.size());
  std::vector<Proposer::Item> items;
  std::vector<size_t> item_index;
  int room = max_batched - so.num_batched_tokens;
  if (spec_off_at > 0 && scheduler->num_running() >= spec_off_at) room = 0;  // decode plainly
  for (size_t i = 0; i < so.scheduled.size() && room > 0; ++i) {
    const ScheduledSequence& s = so.scheduled[i];
    Sequence& q = *s.seq;
    if (!s.samples() || s.num_new_tokens != 1) continue;
    // The verified tokens and the target's own after them stay within max_tokens and the context.
    const int m = std::min({drafter->num_tokens(), q.params.max_tokens - q.num_output_tokens() - 1,
                            max_model_len - q.num_tokens() - 1, room});
    if (m <= 0 || !blocks->allocate(q, 1 + m)) continue;
    room -= m;
    items.push_back({&q, m});
    item_index.push_back(i);
  }
  if (!items.empty()) {
    std::vector<std::vector<int32_t>> d = drafter->propose(
        items,
        [&](const std::vector<const Sequence*>& rows, const std::vector<int>& ahead,
            const std::vector<const std::vector<int32_t>*>& before, int v) { return sample_rows(rows, ahead, before, v); },
        vocab);
    for (size_t j = 0; j < items.size(); ++j) {
      cut_to_format(*items[j].seq, d[j]);
      drafts[item_index[j]] = std::move(d[j]);
    }
  }

  ForwardBatch fb;
  std::vector<int> sampling, ahead;
  std::vector<PromptRow> prompt_rows;
  build_batch(so, fb, sampling, prompt_rows, -1, &drafts, &ahead);
  Tensor logits = model->forward(fb, kv);
  scheduler->update_after_step(so);
  const int R = static_cast<int>(sampling.size());
  record_prompt_logprobs(logits, R, prompt_rows);
  if (R == 0) return outputs;
  std::vector<const Sequence*> rows;
  std::vector<const std::vector<int32_t>*> before;
  for (int i : sampling) rows.push_back(so.scheduled[i].seq), before.push_back(&drafts[i]);
  const SampleBatch batch = sample_rows(rows, ahead, before, vocab);
  SampleResult sr = backend->sample(logits.slice_rows(0, R), batch);
  check_draw(sr, batch);

  for (int r0 = 0; r0 < R;) {
    const size_t i = static_cast<size_t>(sampling[r0]);
    Sequence& q = *so.scheduled[i].seq;
    RequestState& st = states.at(q.id);
    const std::vector<int32_t>& dq = drafts[i];
    const int d = static_cast<int>(dq.size());
    int a = 0;  // drafts the target drew too
    while (a < d && sr.tokens[r0 + a] == dq[a]) ++a;
    if (d > 0) {
      ++counters.spec_num_drafts;
      counters.spec_num_draft_tokens += static_cast<uint64_t>(d);
      counters.spec_num_accepted_tokens += static_cast<uint64_t>(a);
    }
    // One output per token, as a plain decode's, up to the one that finishes the request.
    bool finished = false;
    int emitted = 0;
    while (emitted <= a && !finished) {
      process_sampled(q, st, sr.tokens[r0 + emitted], sr, r0 + emitted, outputs);
      finished = outputs.back().finished;
      ++emitted;
    }
    if (emitted > 1) {
      // The target's K/V of the kept drafts before the last token emitted (the prefix cache
      // then holds what a plain decode's would).
      q.num_computed_tokens += emitted - 1;
      blocks->commit_computed(q);
    }
    if (finished) {
      finish(q);
    } else if (d > 0) {
      drafter->accepted(q, d, a);
    }
    r0 += d + 1;
  }
  return outputs;
}

// A step of a pooling model: the scheduled prefill chunks, with the hidden-state rows the
// pooling needs (every row for mean, the prompt's first for cls, its last for last); a
// sequence whose prompt is complete gets its vector and finishes.
std::vector<RequestOutput> LLMEngine::Impl::step_pooling() {
  std::vector<RequestOutput> outputs = std::move(pending);
  pending.clear();
  SchedulerOutput so = schedule();
  // A preempted prompt is recomputed from its first token. (Prefill alone rarely preempts: a
  // running prompt takes the step's budget before any other is admitted.)
  for (const Sequence* q : so.preempted) pooler->drop(q->id);
  if (so.empty()) return outputs;
  ForwardBatch fb;
  std::vector<int> last;  // scheduled sequences whose prompt this step completes
  std::vector<PromptRow> unused;
  build_batch(so, fb, last, unused, -1);
  struct Rows {
    const Sequence* seq;
    int first, count, row;  // positions [first, first + count) are hidden rows [row, row + count)
  };
  std::vector<Rows> rows;
  fb.logits_indices.clear();
  const PoolingType type = pooler->config().type;
  for (size_t i = 0; i < so.scheduled.size(); ++i) {
    const ScheduledSequence& s = so.scheduled[i];
    int first = s.first_token, count = s.num_new_tokens;
    if (type == PoolingType::Last) first = s.first_token + s.num_new_tokens - 1, count = s.samples() ? 1 : 0;
    if (type == PoolingType::Cls) count = s.first_token == 0 ? 1 : 0;
    if (count == 0) continue;
    rows.push_back({s.seq, first, count, static_cast<int>(fb.logits_indices.size())});
    for (int t = first; t < first + count; ++t) fb.logits_indices.push_back(fb.cu_seqlens_q[i] + (t - s.first_token));
  }
  Tensor hidden;
  if (fb.logits_indices.empty()) {
    fb.logits_indices.push_back(0);  // a forward returns at least one row
    model->forward(fb, kv);
  } else {
    hidden = model->forward(fb, kv);
  }
  scheduler->update_after_step(so);
  if (hidden.defined()) {
    const Tensor host = backend->download(hidden);
    std::vector<float> f32(static_cast<size_t>(host.numel()));
    host_to_f32(host, f32.data());  // the activation dtype (bf16 on CUDA)
    for (const Rows& r : rows)
      pooler->add(r.seq->id, r.first, f32.data() + static_cast<int64_t>(r.row) * host.dim(1), r.count);
  }
  for (int i : last) {
    Sequence& q = *so.scheduled[i].seq;
    RequestOutput out;
    out.request_id = q.id;
    out.queued_time = q.queued_time;
    out.scheduled_time = q.scheduled_time;
    out.embedding = pooler->finish(q.id, q.num_prompt_tokens, q.params.normalize);
    out.finished = true;
    out.finish_reason = FinishReason::Stop;
    if (!std::all_of(out.embedding.begin(), out.embedding.end(), [](float v) { return std::isfinite(v); })) {
      // A vector with NaN or inf in it (weights or activations that overflow) ranks and scores
      // nothing: the request fails, naming why (the server's JSON would write -9999 for them).
      out.embedding.clear();
      out.error = "the model's pooled vector has values that are not finite (NaN or inf): its weights or "
                  "activations overflow";
    }
    out.num_prompt_tokens = q.num_prompt_tokens;
    out.num_cached_tokens = q.num_cached_tokens;
    outputs.push_back(std::move(out));
    finish(q);
  }
  return outputs;
}

// Async scheduling. The step launched by the previous call (in_flight) has drawn its tokens
// on the device; this call schedules and launches the next step first, its inputs fed from
// that draw, and only then collects the draw and processes it, so the host's work overlaps
// the next forward. Sequences sampled in flight carry placeholders in `tokens` until then.
std::vector<RequestOutput> LLMEngine::Impl::step_async() {
  std::vector<RequestOutput> outputs = std::move(pending);
  pending.clear();
  std::unique_ptr<Launched> prev = std::move(in_flight);
  // Penalty counts and structured output's filter need the previous token on the host before
  // the next draw: that draw is built once the previous one is resolved, after the next
  // forward is queued (the device runs it while the host resolves and filters).
  bool host_first = false;
  if (prev)
    for (int i : prev->sampling) host_first |= prev->so.scheduled[i].seq->params.needs_previous_token();
  std::unique_ptr<Launched> next = launch(prev ? prev->ticket : -1, host_first ? prev.get() : nullptr, outputs);
  if (prev && !host_first) resolve(*prev, next.get(), outputs);
  if (next) {
    scheduler->update_after_step(next->so);  // after resolve: full blocks are hashed with real tokens
    if (!next->sampling.empty()) in_flight = std::move(next);
  }
  return outputs;
}

std::unique_ptr<LLMEngine::Impl::Launched> LLMEngine::Impl::launch(int feed_ticket, Launched* resolve_first,
                                                                   std::vector<RequestOutput>& outputs) {
  SchedulerOutput so = schedule();
  if (so.empty()) {
    if (resolve_first) resolve(*resolve_first, nullptr, outputs);
    return nullptr;
  }
  auto L = std::make_unique<Launched>();
  L->so = std::move(so);
  ForwardBatch fb;
  std::vector<PromptRow> prompt_rows;
  build_batch(L->so, fb, L->sampling, prompt_rows, feed_ticket);
  Tensor logits = model->forward(fb, kv);
  const int R = static_cast<int>(L->sampling.size());
  record_prompt_logprobs(logits, R, prompt_rows);
  // Sequences it finishes that this step holds wait as zombies (their rows are drawn and dropped).
  if (resolve_first) resolve(*resolve_first, L.get(), outputs);
  if (R > 0) {
    L->batch = build_sample_batch(L->so, L->sampling);
    L->ticket = backend->sample_deferred(logits.slice_rows(0, R), L->batch);
    for (int r = 0; r < R; ++r) {
      Sequence& q = *L->so.scheduled[L->sampling[r]].seq;
      q.tokens.push_back(-1 - r);
      L->token_index.push_back(q.num_tokens() - 1);
      // Its last token is drawn: nothing more to run for it.
      if (reaches_length(q, q.num_tokens())) q.hold = true;
    }
  }
  return L;
}

void LLMEngine::Impl::resolve(Launched& L, const Launched* next, std::vector<RequestOutput>& outputs) {
  SampleResult sr = backend->collect_sample(L.ticket);
  check_draw(sr, L.batch);
  for (size_t r = 0; r < L.sampling.size(); ++r) {
    Sequence& q = *L.so.scheduled[L.sampling[r]].seq;
    if (zombies.count(&q)) continue;  // aborted: its output was sent
    process_sampled(q, states.at(q.id), sr.tokens[r], sr, static_cast<int>(r), outputs, L.token_index[r]);
    if (!outputs.back().finished) continue;
    if (next && next->references(&q)) {
      q.hold = true;  // `next` still computes (and writes the cache of) its placeholder
      zombies.insert(&q);
    } else {
      finish(q);
    }
  }
  // Zombies L held and `next` does not: nothing runs for them any more.
  for (const ScheduledSequence& s : L.so.scheduled)
    if (zombies.count(s.seq) && !(next && next->references(s.seq))) finish(*s.seq);
}

bool LLMEngine::pooling() const { return impl_->pooler != nullptr; }
bool LLMEngine::pooling_normalizes() const { return impl_->pooler && impl_->pooler->config().normalize; }
std::string LLMEngine::pooling_type() const {
  TLLM_CHECK_ARG(impl_->pooler != nullptr, "pooling_type: not a pooling engine");
  return pooling_type_name(impl_->pooler->config().type);
}
int LLMEngine::hidden_size() const { return impl_->model->config().hidden_size; }

std::vector<std::vector<float>> LLMEngine::embed(const std::vector<std::vector<int32_t>>& prompts) {
  TLLM_CHECK_ARG(pooling(), "embed: this engine generates (runner \"generate\"); start it with runner \"pooling\"");
  std::vector<std::vector<float>> out;
  for (Completion& c : generate(prompts, {SamplingParams{}})) {
    if (!c.error.empty()) throw Error("embed: " + c.error);
    out.push_back(std::move(c.embedding));
  }
  return out;
}

std::vector<LLMEngine::Completion> LLMEngine::generate(const std::vector<std::vector<int32_t>>& prompts,
                                                       const std::vector<SamplingParams>& params) {
  TLLM_CHECK_ARG(params.size() == prompts.size() || params.size() == 1,
                 "generate: give one SamplingParams or one per prompt");
  std::vector<Completion> results(prompts.size());
  std::unordered_map<std::string, size_t> index;
  const std::string prefix = "gen-" + std::to_string(impl_->generate_calls++) + "-";
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string id = prefix + std::to_string(i);
    add_request(id, prompts[i], params.size() == 1 ? params[0] : params[i]);
    index[id] = i;
  }
  size_t done = 0;
  while (done < prompts.size()) {
    for (RequestOutput& o : step()) {
      auto it = index.find(o.request_id);
      if (it == index.end()) continue;
      Completion& c = results[it->second];
      c.token_ids.insert(c.token_ids.end(), o.new_token_ids.begin(), o.new_token_ids.end());
      c.text += o.new_text;
      c.logprobs.insert(c.logprobs.end(), o.new_logprobs.begin(), o.new_logprobs.end());
      if (o.prompt_logprobs) c.prompt_logprobs = std::move(o.prompt_logprobs);
      c.num_cached_tokens = o.num_cached_tokens;
      if (!o.embedding.empty()) c.embedding = std::move(o.embedding);
      if (!o.error.empty()) c.error = o.error;
      if (o.finished) {
        c.finish_reason = o.finish_reason;
        ++done;
      }
    }
  }
  return results;
}

}  // namespace tllm
